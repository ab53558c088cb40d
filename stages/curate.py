"""Curate verified traces into training data, and measure each problem's difficulty.

Kept: verified-correct, not truncated, sharing no word n-gram with an eval text, not a (near-)duplicate of a
kept completion of the same problem (this round or, through their stored MinHash signatures, earlier rounds),
and within `max_per_problem`. Among a problem's correct traces the shortest are preferred (then lowest
`sample_idx`), a documented rule that favours concise answers: the shortest trace of a cluster of
near-duplicates is its representative. Each rule is a filter of `stages/curation_filters.py`, run in the order of
`CurateConfig.filters`, each over what the ones before it kept; every other trace goes to `dropped` with its
`drop_reason`, that of the first filter that drops it. By default the order is `cannot_judge`, `incorrect`,
`too_long`, `format` (with `require_format`: no `<think>...</think>` before the answer), `contaminated:<eval_id>`,
`duplicate_of:<problem_id>/<sample_idx>` (`...@r<round>` for an earlier round's trace), `per_problem_cap`.
Nothing disappears silently. The rules for near-duplicates (including why completions under
`dedup.min_words` words are compared only exactly) are in `stages/dedup.py`, for contamination in
`stages/decontaminate.py`.

Buckets by pass rate (correct / judged): `unsolved` (0), `hard` (< hard_below), `medium`, `easy`
(> easy_above), `solved` (1), and `unjudged` when no trace of the problem could be judged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pyarrow as pa

from configs import CurateConfig
from stages.curation_filters import FILTERS, FilterInput, preference_order
from stages.dedup import SIGNATURES_SCHEMA
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
    """A round's curation. `signatures` (SIGNATURES_SCHEMA): MinHash signatures of the kept traces long enough
    to be MinHashed, to persist with the round and pass to later rounds as `previous_signatures`.
    `dropped_by_filter`: traces each filter dropped, in the order the filters ran."""

    dataset: pa.Table
    dropped: pa.Table
    difficulty: pa.Table
    signatures: pa.Table = field(default_factory=SIGNATURES_SCHEMA.empty_table)
    dropped_by_filter: dict[str, int] = field(default_factory=dict)


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


def curate(
    traces: pa.Table,
    config: CurateConfig,
    round_id: int,
    *,
    previous_signatures: pa.Table | None = None,
    eval_texts: pa.Table | None = None,
    template_texts: pa.Table | None = None,
) -> Curated:
    """Keep, drop with a reason, and measure difficulty: the filters of `config.filters`, in that order, each
    over the traces the ones before it kept (`stages/curation_filters.py`).

    `previous_signatures`: earlier rounds' `Curated.signatures`, concatenated (SIGNATURES_SCHEMA); a trace
    near-duplicating one of them is dropped. `eval_texts`: held-out texts (EVAL_TEXTS_SCHEMA, e.g. from
    `stages.decontaminate.eval_texts_from_problems`); a trace whose prompt or completion shares a word n-gram
    with one is dropped. Either left out skips that check. `template_texts`: where template words are counted
    (`stages.decontaminate.eval_index`; default: the eval texts), e.g. the texts of every split.
    """
    if traces.schema != VERIFIED_TRACES_SCHEMA:
        raise ValueError(f"curate: traces do not match VERIFIED_TRACES_SCHEMA:\n{traces.schema}")
    difficulty = difficulty_table(traces, config, round_id)
    by_problem = {row["problem_id"]: row for row in difficulty.to_pylist()}
    rows = traces.to_pylist()
    drop_reasons: list[str | None] = [None] * len(rows)
    dropped_by_filter: dict[str, int] = {}
    signatures = SIGNATURES_SCHEMA.empty_table()
    candidates = list(range(len(rows)))
    in_preference_order = False
    for name in config.filters:
        curation_filter = FILTERS[name]
        if curation_filter.by_preference and not in_preference_order:
            order = preference_order([rows[i] for i in candidates], global_scope=config.dedup.scope == "global")
            candidates = [candidates[position] for position in order]
            in_preference_order = True
        batch = [rows[i] for i in candidates]
        decision = curation_filter.decide(
            FilterInput(batch, config, round_id, previous_signatures, eval_texts, template_texts)
        )
        if len(decision.reasons) != len(candidates):
            raise ValueError(f"curation filter {name!r} decided on {len(decision.reasons)} of {len(candidates)} traces")
        if decision.signatures is not None:
            signatures = decision.signatures
        for index, reason in zip(candidates, decision.reasons, strict=True):
            drop_reasons[index] = reason
        dropped_by_filter[name] = sum(reason is not None for reason in decision.reasons)
        candidates = [index for index in candidates if drop_reasons[index] is None]

    kept = [
        {
            "round": round_id,
            "problem_id": rows[index]["problem_id"],
            "sample_idx": rows[index]["sample_idx"],
            "prompt": rows[index]["prompt"],
            "completion": rows[index]["completion"],
            "pass_rate": by_problem[rows[index]["problem_id"]]["pass_rate"],
            "bucket": by_problem[rows[index]["problem_id"]]["bucket"],
            "origin": "sampled",
        }
        for index in candidates
    ]
    dropped_mask = pa.array([reason is not None for reason in drop_reasons], type=pa.bool_())
    dropped = traces.filter(dropped_mask)
    reasons = pa.array([reason for reason in drop_reasons if reason is not None], type=pa.string())
    dropped = pa.Table.from_arrays([*dropped.columns, reasons], schema=DROPPED_SCHEMA)
    kept_keys = {(row["problem_id"], row["sample_idx"]) for row in kept}
    signature_keys = zip(
        signatures.column("problem_id").to_pylist(), signatures.column("sample_idx").to_pylist(), strict=True
    )
    signatures = signatures.filter(pa.array([key in kept_keys for key in signature_keys], type=pa.bool_()))
    return Curated(
        pa.Table.from_pylist(kept, schema=DATASET_SCHEMA), dropped, difficulty, signatures, dropped_by_filter
    )


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
