from __future__ import annotations

import pyarrow as pa
import pytest

from configs import ArithmeticConfig, CurateConfig
from configs.schema import DecontaminateConfig, DedupConfig
from stages.curate import (
    DATASET_SCHEMA,
    DIFFICULTY_SCHEMA,
    DROPPED_SCHEMA,
    bucket_of,
    curate,
    labelled_dataset,
)
from stages.decontaminate import EVAL_TEXTS_SCHEMA
from stages.dedup import SIGNATURES_SCHEMA
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


REASONING = "first we add 23 and 45 to get 68 then we subtract 8 from 68 which leaves 60 so the answer is 60"
REWORDED = REASONING.removesuffix("60") + "sixty"  # 18 of 20 distinct shingles shared: Jaccard 0.9
OTHER = "the train covers 120 km in 2 hours so its speed is 60 km per hour and the answer is 60"


def test_near_duplicates_within_a_problem_keep_the_shortest_as_representative() -> None:
    traces = verified_traces(
        [
            {"problem_id": "p1", "sample_idx": 0, "completion": REWORDED + " indeed", "correct": True},
            {"problem_id": "p1", "sample_idx": 1, "completion": REASONING, "correct": True},
            {"problem_id": "p1", "sample_idx": 2, "completion": OTHER, "correct": True},
        ]
    )
    curated = curate(traces, CurateConfig(max_per_problem=3), round_id=1)
    assert sorted(curated.dataset.column("sample_idx").to_pylist()) == [1, 2]
    assert curated.dropped.column("drop_reason").to_pylist() == ["duplicate_of:p1/1"]
    assert curated.signatures.schema == SIGNATURES_SCHEMA
    assert sorted(curated.signatures.column("sample_idx").to_pylist()) == [1, 2]


def test_equal_short_answers_of_different_problems_are_all_kept() -> None:
    rows = [{"problem_id": f"p{i}", "sample_idx": 0, "completion": "46", "correct": True} for i in range(5)]
    for scope in ("problem", "global"):
        curated = curate(verified_traces(rows), CurateConfig(dedup=DedupConfig(scope=scope)), round_id=1)
        assert curated.dataset.num_rows == 5 and curated.dropped.num_rows == 0
        assert curated.signatures.num_rows == 0


def test_a_trace_duplicating_a_kept_trace_of_round_1_is_dropped_in_round_2() -> None:
    config = CurateConfig(max_per_problem=2)
    round1 = curate(
        verified_traces(
            [
                {"problem_id": "p1", "sample_idx": 3, "completion": REASONING, "correct": True},
                {"problem_id": "p2", "sample_idx": 0, "completion": OTHER, "correct": True},
            ]
        ),
        config,
        round_id=1,
    )
    round2_traces = verified_traces(
        [
            {"problem_id": "p1", "sample_idx": 0, "completion": REWORDED, "correct": True, "round": 2},
            {"problem_id": "p1", "sample_idx": 1, "completion": OTHER, "correct": True, "round": 2},
            {"problem_id": "p2", "sample_idx": 0, "completion": "60", "correct": True, "round": 2},
        ]
    )
    round2 = curate(round2_traces, config, round_id=2, previous_signatures=round1.signatures)
    reasons = {(r["problem_id"], r["sample_idx"]): r["drop_reason"] for r in round2.dropped.to_pylist()}
    assert reasons == {("p1", 0): "duplicate_of:p1/3@r1"}
    assert {(r["problem_id"], r["sample_idx"]) for r in round2.dataset.to_pylist()} == {("p1", 1), ("p2", 0)}
    assert [r["sample_idx"] for r in round2.signatures.to_pylist()] == [1]  # "60" is too short to sign
    without_history = curate(round2_traces, config, round_id=2)
    assert without_history.dropped.num_rows == 0


def test_traces_sharing_an_ngram_with_an_eval_text_are_dropped_with_the_eval_id() -> None:
    eval_texts = pa.Table.from_pylist(
        [
            {"eval_id": "gsm8k/17", "text": "A train covers 120 km in 2 hours. What is its speed in km per hour?"},
            {"eval_id": "gsm8k/18", "text": "Tom has 23 apples and buys 45 more."},
        ],
        schema=EVAL_TEXTS_SCHEMA,
    )
    traces = verified_traces(
        [
            {"correct": True, **row}
            for row in [
                # shares exactly 8 words in a row with gsm8k/17: "covers 120 km in 2 hours. what is"
                {
                    "problem_id": "p1",
                    "sample_idx": 0,
                    "completion": "so it covers 120 km in 2 hours. what is the speed",
                },
                {"problem_id": "p1", "sample_idx": 1, "completion": OTHER},
                {
                    "problem_id": "p2",
                    "sample_idx": 0,
                    "completion": "68",
                    "prompt": "Tom has 23 apples and buys 45 more. Now?",
                },
                {
                    "problem_id": "p3",
                    "sample_idx": 0,
                    "completion": "no overlap with anything held out",
                    "correct": False,
                },
            ]
        ]
    )
    curated = curate(traces, CurateConfig(max_per_problem=2), round_id=1, eval_texts=eval_texts)
    reasons = {(r["problem_id"], r["sample_idx"]): r["drop_reason"] for r in curated.dropped.to_pylist()}
    assert reasons == {
        ("p1", 0): "contaminated:gsm8k/17",  # by its completion
        ("p2", 0): "contaminated:gsm8k/18",  # by its prompt
        ("p3", 0): "incorrect",
    }
    assert curated.dataset.column("sample_idx").to_pylist() == [1]
    disabled = CurateConfig(max_per_problem=2, decontaminate=DecontaminateConfig(enabled=False))
    assert curate(traces, disabled, round_id=1, eval_texts=eval_texts).dataset.num_rows == 3
    longer_ngrams = CurateConfig(max_per_problem=2, decontaminate=DecontaminateConfig(ngram_words=9))
    assert (
        "contaminated:gsm8k/17"
        not in curate(traces, longer_ngrams, round_id=1, eval_texts=eval_texts)
        .dropped.column("drop_reason")
        .to_pylist()
    )


def test_labelled_dataset_trains_on_solutions() -> None:
    seed = split_of(generate_arithmetic(ArithmeticConfig(n_seed=5, n_test=1, n_train=1), seed=0), "seed")
    data = labelled_dataset(seed, round_id=0)
    assert data.num_rows == 5
    assert data.column("completion").to_pylist() == seed.column("answer").to_pylist()
    assert set(data.column("origin").to_pylist()) == {"seed"}


def test_require_format_drops_correct_traces_without_a_think_block() -> None:
    traces = verified_traces(
        [
            {"problem_id": "p1", "sample_idx": 0, "completion": "<think>4+2</think>6", "correct": True},
            {"problem_id": "p1", "sample_idx": 1, "completion": "6", "correct": True},
        ]
    )
    curated = curate(traces, CurateConfig(require_format=True, max_per_problem=2), round_id=1)
    assert [r["sample_idx"] for r in curated.dataset.to_pylist()] == [0]
    assert [(r["sample_idx"], r["drop_reason"]) for r in curated.dropped.to_pylist()] == [(1, "format")]
    relaxed = curate(traces, CurateConfig(max_per_problem=2), round_id=1)
    assert relaxed.dataset.num_rows == 2
