"""Verify traces: each through the verifier registered for its problem's domain, in a process pool.

The output is the traces table with the verdict columns appended. A trace whose verifier cannot judge it
keeps `correct = null` and says why in `reason`; nothing is dropped here. Every call runs in a
`verifiers.pool.VerifierPool` worker under `VerifyConfig.timeout_s` and `memory_limit_mb`; a call that runs out
of time comes back with `timed_out = true`, `correct = false`, `reward = 0.0`. Traces with the same verifier,
answer key (for math: the extracted answer) and gold are judged once, and a `VerdictCache` passed in carries
verdicts across calls and rounds; `cache_table`/`cache_from_table` turn it into an Arrow table for the run store.
`rescore_traces` re-judges verified traces with the current verifiers and reports the verdicts that flipped.

With `VerifyConfig.format_weight` > 0, `reward` becomes the verifier's reward plus that weight times the
`<think>...</think>` format reward (`verifiers.format`); `correct` is the verifier's alone. No file I/O.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

import pyarrow as pa
from tqdm import tqdm

from configs import VerifyConfig
from stages.sample import TRACES_SCHEMA, show_progress
from verifiers import VERSIONS, Verdict, get_verifier
from verifiers.cache import CACHE_FIELDS, VerdictCache, answer_key, flipped, gold_key
from verifiers.format import format_reward
from verifiers.pool import VerifierPool, VerifyCall

VERDICT_FIELDS = [
    pa.field("correct", pa.bool_()),
    pa.field("reward", pa.float64()),
    pa.field("extracted", pa.string()),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("timed_out", pa.bool_(), nullable=False),
    pa.field("verifier", pa.string(), nullable=False),
    pa.field("verifier_version", pa.string(), nullable=False),
]
VERIFIED_TRACES_SCHEMA = pa.schema([*TRACES_SCHEMA, *VERDICT_FIELDS])
PROGRESS_CALLS_PER_WORKER = 32
VERDICT_CACHE_SCHEMA = pa.schema(
    [
        pa.field("verifier", pa.string(), nullable=False),
        pa.field("verifier_version", pa.string(), nullable=False),
        pa.field("answer_key", pa.string(), nullable=False),
        pa.field("gold", pa.string(), nullable=False),
        pa.field("correct", pa.bool_()),
        pa.field("reward", pa.float64()),
        pa.field("extracted", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
    ]
)
FLIPS_SCHEMA = pa.schema(
    [
        pa.field("problem_id", pa.string(), nullable=False),
        pa.field("sample_idx", pa.int64(), nullable=False),
        pa.field("old_correct", pa.bool_()),
        pa.field("new_correct", pa.bool_()),
        pa.field("old_version", pa.string(), nullable=False),
        pa.field("new_version", pa.string(), nullable=False),
    ]
)


def verify_traces(
    traces: pa.Table,
    problems: pa.Table,
    *,
    config: VerifyConfig | None = None,
    pool: VerifierPool | None = None,
    cache: VerdictCache | None = None,
) -> pa.Table:
    """Append verdict columns. Uses `pool` if given (left open), else a pool built from `config` for this call."""
    if traces.schema != TRACES_SCHEMA:
        raise ValueError(f"verify_traces: traces do not match TRACES_SCHEMA:\n{traces.schema}")
    verdicts = _verdicts_for(traces, problems, config, pool, cache)
    if config is not None and config.format_weight > 0:
        verdicts = _with_format_reward(verdicts, traces.column("completion").to_pylist(), config.format_weight)
    verdict_table = pa.Table.from_pylist([asdict(verdict) for verdict in verdicts], schema=pa.schema(VERDICT_FIELDS))
    return pa.Table.from_arrays([*traces.columns, *verdict_table.columns], schema=VERIFIED_TRACES_SCHEMA)


def _with_format_reward(verdicts: list[Verdict], completions: list[str], weight: float) -> list[Verdict]:
    """`reward` + weight x the `<think>` format reward; a verdict that cannot be judged keeps reward None."""
    return [
        verdict if verdict.reward is None else replace(verdict, reward=verdict.reward + weight * format_reward(text))
        for verdict, text in zip(verdicts, completions, strict=True)
    ]


def rescore_traces(
    verified: pa.Table,
    problems: pa.Table,
    *,
    config: VerifyConfig | None = None,
    pool: VerifierPool | None = None,
    cache: VerdictCache | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Re-judge verified traces with today's verifiers: (re-verified traces, the verdicts that flipped)."""
    if verified.schema != VERIFIED_TRACES_SCHEMA:
        raise ValueError(f"rescore_traces: table does not match VERIFIED_TRACES_SCHEMA:\n{verified.schema}")
    traces = verified.select(TRACES_SCHEMA.names)
    old = [_verdict_from_row(row) for row in verified.select([field.name for field in VERDICT_FIELDS]).to_pylist()]
    rescored = verify_traces(traces, problems, config=config, pool=pool, cache=cache)
    new = [_verdict_from_row(row) for row in rescored.select([field.name for field in VERDICT_FIELDS]).to_pylist()]
    problem_ids = traces.column("problem_id").to_pylist()
    sample_indices = traces.column("sample_idx").to_pylist()
    rows = [
        {
            "problem_id": problem_ids[flip.index],
            "sample_idx": sample_indices[flip.index],
            "old_correct": flip.old_correct,
            "new_correct": flip.new_correct,
            "old_version": flip.old_version,
            "new_version": flip.new_version,
        }
        for flip in flipped(old, new)
    ]
    return rescored, pa.Table.from_pylist(rows, schema=FLIPS_SCHEMA)


def cache_table(cache: VerdictCache) -> pa.Table:
    return pa.Table.from_pylist(cache.to_rows(), schema=VERDICT_CACHE_SCHEMA)


def cache_from_table(table: pa.Table) -> VerdictCache:
    missing = [name for name in CACHE_FIELDS if name not in table.schema.names]
    if missing:
        raise ValueError(f"verdict cache table: missing column(s) {', '.join(missing)}")
    return VerdictCache(table.select(list(CACHE_FIELDS)).to_pylist())


def _verdicts_for(
    traces: pa.Table,
    problems: pa.Table,
    config: VerifyConfig | None,
    pool: VerifierPool | None,
    cache: VerdictCache | None,
) -> list[Verdict]:
    by_id = {row["problem_id"]: row for row in problems.to_pylist()}
    verdicts, _ = judge_completions(
        traces.column("problem_id").to_pylist(),
        traces.column("completion").to_pylist(),
        by_id,
        config=config,
        pool=pool,
        cache=cache,
        where="traces row",
    )
    return verdicts


def judge_completions(
    problem_ids: list[str],
    completions: list[str],
    problems_by_id: Mapping[str, Mapping[str, Any]],
    *,
    config: VerifyConfig | None = None,
    pool: VerifierPool | None = None,
    cache: VerdictCache | None = None,
    where: str = "completion",
) -> tuple[list[Verdict], int]:
    """The verifier's verdict on each (problem_id, completion) pair, in order (equal answer keys are judged once),
    and how many of the completions had their answer's verdict in `cache` before the call."""
    cache = cache if cache is not None else VerdictCache()
    keys: list[tuple[str, str, str, str]] = []
    first_call: dict[tuple[str, str, str, str], VerifyCall] = {}
    cached = 0
    for row_number, (problem_id, completion) in enumerate(zip(problem_ids, completions, strict=True)):
        problem = problems_by_id.get(problem_id)
        if problem is None:
            raise ValueError(f"{where} {row_number}: problem_id {problem_id!r} is not in the problems table")
        key = verdict_key(problem_id, completion, problem)
        keys.append(key)
        if cache.get(*key) is not None:
            cached += 1
        elif key not in first_call:
            first_call[key] = VerifyCall(key[0], completion, problem)
    fresh = _run_calls(list(first_call.values()), config, pool)
    judged: dict[tuple[str, str, str, str], Verdict] = {}
    for key, verdict in zip(first_call, fresh, strict=True):
        judged[key] = verdict
        cache.put(key[2], key[3], verdict)
    return [judged.get(key) or _cached(cache, key) for key in keys], cached


def verdict_key(problem_id: str, completion: str, problem: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """What a verdict on `completion` is cached under: (verifier, its version today, answer key, gold)."""
    domain = problem["domain"]
    get_verifier(domain, where=f"problem {problem_id}, field 'domain'")
    return (domain, VERSIONS[domain], answer_key(domain, completion), gold_key(domain, problem))


def verdict_keys(traces: pa.Table, problems: pa.Table) -> set[tuple[str, str, str, str]]:
    """The distinct verdict keys of `traces` (at most one verifier call each); ValueError naming a trace whose
    problem is not in `problems`."""
    by_id = {row["problem_id"]: row for row in problems.to_pylist()}
    keys = set()
    for number, (problem_id, completion) in enumerate(
        zip(traces.column("problem_id").to_pylist(), traces.column("completion").to_pylist(), strict=True)
    ):
        problem = by_id.get(problem_id)
        if problem is None:
            raise ValueError(f"traces row {number}: problem_id {problem_id!r} is not in the problems table")
        keys.add(verdict_key(problem_id, completion, problem))
    return keys


def _cached(cache: VerdictCache, key: tuple[str, str, str, str]) -> Verdict:
    verdict = cache.get(*key)
    if verdict is None:
        raise RuntimeError(f"verdict for {key[:2]} vanished from the cache")
    return verdict


def _run_calls(calls: list[VerifyCall], config: VerifyConfig | None, pool: VerifierPool | None) -> list[Verdict]:
    if not calls:
        return []
    if pool is not None:
        return _verify_batches(pool, calls)
    config = config or VerifyConfig()
    workers = min(config.workers or VerifierPool.default_size(), len(calls))
    with VerifierPool(workers, config.timeout_s, config.memory_limit_mb) as own_pool:
        return _verify_batches(own_pool, calls)


def _verify_batches(pool: VerifierPool, calls: list[VerifyCall]) -> list[Verdict]:
    """All calls as one batch, or, with a progress bar shown, in batches that advance the bar.

    A batch ends with its slowest call while other workers wait, so calls are split only when someone
    watches the bar; batches hold PROGRESS_CALLS_PER_WORKER calls per worker to keep that wait small."""
    if not show_progress():
        return pool.verify_batch(calls)
    size = pool.size * PROGRESS_CALLS_PER_WORKER
    verdicts: list[Verdict] = []
    with tqdm(total=len(calls), desc="verifying", unit="answer", file=sys.stderr, leave=False) as bar:
        for start in range(0, len(calls), size):
            batch = calls[start : start + size]
            verdicts += pool.verify_batch(batch)
            bar.update(len(batch))
    return verdicts


def _verdict_from_row(row: Mapping[str, Any]) -> Verdict:
    return Verdict(
        row["correct"], row["reward"], row["extracted"], row["reason"], row["verifier"], row["verifier_version"],
        row["timed_out"],
    )  # fmt: skip
