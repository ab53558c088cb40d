"""Each curation filter on its own, and `curate` running them in the configured order."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from configs import CURATION_FILTERS, CurateConfig
from configs.schema import DecontaminateConfig, DedupConfig
from stages.curate import curate
from stages.curation_filters import FILTERS, FilterInput, preference_order
from stages.decontaminate import EVAL_TEXTS_SCHEMA
from stages.dedup import SIGNATURES_SCHEMA
from tests.stages.helpers import verified_traces

REASONING = "first we add 23 and 45 to get 68 then we subtract 8 from 68 which leaves 60 so the answer is 60"
OTHER = "the train covers 120 km in 2 hours so its speed is 60 km per hour and the answer is 60"


def _rows(*rows: dict[str, Any]) -> list[dict[str, Any]]:
    return verified_traces([{"problem_id": "p1", "correct": True, **row} for row in rows]).to_pylist()


def _reasons(name: str, rows: list[dict[str, Any]], config: CurateConfig | None = None, **context: Any) -> list:
    return FILTERS[name].decide(FilterInput(rows, config or CurateConfig(), round_id=2, **context)).reasons


def test_every_configurable_filter_has_a_unit_and_only_the_last_two_choose_by_preference() -> None:
    assert tuple(FILTERS) == CURATION_FILTERS
    assert [name for name, f in FILTERS.items() if f.by_preference] == ["duplicate", "per_problem_cap"]


def test_cannot_judge_drops_traces_without_a_verdict() -> None:
    rows = _rows({"sample_idx": 0, "completion": "1", "correct": None}, {"sample_idx": 1, "completion": "2"})
    assert _reasons("cannot_judge", rows) == ["cannot_judge", None]


def test_incorrect_drops_wrong_traces_and_leaves_unjudged_ones_to_cannot_judge() -> None:
    rows = _rows(
        {"sample_idx": 0, "completion": "1", "correct": False},
        {"sample_idx": 1, "completion": "2", "correct": None},
        {"sample_idx": 2, "completion": "3"},
    )
    assert _reasons("incorrect", rows) == ["incorrect", None, None]


def test_too_long_drops_truncated_traces() -> None:
    rows = _rows({"sample_idx": 0, "completion": "1", "finish_reason": "length"}, {"sample_idx": 1, "completion": "1"})
    assert _reasons("too_long", rows) == ["too_long", None]


def test_format_drops_traces_without_a_think_block_only_when_required() -> None:
    rows = _rows({"sample_idx": 0, "completion": "<think>4+2</think>6"}, {"sample_idx": 1, "completion": "6"})
    assert _reasons("format", rows, CurateConfig(require_format=True)) == [None, "format"]
    assert _reasons("format", rows) == [None, None]


def test_contaminated_names_the_eval_text_and_checks_the_prompt_first() -> None:
    eval_texts = pa.Table.from_pylist(
        [
            {"eval_id": "e1", "text": "a train covers 120 km in 2 hours so its speed is"},
            {"eval_id": "e2", "text": "tom has 23 apples and buys 45 more apples today"},
        ],
        schema=EVAL_TEXTS_SCHEMA,
    )
    rows = _rows(
        {"sample_idx": 0, "completion": OTHER},
        {"sample_idx": 1, "completion": OTHER, "prompt": "tom has 23 apples and buys 45 more apples today, so?"},
        {"sample_idx": 2, "completion": "no overlap with anything held out"},
    )
    assert _reasons("contaminated", rows, eval_texts=eval_texts) == ["contaminated:e1", "contaminated:e2", None]
    assert _reasons("contaminated", rows) == [None, None, None]  # no eval texts: nothing to check against
    disabled = CurateConfig(decontaminate=DecontaminateConfig(enabled=False))
    assert _reasons("contaminated", rows, disabled, eval_texts=eval_texts) == [None, None, None]


def test_duplicate_points_at_the_earlier_row_and_signs_what_it_keeps() -> None:
    rows = _rows(
        {"sample_idx": 0, "completion": REASONING},
        {"sample_idx": 1, "completion": REASONING + " indeed"},
        {"sample_idx": 2, "completion": OTHER},
        {"sample_idx": 3, "completion": "60"},
        {"sample_idx": 4, "completion": "60"},
    )
    decision = FILTERS["duplicate"].decide(FilterInput(rows, CurateConfig(), round_id=2))
    assert decision.reasons == [None, "duplicate_of:p1/0", None, None, "duplicate_of:p1/3"]
    assert decision.signatures is not None and decision.signatures.schema == SIGNATURES_SCHEMA
    assert 0 in decision.signatures.column("sample_idx").to_pylist()


def test_duplicate_of_an_earlier_round_names_that_round() -> None:
    earlier = FILTERS["duplicate"].decide(
        FilterInput(_rows({"sample_idx": 7, "completion": REASONING}), CurateConfig(), 1)
    )
    rows = _rows({"sample_idx": 0, "completion": REASONING + " indeed"})
    assert _reasons("duplicate", rows, previous_signatures=earlier.signatures) == ["duplicate_of:p1/7@r1"]


def test_per_problem_cap_keeps_the_first_rows_of_each_problem() -> None:
    rows = _rows(
        {"sample_idx": 0, "completion": "1"},
        {"sample_idx": 1, "completion": "2"},
        {"sample_idx": 0, "completion": "3", "problem_id": "p2"},
        {"sample_idx": 2, "completion": "4"},
    )
    assert _reasons("per_problem_cap", rows, CurateConfig(max_per_problem=2)) == [None, None, None, "per_problem_cap"]


def test_preference_order_is_shortest_first_within_each_problem_or_over_all() -> None:
    rows = _rows(
        {"sample_idx": 0, "completion": "xxx"},
        {"sample_idx": 0, "completion": "xx", "problem_id": "p2"},
        {"sample_idx": 1, "completion": "x"},
        {"sample_idx": 2, "completion": "x"},
    )
    assert preference_order(rows, global_scope=False) == [2, 3, 0, 1]
    assert preference_order(rows, global_scope=True) == [2, 3, 1, 0]


def _mixed() -> pa.Table:
    return verified_traces(
        [
            {"problem_id": "p1", "sample_idx": 0, "completion": "7", "correct": False, "finish_reason": "length"},
            {"problem_id": "p1", "sample_idx": 1, "completion": "6", "correct": True},
            {"problem_id": "p1", "sample_idx": 2, "completion": "6", "correct": True},
            {"problem_id": "p2", "sample_idx": 0, "completion": "5", "correct": True, "finish_reason": "length"},
        ]
    )


def test_curate_runs_the_filters_in_the_configured_order_and_counts_what_each_dropped() -> None:
    default = curate(_mixed(), CurateConfig(max_per_problem=2), round_id=1)
    assert default.dropped.column("drop_reason").to_pylist() == ["incorrect", "duplicate_of:p1/1", "too_long"]
    assert default.dropped_by_filter == {
        "cannot_judge": 0,
        "incorrect": 1,
        "too_long": 1,
        "format": 0,
        "contaminated": 0,
        "duplicate": 1,
        "per_problem_cap": 0,
    }
    length_first = CurateConfig(
        max_per_problem=2, filters=["too_long", "cannot_judge", "incorrect", "duplicate", "per_problem_cap"]
    )
    reordered = curate(_mixed(), length_first, round_id=1)
    assert reordered.dropped.column("drop_reason").to_pylist() == ["too_long", "duplicate_of:p1/1", "too_long"]
    assert list(reordered.dropped_by_filter) == length_first.filters
    assert reordered.dropped_by_filter["too_long"] == 2 and reordered.dropped_by_filter["incorrect"] == 0


def test_a_filter_left_out_drops_nothing() -> None:
    config = CurateConfig(max_per_problem=2, filters=["cannot_judge", "incorrect", "per_problem_cap"])
    curated = curate(_mixed(), config, round_id=1)
    assert curated.dropped.column("drop_reason").to_pylist() == ["incorrect"]
    assert curated.dataset.column("sample_idx").to_pylist() == [1, 2, 0]
    assert curated.signatures.num_rows == 0  # nothing was MinHashed


@pytest.mark.parametrize("scope", ["problem", "global"])
def test_the_cap_sees_the_preference_order_even_without_dedup(scope: str) -> None:
    traces = verified_traces(
        [
            {"problem_id": "p1", "sample_idx": 0, "completion": "long answer", "correct": True},
            {"problem_id": "p1", "sample_idx": 1, "completion": "short", "correct": True},
        ]
    )
    config = CurateConfig(filters=["cannot_judge", "incorrect", "per_problem_cap"], dedup=DedupConfig(scope=scope))
    curated = curate(traces, config, round_id=1)
    assert curated.dataset.column("sample_idx").to_pylist() == [1]
    assert curated.dropped.column("drop_reason").to_pylist() == ["per_problem_cap"]
