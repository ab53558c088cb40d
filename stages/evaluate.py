"""Score a checkpoint on held-out problems from its verified samples: pass@1, pass@k and maj@k.

pass@k uses the unbiased estimator of Chen et al. (2021), 1 - C(n-c, k) / C(n, k), with n samples of
which c are correct. maj@k is the correctness of the most frequent extracted answer (ties go to the answer
seen first). Problems whose every sample is "cannot judge" are counted and left out of the means.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from math import comb
from typing import Any

import pyarrow as pa

from stages.verify import VERIFIED_TRACES_SCHEMA

EVAL_SCHEMA = pa.schema(
    [
        pa.field("round", pa.int32(), nullable=False),
        pa.field("problem_id", pa.string(), nullable=False),
        pa.field("n", pa.int32(), nullable=False),
        pa.field("n_correct", pa.int32(), nullable=False),
        pa.field("pass_at_1", pa.float64()),
        pa.field("pass_at_k", pa.float64()),
        pa.field("majority_answer", pa.string()),
        pa.field("majority_correct", pa.bool_()),
        pa.field("completions", pa.list_(pa.string()), nullable=False),
        pa.field("correct", pa.list_(pa.bool_()), nullable=False),
    ]
)


def pass_at_k(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def evaluate_traces(traces: pa.Table, round_id: int) -> tuple[pa.Table, dict[str, float]]:
    if traces.schema != VERIFIED_TRACES_SCHEMA:
        raise ValueError(f"evaluate_traces: traces do not match VERIFIED_TRACES_SCHEMA:\n{traces.schema}")
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in traces.select(["problem_id", "sample_idx", "completion", "extracted", "correct"]).to_pylist():
        grouped[row["problem_id"]].append(row)
    rows = []
    for problem_id, samples in grouped.items():
        samples.sort(key=lambda s: s["sample_idx"])
        judged = [s for s in samples if s["correct"] is not None]
        n_correct = sum(s["correct"] is True for s in judged)
        majority_answer, majority_correct = _majority(judged)
        rows.append(
            {
                "round": round_id,
                "problem_id": problem_id,
                "n": len(samples),
                "n_correct": n_correct,
                "pass_at_1": n_correct / len(judged) if judged else None,
                "pass_at_k": pass_at_k(len(judged), n_correct, len(judged)) if judged else None,
                "majority_answer": majority_answer,
                "majority_correct": majority_correct,
                "completions": [s["completion"] for s in samples],
                "correct": [s["correct"] for s in samples],
            }
        )
    table = pa.Table.from_pylist(rows, schema=EVAL_SCHEMA)
    return table, summarize(table)


def summarize(eval_table: pa.Table) -> dict[str, float]:
    rows = [row for row in eval_table.to_pylist() if row["pass_at_1"] is not None]
    k = max((row["n"] for row in rows), default=0)
    count = len(rows)
    metrics: dict[str, float] = {
        "n_problems": float(count),
        "n_cannot_judge": float(eval_table.num_rows - count),
        "pass@1": sum(row["pass_at_1"] for row in rows) / count if count else 0.0,
    }
    if k > 1:
        metrics[f"pass@{k}"] = sum(row["pass_at_k"] for row in rows) / count
        metrics[f"maj@{k}"] = sum(bool(row["majority_correct"]) for row in rows) / count
    return metrics


def _majority(judged: list[dict[str, Any]]) -> tuple[str | None, bool | None]:
    answers = [s["extracted"].strip() for s in judged if s["extracted"] is not None]
    if not answers:
        return None, False if judged else None
    answer = Counter(answers).most_common(1)[0][0]
    correct = next(s["correct"] for s in judged if s["extracted"] is not None and s["extracted"].strip() == answer)
    return answer, correct
