from __future__ import annotations

import pyarrow as pa
import pytest

from configs import ArithmeticConfig, CurateConfig
from stages.curate import DATASET_SCHEMA, DIFFICULTY_SCHEMA, DROPPED_SCHEMA, bucket_of, curate, labelled_dataset
from stages.problems import generate_arithmetic, split_of
from tests.stages.helpers import verified_traces


def _traces() -> pa.Table:
    return verified_traces(
        [
            {"problem_id": "p1", "sample_idx": 0, "completion": "46 ", "correct": True},
            {"problem_id": "p1", "sample_idx": 1, "completion": "46", "correct": True},
            {"problem_id": "p1", "sample_idx": 2, "completion": "47", "correct": False},
            {"problem_id": "p1", "sample_idx": 3, "completion": "046", "correct": True},
            {"problem_id": "p2", "sample_idx": 0, "completion": "1", "correct": False},
            {"problem_id": "p2", "sample_idx": 1, "completion": "2", "correct": False},
            {"problem_id": "p3", "sample_idx": 0, "completion": "x", "correct": None},
            {"problem_id": "p4", "sample_idx": 0, "completion": "12", "correct": True, "finish_reason": "length"},
            {"problem_id": "p4", "sample_idx": 1, "completion": "12", "correct": True},
        ]
    )


def test_curation_keeps_the_shortest_correct_trace_and_says_why_others_are_dropped() -> None:
    curated = curate(_traces(), CurateConfig(max_per_problem=1), round_id=1)
    assert curated.dataset.schema == DATASET_SCHEMA
    assert curated.dropped.schema == DROPPED_SCHEMA
    kept = {(r["problem_id"], r["sample_idx"]) for r in curated.dataset.to_pylist()}
    assert kept == {("p1", 1), ("p4", 1)}
    reasons = {(r["problem_id"], r["sample_idx"]): r["drop_reason"] for r in curated.dropped.to_pylist()}
    assert reasons == {
        ("p1", 0): "duplicate_of:p1/1",
        ("p1", 2): "incorrect",
        ("p1", 3): "per_problem_cap",
        ("p2", 0): "incorrect",
        ("p2", 1): "incorrect",
        ("p3", 0): "cannot_judge",
        ("p4", 0): "too_long",
    }
    assert curated.dataset.num_rows + curated.dropped.num_rows == _traces().num_rows


def test_cap_allows_several_distinct_traces() -> None:
    curated = curate(_traces(), CurateConfig(max_per_problem=3), round_id=1)
    assert sorted(r["sample_idx"] for r in curated.dataset.to_pylist() if r["problem_id"] == "p1") == [1, 3]


def test_difficulty_counts_pass_rates_and_buckets() -> None:
    difficulty = curate(_traces(), CurateConfig(), round_id=1).difficulty
    assert difficulty.schema == DIFFICULTY_SCHEMA
    by_id = {r["problem_id"]: r for r in difficulty.to_pylist()}
    assert (by_id["p1"]["n"], by_id["p1"]["n_correct"], by_id["p1"]["pass_rate"]) == (4, 3, 0.75)
    assert by_id["p1"]["bucket"] == "easy"
    assert by_id["p2"]["bucket"] == "unsolved"
    assert by_id["p3"]["pass_rate"] is None and by_id["p3"]["bucket"] == "unjudged"
    assert by_id["p4"]["bucket"] == "solved"


@pytest.mark.parametrize(
    ("pass_rate", "bucket"),
    [
        (0.0, "unsolved"),
        (0.1, "hard"),
        (0.3, "medium"),
        (0.5, "medium"),
        (0.7, "medium"),
        (0.9, "easy"),
        (1.0, "solved"),
    ],
)
def test_bucket_edges(pass_rate: float, bucket: str) -> None:
    assert bucket_of(pass_rate, CurateConfig(hard_below=0.3, easy_above=0.7)) == bucket


def test_labelled_dataset_trains_on_solutions() -> None:
    seed = split_of(generate_arithmetic(ArithmeticConfig(n_seed=5, n_test=1, n_train=1), seed=0), "seed")
    data = labelled_dataset(seed, round_id=0)
    assert data.num_rows == 5
    assert data.column("completion").to_pylist() == seed.column("answer").to_pylist()
    assert set(data.column("origin").to_pylist()) == {"seed"}
