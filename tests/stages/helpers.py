from __future__ import annotations

from typing import Any

import pyarrow as pa

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
