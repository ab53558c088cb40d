"""The journal of an open round, and the one place where a round's work becomes a Prefect task.

Resume works from the store, not from Prefect's result cache: each finished stage is journaled with its files'
hashes (`progress.json`, see storage/store.py), and re-running an open round skips every stage whose files still
match, re-running the first stage that does not (with a warning naming the file) and everything after it.

`run_stage` reuses or runs one stage; `run_task` runs any callable as a Prefect task with the retry options
`retry_options` builds from the run's `orchestration` section, passed in by the caller. What a stage does is in
flows/round_stages.py; this module knows nothing of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from configs import OrchestrationConfig
from flows.faults import crash_point
from flows.logs import run_logger
from flows.retrying import should_retry
from flows.watchdog import WATCHDOG
from storage import FileRecord, RunStore

# Stages that read and write tables and nothing else: safe to retry, and where flaky storage shows up.
# Sampling and verification are retried per shard inside the `sample` stage (see flows/sampling.py).
RETRIED_STAGES = ("seed_data", "select", "curate")

T = TypeVar("T")


@dataclass
class StageOutput:
    """What a stage wrote (its files, journaled and committed) and measured (merged into the round's metrics)."""

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
            run_logger().warning("round %d: re-running stage %r: %s", self.round_id, stage, problem)
            self._redo_from(position)
            return None
        return StageOutput(files, record["metrics"])

    def seconds(self) -> dict[str, float]:
        return {name: entry["seconds"] for name, entry in self.store.read_progress(self.round_id)["stages"].items()}

    def files(self) -> list[FileRecord]:
        """Every file the round's stages wrote, in stage order."""
        return [record for stage in self.stages for record in self.outputs[stage].files]

    def metrics(self) -> dict[str, float]:
        """The round's metrics: every stage's, a later stage's value winning for a name two stages report."""
        merged: dict[str, float] = {}
        for stage in self.stages:
            merged |= self.outputs[stage].metrics
        return merged

    def _redo_from(self, position: int) -> None:
        self.redo_from = position
        self.store.forget_stages(self.round_id, list(self.stages[position:]))


def run_stage(
    journal: RoundJournal, stage: str, work: Callable[[], StageOutput], orchestration: OrchestrationConfig
) -> StageOutput:
    """Reuse the stage's journaled output, or run it as a Prefect task and journal it.

    Stages that only move data (RETRIED_STAGES) are retried with back-off as `orchestration` says; training
    and evaluation are not: their failures (out of memory, a diverged or broken checkpoint) recur on a
    retry, which would spend the round's most expensive step again only to fail the same way. The time
    journaled is the wall time of every attempt and back-off delay, not only of the attempt that succeeded."""
    WATCHDOG.beat(f"round {journal.round_id}, stage {stage!r}")
    output = journal.reusable(stage)
    if output is not None:
        run_logger().info("round %d: stage %r already done, reusing its files", journal.round_id, stage)
    else:
        retry = retry_options(orchestration) if stage in RETRIED_STAGES else {}
        started = time.perf_counter()
        output = run_task(stage, work, retry)
        seconds = time.perf_counter() - started
        journal.store.record_stage(journal.round_id, stage, output.files, output.metrics, seconds)
        crash_point(f"stage:{stage}", journal.round_id)
    journal.outputs[stage] = output
    return output


def run_task(name: str, work: Callable[[], T], retry: dict[str, Any]) -> T:
    """`work()` as a Prefect task named `name`, results neither cached nor persisted (the store keeps them)."""
    return task(name=name, cache_policy=NO_CACHE, persist_result=False, **retry)(work)()


def retry_options(orchestration: OrchestrationConfig) -> dict[str, Any]:
    """Prefect task options: `retries` attempts after the first, delays doubling from `retry_delay_s`."""
    if orchestration.retries == 0:
        return {}
    return {
        "retries": orchestration.retries,
        "retry_delay_seconds": exponential_backoff(orchestration.retry_delay_s)(orchestration.retries),
        "retry_condition_fn": should_retry,  # a failure that a retry would only repeat is not retried
    }
