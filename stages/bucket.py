"""The difficulty history across rounds: each problem's latest bucket, its past buckets, and bucket moves.

`history` is the concatenation of earlier rounds' `difficulty` tables (DIFFICULTY_SCHEMA in `stages/curate.py`).
A problem never sampled is `unseen`. Bucketing one round's pass rates lives in `stages/curate.py`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pyarrow as pa

UNSEEN = "unseen"
BUCKET_MOVES_SCHEMA = pa.schema(
    [
        pa.field("problem_id", pa.string(), nullable=False),
        pa.field("from_round", pa.int32()),
        pa.field("from_bucket", pa.string(), nullable=False),
        pa.field("to_bucket", pa.string(), nullable=False),
    ]
)


@dataclass
class ProblemHistory:
    """One problem's records before some round, oldest first."""

    rounds: list[int] = field(default_factory=list)
    buckets: list[str] = field(default_factory=list)

    @property
    def latest_bucket(self) -> str:
        return self.buckets[-1] if self.buckets else UNSEEN

    @property
    def latest_round(self) -> int | None:
        return self.rounds[-1] if self.rounds else None


def histories(history: pa.Table | None, before_round: int) -> dict[str, ProblemHistory]:
    """Per problem, its records from rounds before `before_round`, in round order."""
    result: dict[str, ProblemHistory] = defaultdict(ProblemHistory)
    if history is None or history.num_rows == 0:
        return result
    for name in ("round", "problem_id", "bucket"):
        if name not in history.column_names:
            raise ValueError(f"difficulty history has no column {name!r}")
    rows = zip(
        history.column("round").to_pylist(),
        history.column("problem_id").to_pylist(),
        history.column("bucket").to_pylist(),
        strict=True,
    )
    for round_id, problem_id, bucket in sorted(row for row in rows if row[0] < before_round):
        entry = result[problem_id]
        entry.rounds.append(round_id)
        entry.buckets.append(bucket)
    return result


def bucket_moves(difficulty: pa.Table, history: pa.Table | None) -> pa.Table:
    """For every problem of this round's `difficulty`, its latest earlier bucket (`unseen` if none) and its new one."""
    if difficulty.num_rows == 0:
        return BUCKET_MOVES_SCHEMA.empty_table()
    round_id = min(difficulty.column("round").to_pylist())
    before = histories(history, round_id)
    rows = []
    for problem_id, bucket in zip(
        difficulty.column("problem_id").to_pylist(), difficulty.column("bucket").to_pylist(), strict=True
    ):
        past = before.get(problem_id, ProblemHistory())
        rows.append(
            {
                "problem_id": problem_id,
                "from_round": past.latest_round,
                "from_bucket": past.latest_bucket,
                "to_bucket": bucket,
            }
        )
    return pa.Table.from_pylist(rows, schema=BUCKET_MOVES_SCHEMA)


def move_counts(moves: pa.Table) -> dict[str, int]:
    """`"<from>-><to>"` -> number of problems, for problems whose bucket changed (including `unseen` -> ...)."""
    pairs = zip(moves.column("from_bucket").to_pylist(), moves.column("to_bucket").to_pylist(), strict=True)
    return dict(sorted(Counter(f"{a}->{b}" for a, b in pairs if a != b).items()))
