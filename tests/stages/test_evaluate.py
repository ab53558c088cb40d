from __future__ import annotations

import pytest

from stages.evaluate import EVAL_SCHEMA, evaluate_traces, pass_at_k
from tests.stages.helpers import verified_traces


def test_unbiased_pass_at_k() -> None:
    assert pass_at_k(4, 0, 1) == 0.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)


def test_evaluation_metrics_with_majority_vote() -> None:
    traces = verified_traces(
        [
            {"problem_id": "a", "sample_idx": 0, "completion": "5", "correct": True},
            {"problem_id": "a", "sample_idx": 1, "completion": "6", "correct": False},
            {"problem_id": "a", "sample_idx": 2, "completion": "6", "correct": False},
            {"problem_id": "b", "sample_idx": 0, "completion": "7", "correct": True},
            {"problem_id": "b", "sample_idx": 1, "completion": "7", "correct": True},
            {"problem_id": "b", "sample_idx": 2, "completion": "1", "correct": False},
            {"problem_id": "c", "sample_idx": 0, "completion": "?", "correct": None},
            {"problem_id": "c", "sample_idx": 1, "completion": "?", "correct": None},
            {"problem_id": "c", "sample_idx": 2, "completion": "?", "correct": None},
        ]
    )
    table, metrics = evaluate_traces(traces, round_id=2)
    assert table.schema == EVAL_SCHEMA
    rows = {r["problem_id"]: r for r in table.to_pylist()}
    assert rows["a"]["majority_answer"] == "6" and rows["a"]["majority_correct"] is False
    assert rows["b"]["majority_answer"] == "7" and rows["b"]["majority_correct"] is True
    assert rows["c"]["pass_at_1"] is None
    assert metrics["n_problems"] == 2 and metrics["n_cannot_judge"] == 1
    assert metrics["pass@1"] == pytest.approx((1 / 3 + 2 / 3) / 2)
    assert metrics["pass@3"] == 1.0
    assert metrics["maj@3"] == 0.5
