"""Sampling and verification: the traces of a round's problems, sampled shard by shard while earlier shards
are verified.

`sample_traces` asks the engine of a model (flows/engines.py) for `k` traces per problem with the `sample` or
`evaluate` section's settings; `verify` judges traces in the verifier pool; `sample_shards` pipelines the two
over a round's problems and journals each shard's part file, so a crash mid-sampling re-samples only the
shards whose part files are missing or corrupt. Each problem's sampling seed depends on (run seed, round,
problem_id) alone, so a re-sampled shard holds the same `(problem_id, sample_idx)` rows as the lost one.
Every verification goes through the run's persistent verdict cache (flows/verdicts.py): an answer that the same
verifier version judged before, in this round, an earlier one or a rescore, is not judged again, and what was
judged is stored (for a shard, before its part file is written).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa
from prefect.futures import PrefectFuture

from configs import RunConfig
from flows.engines import ENGINES, VERIFIER_POOLS, replica_metrics
from flows.faults import crash_point
from flows.journal import StageOutput, retry_options, run_task
from flows.logs import run_logger
from flows.models import model_folder
from flows.runners import DEFAULT_WORKERS, VerifiedShard, verify_shard
from flows.verdicts import RunVerdicts
from flows.watchdog import WATCHDOG
from stages.sample import SamplingSpec
from stages.verify import verify_traces
from storage import FileRecord, RunStore


@dataclass
class _ShardInFlight:
    """A sampled shard whose verdicts are being computed by the flow's task runner."""

    part: int
    future: PrefectFuture[VerifiedShard]
    sample_seconds: float
    submitted: float = field(default_factory=time.perf_counter)
    done: float | None = None


def sample_shards(config: RunConfig, store: RunStore, problems: pa.Table, model_ref: str, round_id: int) -> StageOutput:
    """Sample shard by shard in this process while the flow's task runner verifies the shards sampled before.

    A shard whose part file is journaled and intact is kept. Verification (`verify-shard`, flows/runners.py)
    is submitted to the round's task runner (threads, Dask or Ray), at most `task_runner.workers` shards at a
    time; verdicts come back here, and part files are written and journaled in shard order, so a crash loses
    only the shards in flight and resume works as before. Sampling and verification of a shard are retried
    as `orchestration` says; a failed sampling attempt drops the engine, so the retry starts a fresh one.
    Seconds are wall time including retries; `verify` runs from submission to verdicts, overlapping `sample`.
    """
    logger = run_logger()
    journaled = store.read_progress(round_id)["shards"].get("traces", {})
    retry = retry_options(config.orchestration)
    verify_task = verify_shard.with_options(**retry)
    window = config.orchestration.task_runner.workers or DEFAULT_WORKERS
    records: dict[int, FileRecord] = {}
    seconds = {"sample": 0.0, "verify": 0.0}
    in_flight: deque[_ShardInFlight] = deque()
    ENGINES.take_usage()  # counted from here: this stage's shards only
    verdicts = RunVerdicts(store, problems)
    answers = {"answers": 0, "from_cache": 0, "stored": 0}

    def finish_oldest() -> None:
        shard = in_flight.popleft()
        verified = shard.future.result()
        verify_seconds = (shard.done or time.perf_counter()) - shard.submitted
        shard_seconds = {"sample": shard.sample_seconds, "verify": verify_seconds}
        verdicts.add(verified.judged)
        # stored before the part file is written: every verdict of a journaled shard is in the cache
        answers["stored"] += verdicts.store_judged()
        answers["answers"] += verified.answers
        answers["from_cache"] += verified.from_cache
        record = store.write_traces_part(round_id, shard.part, verified.traces)
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
                return sample_traces(config, store, model_ref, shard, round_id, "sample")
            except Exception:
                ENGINES.close()  # a failed engine is not handed to the retry
                raise

        started = time.perf_counter()
        traces = run_task("sample-shard", sample_shard, retry)
        known = verdicts.for_shard(shard)
        future = verify_task.submit(traces, shard, config.verify, known)
        flight = _ShardInFlight(part, future, time.perf_counter() - started)
        flight.future.add_done_callback(lambda _future, flight=flight: setattr(flight, "done", time.perf_counter()))
        in_flight.append(flight)
        while in_flight and (len(in_flight) > window or in_flight[0].done is not None):
            finish_oldest()
    while in_flight:
        finish_oldest()
    if answers["answers"]:
        logger.info(
            "round %d: verified %d distinct answers: %d from the run's verdict cache, %d judged (%d verdicts stored)",
            round_id, answers["answers"], answers["from_cache"], answers["answers"] - answers["from_cache"],
            answers["stored"],
        )  # fmt: skip
    files = [records[part] for part in sorted(records)]
    metrics = {f"{name}_seconds": value for name, value in seconds.items()} | replica_metrics(ENGINES.take_usage())
    return StageOutput(files, metrics)


def sampling_spec(config: RunConfig, purpose: Literal["sample", "evaluate"]) -> SamplingSpec:
    """The `sample` or the `evaluate` section's settings (evaluation shares the sampling stop strings, and its
    token limit defaults to sampling's)."""
    stop = tuple(config.sample.stop)
    if purpose == "sample":
        sample = config.sample
        return SamplingSpec(sample.k, sample.temperature, sample.top_p, sample.max_tokens, stop)
    evaluate = config.evaluate
    max_tokens = evaluate.max_tokens or config.sample.max_tokens
    return SamplingSpec(evaluate.k, evaluate.temperature, evaluate.top_p, max_tokens, stop)


def sample_traces(
    config: RunConfig,
    store: RunStore,
    model_ref: str,
    problems: pa.Table,
    round_id: int,
    purpose: Literal["sample", "evaluate"],
) -> pa.Table:
    """`k` traces per problem from the engine of `model_ref`, with the settings `sampling_spec` picks."""
    sampler = ENGINES.get(
        model_folder(store, model_ref),
        config.model,
        config.engine,
        config.seed,
        config.problems.system_prompt,
        purpose=purpose,
    )
    return sampler.sample(
        problems,
        sampling_spec(config, purpose),
        round_id=round_id,
        model_ref=model_ref,
        run_seed=config.seed,
        system_prompt=config.problems.system_prompt,
        purpose=purpose,
    )


def verify(config: RunConfig, store: RunStore, traces: pa.Table, problems: pa.Table) -> pa.Table:
    """Judge `traces` against their `problems` in this process's verifier pool, through the run's verdict cache:
    answers judged before by the same verifier version are not judged again, and the new verdicts are stored."""
    verdicts = RunVerdicts(store, problems)
    pool = VERIFIER_POOLS.get(config.verify)
    verified = verify_traces(traces, problems, config=config.verify, pool=pool, cache=verdicts.cache)
    verdicts.store_judged()
    return verified
