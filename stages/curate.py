"""Curate verified traces into training data, and measure each problem's difficulty.

Kept: verified-correct, not truncated, not an exact repeat of a kept completion of the same problem, and
within `max_per_problem`; among a problem's correct traces the shortest are kept (then lowest
`sample_idx`), a documented rule that favours concise answers. Every other trace goes to `dropped` with
its `drop_reason`: `incorrect`, `cannot_judge`, `too_long`, `duplicate_of:<problem_id>/<sample_idx>` or
`per_problem_cap`. Nothing disappears silently.

Buckets by pass rate (correct / judged): `unsolved` (0), `hard` (< hard_below), `medium`, `easy`
(> easy_above), `solved` (1), and `unjudged` when no trace of the problem could be judged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from configs import CurateConfig
from stages.verify import VERIFIED_TRACES_SCHEMA

BUCKETS = ("unsolved", "hard", "medium", "easy", "solved", "unjudged")

DATASET_SCHEMA = pa.schema(
    [
        pa.field("round", pa.int32(), nullable=False),
        pa.field("problem_id", pa.string(), nullable=False),
        pa.field("sample_idx", pa.int32()),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("completion", pa.string(), nullable=False),
        pa.field("pass_rate", pa.float64()),
        pa.field("bucket", pa.string()),
        pa.field("origin", pa.string(), nullable=False),
    ]
)
DROPPED_SCHEMA = pa.schema([*VERIFIED_TRACES_SCHEMA, pa.field("drop_reason", pa.string(), nullable=False)])
DIFFICULTY_SCHEMA = pa.schema(
    [
        pa.field("round", pa.int32(), nullable=False),
        pa.field("problem_id", pa.string(), nullable=False),
        pa.field("n", pa.int32(), nullable=False),
        pa.field("n_correct", pa.int32(), nullable=False),
        pa.field("n_cannot_judge", pa.int32(), nullable=False),
        pa.field("pass_rate", pa.float64()),
        pa.field("bucket", pa.string(), nullable=False),
    ]
)


@dataclass(frozen=True)
class Curated:
    dataset: pa.Table
    dropped: pa.Table
    difficulty: pa.Table


def bucket_of(pass_rate: float | None, config: CurateConfig) -> str:
    if pass_rate is None:
        return "unjudged"
    if pass_rate == 0.0:
        return "unsolved"
    if pass_rate == 1.0:
        return "solved"
    if pass_rate < config.hard_below:
        return "hard"
    if pass_rate > config.easy_above:
        return "easy"
    return "medium"


def difficulty_table(traces: pa.Table, config: CurateConfig, round_id: int) -> pa.Table:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for problem_id, correct in zip(
        traces.column("problem_id").to_pylist(), traces.column("correct").to_pylist(), strict=True
    ):
        tally = counts[problem_id]
        tally[0] += 1
        tally[1] += correct is True
        tally[2] += correct is None
    rows = []
    for problem_id, (n, n_correct, n_cannot_judge) in counts.items():
        judged = n - n_cannot_judge
        pass_rate = n_correct / judged if judged else None
        rows.append(
            {
                "round": round_id,
                "problem_id": problem_id,
                "n": n,
                "n_correct": n_correct,
                "n_cannot_judge": n_cannot_judge,
                "pass_rate": pass_rate,
                "bucket": bucket_of(pass_rate, config),
            }
        )
    return pa.Table.from_pylist(rows, schema=DIFFICULTY_SCHEMA)


def curate(traces: pa.Table, config: CurateConfig, round_id: int) -> Curated:
    if traces.schema != VERIFIED_TRACES_SCHEMA:
        raise ValueError(f"curate: traces do not match VERIFIED_TRACES_SCHEMA:\n{traces.schema}")
    difficulty = difficulty_table(traces, config, round_id)
    by_problem = {row["problem_id"]: row for row in difficulty.to_pylist()}
    rows = traces.to_pylist()
    drop_reasons: list[str | None] = [None] * len(rows)
    candidates: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        if row["correct"] is None:
            drop_reasons[index] = "cannot_judge"
        elif not row["correct"]:
            drop_reasons[index] = "incorrect"
        elif row["finish_reason"] == "length":
            drop_reasons[index] = "too_long"
        else:
            candidates[row["problem_id"]].append(index)

    kept: list[dict[str, Any]] = []
    for problem_id, indices in candidates.items():
        indices.sort(key=lambda i: (rows[i]["completion_tokens"], rows[i]["sample_idx"]))
        first_with_text: dict[str, int] = {}
        n_kept = 0
        for index in indices:
            text = rows[index]["completion"].strip()
            if text in first_with_text:
                drop_reasons[index] = f"duplicate_of:{problem_id}/{rows[first_with_text[text]]['sample_idx']}"
                continue
            first_with_text[text] = index
            if n_kept >= config.max_per_problem:
                drop_reasons[index] = "per_problem_cap"
                continue
            n_kept += 1
            difficulty_row = by_problem[problem_id]
            kept.append(
                {
                    "round": round_id,
                    "problem_id": problem_id,
                    "sample_idx": rows[index]["sample_idx"],
                    "prompt": rows[index]["prompt"],
                    "completion": rows[index]["completion"],
                    "pass_rate": difficulty_row["pass_rate"],
                    "bucket": difficulty_row["bucket"],
                    "origin": "sampled",
                }
            )
    dropped_mask = pa.array([reason is not None for reason in drop_reasons])
    dropped = traces.filter(dropped_mask)
    reasons = pa.array([reason for reason in drop_reasons if reason is not None], type=pa.string())
    dropped = pa.Table.from_arrays([*dropped.columns, reasons], schema=DROPPED_SCHEMA)
    return Curated(pa.Table.from_pylist(kept, schema=DATASET_SCHEMA), dropped, difficulty)


def labelled_dataset(seed_problems: pa.Table, round_id: int) -> pa.Table:
    """Warm-start data: each labelled problem with its worked solution, or its answer when it has none."""
    rows = []
    for problem in seed_problems.to_pylist():
        completion = problem["solution"] or problem["answer"]
        if not completion:
            raise ValueError(f"seed problem {problem['problem_id']}: neither solution nor answer to train on")
        rows.append(
            {
                "round": round_id,
                "problem_id": problem["problem_id"],
                "sample_idx": None,
                "prompt": problem["prompt"],
                "completion": completion,
                "pass_rate": None,
                "bucket": None,
                "origin": "seed",
            }
        )
    return pa.Table.from_pylist(rows, schema=DATASET_SCHEMA)
