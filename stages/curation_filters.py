"""Curation filters: each one a unit that looks at the traces still in and says, per trace, keep or why it drops it.

A filter gets a `FilterInput` (the traces still in, as rows, plus the round's context) and returns a `Decision`
per trace: `None` keeps it, a string is its `drop_reason`. Row filters judge each trace alone (`cannot_judge`,
`incorrect`, `too_long`, `format`); batch filters need the whole batch: `contaminated` builds one n-gram index of
the eval texts (`stages/decontaminate.py`), `duplicate` MinHashes the batch against itself and earlier rounds
(`stages/dedup.py`) and also returns the signatures of what it kept, `per_problem_cap` counts per problem. The
last two choose among the traces still in (`by_preference`): they see them in preference order, shortest first.

`stages.curate.curate` runs the filters in the configured order (`CurateConfig.filters`). Adding a rule is a
new `CurationFilter` in `FILTERS` and its name in `configs.schema.CurationFilterName`. Nothing is read or written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from configs import CurateConfig, CurationFilterName
from stages.decontaminate import contaminated_by, eval_index
from stages.dedup import near_duplicates
from verifiers.format import format_reward

Row = Mapping[str, Any]


@dataclass(frozen=True)
class FilterInput:
    """The traces still in (VERIFIED_TRACES_SCHEMA rows, in preference order for a `by_preference` filter) and
    what a filter may need besides: `previous_signatures` (earlier rounds' kept MinHash signatures) and
    `eval_texts` (held-out texts, EVAL_TEXTS_SCHEMA), either None when the round has none."""

    rows: Sequence[Row]
    config: CurateConfig
    round_id: int
    previous_signatures: pa.Table | None = None
    eval_texts: pa.Table | None = None
    template_texts: pa.Table | None = None


@dataclass(frozen=True)
class Decision:
    """One `drop_reason` or None (kept) per row of the input, in order; `signatures` (SIGNATURES_SCHEMA) of
    the rows a `duplicate` filter MinHashed, for the round to store."""

    reasons: list[str | None]
    signatures: pa.Table | None = None


@dataclass(frozen=True)
class CurationFilter:
    """`reason`: the kind of `drop_reason` it writes (the part before `:`), as the round report counts it."""

    name: CurationFilterName
    reason: str
    decide: Callable[[FilterInput], Decision]
    by_preference: bool = False


def _row_filter(name: CurationFilterName, drops: Callable[[Row, CurateConfig], bool]) -> CurationFilter:
    def decide(batch: FilterInput) -> Decision:
        return Decision([name if drops(row, batch.config) else None for row in batch.rows])

    return CurationFilter(name, name, decide)


def _contaminated(batch: FilterInput) -> Decision:
    """`contaminated:<eval_id>`: the prompt (checked first) or the completion shares a word n-gram with an eval
    text. Skipped without eval texts or with `decontaminate.enabled: false`."""
    if batch.eval_texts is None or not batch.config.decontaminate.enabled or not batch.rows:
        return Decision([None] * len(batch.rows))
    index = eval_index(batch.eval_texts, batch.config.decontaminate, batch.template_texts)
    by_prompt = contaminated_by([row["prompt"] for row in batch.rows], index)
    by_completion = contaminated_by([row["completion"] for row in batch.rows], index)
    return Decision(
        [
            None
            if prompt_hit is None and completion_hit is None
            else f"contaminated:{prompt_hit if prompt_hit is not None else completion_hit}"
            for prompt_hit, completion_hit in zip(by_prompt, by_completion, strict=True)
        ]
    )


_DOCUMENTS_SCHEMA = pa.schema(
    [
        pa.field("problem_id", pa.string(), nullable=False),
        pa.field("sample_idx", pa.int32()),
        pa.field("completion", pa.string(), nullable=False),
    ]
)


def _duplicate(batch: FilterInput) -> Decision:
    """`duplicate_of:<problem_id>/<sample_idx>[@r<round>]`: a (near-)duplicate of an earlier row of the batch
    or of an earlier round's kept trace (rules in stages/dedup.py)."""
    documents = pa.Table.from_pylist(
        [{key: row[key] for key in ("problem_id", "sample_idx", "completion")} for row in batch.rows],
        schema=_DOCUMENTS_SCHEMA,
    )
    found = near_duplicates(documents, batch.config.dedup, batch.round_id, batch.previous_signatures)
    return Decision(list(found.duplicate_of), found.signatures)


def _per_problem_cap(batch: FilterInput) -> Decision:
    """`per_problem_cap`: a problem's rows after its first `max_per_problem`."""
    seen: dict[str, int] = defaultdict(int)
    reasons: list[str | None] = []
    for row in batch.rows:
        seen[row["problem_id"]] += 1
        reasons.append("per_problem_cap" if seen[row["problem_id"]] > batch.config.max_per_problem else None)
    return Decision(reasons)


FILTERS: dict[CurationFilterName, CurationFilter] = {
    f.name: f
    for f in (
        _row_filter("cannot_judge", lambda row, _: row["correct"] is None),
        _row_filter("incorrect", lambda row, _: row["correct"] is False),
        _row_filter("too_long", lambda row, _: row["finish_reason"] == "length"),
        _row_filter("format", lambda row, config: config.require_format and format_reward(row["completion"]) < 1.0),
        CurationFilter("contaminated", "contaminated", _contaminated),
        CurationFilter("duplicate", "duplicate_of", _duplicate, by_preference=True),
        CurationFilter("per_problem_cap", "per_problem_cap", _per_problem_cap, by_preference=True),
    )
}


def preference_order(rows: Sequence[Row], *, global_scope: bool) -> list[int]:
    """Indices of `rows`, shortest completion first (then lowest sample_idx); grouped by problem, in order of
    first appearance, unless `global_scope`."""
    problem_rank: dict[str, int] = {}
    for row in rows:
        problem_rank.setdefault(row["problem_id"], len(problem_rank))

    def key(index: int) -> tuple[int, int, int]:
        row = rows[index]
        rank = problem_rank[row["problem_id"]]
        if global_scope:
            return (row["completion_tokens"], rank, row["sample_idx"])
        return (rank, row["completion_tokens"], row["sample_idx"])

    return sorted(range(len(rows)), key=key)
