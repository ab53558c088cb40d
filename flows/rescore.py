"""`flywheel rescore RUN ROUND`: re-judge a committed round's traces with today's verifiers, as a new record.

Reads the round's traces and problems (checked against its manifest) and the run's `verify` settings from
`run.yaml` (`--timeout` and `--workers` override them), and judges every trace again through a verifier pool:
worker processes with the hard timeout and memory limit, and the code verifier's sandbox. The run's persistent
verdict cache (flows/verdicts.py) serves every answer that the same verifier version has judged before, and
receives the new verdicts. The result goes to `rescores/rNNNN-<key>/` (storage/rescores.py): `traces.parquet`
(the traces with their new verdicts), `flips.parquet` (the traces whose `correct` changed) and `manifest.json`
(verifier versions before and after, settings, counts). `key` hashes the round's manifest, today's verifier
versions and the settings that can change a verdict (timeout, memory limit, format weight): rescoring again
with none of them changed finds that rescore, judges nothing and reports it again; with another timeout it is a
new rescore, in which only the answers that timed out or could not be judged are judged again.

What it does not do: touch the committed round (its folder and manifest are only read) or anything built on
it (rounds after it are not re-curated), run an engine or a Prefect flow, or fill the cache from a round.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import yaml

from configs import ConfigError, VerifyConfig, parse_config
from flows.verdicts import load_stored_verdicts, save_new_verdicts
from stages.problems import PROBLEMS_SCHEMA
from stages.verify import FLIPS_SCHEMA, VERIFIED_TRACES_SCHEMA, rescore_traces, verdict_key
from storage import RunStore, StoreError
from storage.rescores import is_rescored, read_rescore, read_rescore_table, rescore_folder, write_rescore
from storage.store import manifest_digest
from verifiers.cache import VerdictCache

SHOWN_EXAMPLES = 5
LABELS = {True: "correct", False: "incorrect", None: "cannot judge"}


@dataclass(frozen=True)
class RescoreResult:
    round_id: int
    location: str  # the rescore's folder
    manifest: dict[str, Any]  # the rescore's manifest: versions, settings, counts
    reused: bool  # True: an earlier rescore with the same key, reported again; nothing was judged
    # Flipped traces, first few: problem_id, sample_idx, old/new correct and version, gold, extracted, reason.
    examples: list[dict[str, Any]]


def rescore_round(
    store: RunStore,
    round_id: int,
    *,
    timeout_s: float | None = None,
    workers: int | None = None,
    examples: int = SHOWN_EXAMPLES,
) -> RescoreResult:
    """Re-judge committed round `round_id` (or find the rescore that did); StoreError/ConfigError on bad input."""
    source = store.read_manifest(round_id)  # StoreError naming the round unless committed and intact
    if not any(entry["path"].startswith("traces/") for entry in source["files"]):
        raise StoreError(
            f"round {round_id} of run {store.run_name!r} has no traces to rescore (a baseline or control round "
            "samples none)"
        )
    traces = store.read_parts(round_id, VERIFIED_TRACES_SCHEMA)
    problems = store.read_table(round_id, "problems", PROBLEMS_SCHEMA)
    verify = _verify_config(store, timeout_s, workers)
    problems_by_id = {row["problem_id"]: row for row in problems.to_pylist()}
    keys = _verdict_keys(store, round_id, traces, problems_by_id)
    after = {verifier: version for verifier, version, _, _ in keys}
    settings = {name: getattr(verify, name) for name in ("timeout_s", "memory_limit_mb", "format_weight")}
    key = hashlib.sha256(
        json.dumps({"round": manifest_digest(source), "verifiers": after, "verify": settings}, sort_keys=True).encode()
    ).hexdigest()[:16]
    folder = rescore_folder(round_id, key)
    if is_rescored(store, round_id, key):
        manifest = read_rescore(store, round_id, key)
        flips = read_rescore_table(store, round_id, key, "flips", FLIPS_SCHEMA)
        rescored = read_rescore_table(store, round_id, key, "traces", VERIFIED_TRACES_SCHEMA)
        shown = _examples(flips, rescored, problems_by_id, examples)
        return RescoreResult(round_id, store.run_location(folder), manifest, True, shown)

    cache = VerdictCache()
    loaded = load_stored_verdicts(store, after, cache)
    rescored, flips = rescore_traces(traces, problems, config=verify, cache=cache)
    stored = save_new_verdicts(store, cache, loaded)
    transitions = Counter(
        f"{LABELS[row['old_correct']]} -> {LABELS[row['new_correct']]}"
        for row in flips.select(["old_correct", "new_correct"]).to_pylist()
    )
    before: dict[str, list[str]] = {}
    for row in traces.select(["verifier", "verifier_version"]).to_pylist():
        before.setdefault(row["verifier"], [])
        if row["verifier_version"] not in before[row["verifier"]]:
            before[row["verifier"]].append(row["verifier_version"])
    body = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "verifier_versions_before": {name: sorted(versions) for name, versions in sorted(before.items())},
        "verifier_versions_after": dict(sorted(after.items())),
        "verify": settings,
        "counts": {
            "traces": rescored.num_rows,
            "answers": len(keys),  # distinct (verifier, version, answer key, gold): one verifier call each at most
            "from_cache": len(keys & loaded),
            "verifier_calls": len(keys - loaded),
            "timed_out": sum(bool(value) for value in rescored.column("timed_out").to_pylist()),
            "verdicts_stored": stored,
            "flipped": flips.num_rows,
            "transitions": dict(sorted(transitions.items())),
        },
    }
    manifest = write_rescore(store, round_id, key, {"traces": rescored, "flips": flips}, body)
    shown = _examples(flips, rescored, problems_by_id, examples)
    return RescoreResult(round_id, store.run_location(folder), manifest, False, shown)


def format_rescore(result: RescoreResult, run_name: str) -> str:
    manifest = result.manifest
    counts = manifest["counts"]
    before = manifest["verifier_versions_before"]
    after = manifest["verifier_versions_after"]
    versions = ", ".join(f"{name} {version}" for name, version in after.items())
    was = ", ".join(f"{name} {'/'.join(found)}" for name, found in before.items())
    lines = []
    if result.reused:
        lines.append(
            f"round {result.round_id} of run {run_name!r} was rescored with these verifier versions and settings "
            f"already ({manifest['created_at']}): nothing judged, the stored result follows"
        )
    lines += [
        f"round {result.round_id} of run {run_name!r}: {counts['traces']} traces rescored by {versions}",
        "verifier versions unchanged since the round was judged"
        if all(found == [after.get(name)] for name, found in before.items())
        else f"the round was judged by {was}",
        f"{counts['answers']} distinct answers: {counts['from_cache']} from the verdict cache, "
        f"{counts['verifier_calls']} judged by the verifiers ({counts['timed_out']} traces timed out)",
        f"{'stored in' if result.reused else 'written to'} {result.location}",
        "",
    ]
    if not counts["flipped"]:
        lines.append(f"no verdict flipped ({counts['traces']} traces)")
        return "\n".join(lines)
    lines.append(f"flipped verdicts: {counts['flipped']} of {counts['traces']} traces")
    lines.append(f"  {'before':<14} {'after':<14} {'traces':>7}")
    for transition, number in sorted(counts["transitions"].items(), key=lambda item: (-item[1], item[0])):
        old, new = transition.split(" -> ")
        lines.append(f"  {old:<14} {new:<14} {number:>7}")
    if result.examples:
        lines += ["", f"examples ({len(result.examples)} of {counts['flipped']}; all in flips.parquet):"]
        for row in result.examples:
            lines.append(
                f"  {row['problem_id']} sample {row['sample_idx']}: {LABELS[row['old_correct']]} "
                f"({row['old_version']}) -> {LABELS[row['new_correct']]} ({row['new_version']}); gold "
                f"{_short(row['gold'])}, answer {_short(row['extracted'])}: {_short(row['reason'], 60)}"
            )
    return "\n".join(lines)


def _verify_config(store: RunStore, timeout_s: float | None, workers: int | None) -> VerifyConfig:
    source = store.path("run.yaml")
    try:
        data = yaml.safe_load(store.read_run_config())
    except yaml.YAMLError as error:
        raise ConfigError(source, [f"not valid YAML: {error}"]) from error
    overrides: dict[str, Any] = {}
    if timeout_s is not None:
        overrides["verify.timeout_s"] = timeout_s
    if workers is not None:
        overrides["verify.workers"] = workers
    return parse_config(data, source=source, overrides=overrides).verify


def _verdict_keys(
    store: RunStore, round_id: int, traces: pa.Table, problems_by_id: dict[str, dict[str, Any]]
) -> set[tuple[str, str, str, str]]:
    keys = set()
    for number, (problem_id, completion) in enumerate(
        zip(traces.column("problem_id").to_pylist(), traces.column("completion").to_pylist(), strict=True)
    ):
        problem = problems_by_id.get(problem_id)
        if problem is None:
            raise StoreError(
                f"{store.round_path(round_id, 'traces')}: trace {number} is of problem {problem_id!r}, which is "
                f"not in {store.round_path(round_id, 'problems.parquet')}"
            )
        keys.add(verdict_key(problem_id, completion, problem))
    return keys


def _examples(
    flips: pa.Table, rescored: pa.Table, problems_by_id: dict[str, dict[str, Any]], limit: int
) -> list[dict[str, Any]]:
    wanted = flips.slice(0, max(limit, 0)).to_pylist()
    positions = {(row["problem_id"], row["sample_idx"]) for row in wanted}
    verdicts = {
        (row["problem_id"], row["sample_idx"]): row
        for row in rescored.select(["problem_id", "sample_idx", "extracted", "reason"]).to_pylist()
        if (row["problem_id"], row["sample_idx"]) in positions
    }
    shown = []
    for row in wanted:
        problem = problems_by_id.get(row["problem_id"], {})
        gold = problem.get("answer") if problem.get("answer") is not None else problem.get("tests")
        verdict = verdicts.get((row["problem_id"], row["sample_idx"]), {})
        shown.append(row | {"gold": gold, "extracted": verdict.get("extracted"), "reason": verdict.get("reason")})
    return shown


def _short(text: str | None, width: int = 30) -> str:
    if text is None:
        return "-"
    return repr(text if len(text) <= width else f"{text[: width - 3]}...")
