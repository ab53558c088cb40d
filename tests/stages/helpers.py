from __future__ import annotations

from typing import Any

import pyarrow as pa

from stages.curate import DIFFICULTY_SCHEMA
from stages.verify import VERIFIED_TRACES_SCHEMA


def verified_traces(rows: list[dict[str, Any]]) -> pa.Table:
    """A verified traces table from short rows: problem_id, sample_idx, completion, correct (+ overrides)."""
    full = []
    for row in rows:
        correct = row["correct"]
        full.append(
            {
                "round": 1,
                "model_ref": "round:0",
                "prompt": f"prompt of {row['problem_id']}",
                "completion_tokens": len(row["completion"]),
                "finish_reason": "stop",
                "seed": 0,
                "reward": None if correct is None else float(correct),
                "extracted": row["completion"],
                "reason": "test",
                "timed_out": False,
                "verifier": "math",
                "verifier_version": "test",
                **row,
            }
        )
    return pa.Table.from_pylist(full, schema=VERIFIED_TRACES_SCHEMA)


def difficulty(round_id: int, buckets: dict[str, str]) -> pa.Table:
    """A difficulty table of one round from problem_id -> bucket (4 samples, a pass rate inside the bucket)."""
    rate = {"unsolved": 0.0, "hard": 0.25, "medium": 0.5, "easy": 0.75, "solved": 1.0}
    rows = [
        {
            "round": round_id,
            "problem_id": p,
            "n": 4,
            "n_correct": int(rate[b] * 4),
            "n_cannot_judge": 0,
            "pass_rate": rate[b],
            "bucket": b,
        }
        for p, b in buckets.items()
    ]
    return pa.Table.from_pylist(rows, schema=DIFFICULTY_SCHEMA)
