from __future__ import annotations

import pyarrow as pa

from stages.bucket import BUCKET_MOVES_SCHEMA, bucket_moves, histories, move_counts
from tests.stages.helpers import difficulty


def test_histories_keep_only_earlier_rounds_in_order() -> None:
    history = pa.concat_tables(
        [difficulty(2, {"p1": "hard"}), difficulty(1, {"p1": "unsolved"}), difficulty(3, {"p1": "solved"})]
    )
    past = histories(history, before_round=3)["p1"]
    assert (past.rounds, past.buckets, past.latest_bucket) == ([1, 2], ["unsolved", "hard"], "hard")


def test_bucket_moves_compare_with_the_latest_earlier_bucket() -> None:
    history = pa.concat_tables([difficulty(1, {"p1": "hard", "p2": "easy"}), difficulty(2, {"p1": "medium"})])
    moves = bucket_moves(difficulty(3, {"p1": "easy", "p2": "easy", "p3": "unsolved"}), history)
    assert moves.schema == BUCKET_MOVES_SCHEMA
    assert {r["problem_id"]: (r["from_round"], r["from_bucket"], r["to_bucket"]) for r in moves.to_pylist()} == {
        "p1": (2, "medium", "easy"),
        "p2": (1, "easy", "easy"),
        "p3": (None, "unseen", "unsolved"),
    }
    assert move_counts(moves) == {"medium->easy": 1, "unseen->unsolved": 1}
