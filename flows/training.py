"""Training orchestration: a round's training phases in order, in this process or as launched jobs.

Each phase starts from the previous one's model (a `PhaseModel`, in memory or as a folder), checkpoints into its
own folder of the round's scratch space (`RunStore.phase_files`), so a stage killed mid-way resumes from its
newest checkpoint and a finished phase resumes as a no-op. With `train.launcher`, a phase runs as a distributed
job (`flows.train_job`) and hands its model back as a folder. The trained model is stored as the round's
`model/`. What training does is stages/train.py; job files are storage/jobs.py.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from configs import RunConfig, TrainConfig
from flows.engines import ENGINES, VERIFIER_POOLS
from flows.journal import StageOutput
from flows.logs import run_logger
from flows.models import PhaseModel
from flows.train_job import train_phase, verdict_metrics
from flows.verdicts import kept_verdicts
from flows.watchdog import WATCHDOG
from stages.train import training_warnings, untrained
from storage import RunStore
from storage.jobs import read_result, write_job
from storage.space import discard_incomplete_checkpoints, disk_space_guard


def train_phases(
    train_config: TrainConfig,
    phases: tuple[str, ...],
    config: RunConfig,
    store: RunStore,
    round_id: int,
    model: PhaseModel,
    *,
    sft_data: pa.Table | None = None,
    grpo_problems: pa.Table | None = None,
) -> StageOutput:
    """Run the round's training phases in order, each from the previous one's model, and store the result."""
    ENGINES.close()  # the sampling engine serves the parent model, which is never sampled again; free its memory
    gc.collect()
    metrics: dict[str, float] = {}
    for phase in phases:
        files = store.phase_files(round_id, phase)
        discard_incomplete_checkpoints(files.checkpoints)
        data = sft_data if phase == "sft" else grpo_problems
        assert data is not None
        if phase == "grpo" and data.num_rows == 0:
            run_logger().warning(
                "round %d: no %s problems for GRPO (every sampled problem was solved by all or none of its "
                "samples); the GRPO phase is skipped", round_id, train_config.grpo.problems,
            )  # fmt: skip
            metrics["grpo_problems"] = 0.0
            continue
        for warning in training_warnings(train_config, phase, data.num_rows):
            run_logger().warning("round %d: %s", round_id, warning)
        with disk_space_guard(store.scratch_dir(round_id)):
            if train_config.launcher is not None:
                model, phase_metrics = _launch_phase(train_config, phase, config, store, round_id, model, data)
            else:
                model, phase_metrics = _train_here(train_config, phase, config, store, round_id, model, data)
        metrics |= phase_metrics
    if untrained(metrics, phases, train_config, round_id):
        run_logger().warning("round %d: trained 0 steps; committed as untrained (train.allow_untrained)", round_id)
        metrics["untrained"] = 1.0
    metrics["train_seconds"] = sum(metrics.get(f"{phase}_seconds", 0.0) for phase in phases)
    metrics["train_tokens"] = sum(metrics.get(f"{phase}_tokens", 0.0) for phase in phases)
    return StageOutput(store.save_model(round_id, *model.loaded()), metrics)


def _train_here(
    train_config: TrainConfig,
    phase: str,
    config: RunConfig,
    store: RunStore,
    round_id: int,
    model: PhaseModel,
    data: pa.Table,
) -> tuple[PhaseModel, dict[str, float]]:
    """Run one phase in this process; GRPO's rewards judge through the run's stored verdicts and store theirs."""
    loaded, tokenizer = model.loaded()
    files = store.phase_files(round_id, phase)
    if phase == "sft":
        result = train_phase(phase, train_config, config, round_id, loaded, tokenizer, data,
                             output_dir=files.checkpoints, pool=lambda: None)  # fmt: skip
        return PhaseModel(model=result.model, tokenizer=result.tokenizer), result.metrics
    with kept_verdicts(store, data) as verdicts:
        result = train_phase(
            phase, train_config, config, round_id, loaded, tokenizer, data, output_dir=files.checkpoints,
            pool=lambda: VERIFIER_POOLS.get(config.verify), cache=verdicts.cache,
        )  # fmt: skip
    return PhaseModel(model=result.model, tokenizer=result.tokenizer), result.metrics | verdict_metrics(verdicts)


def _launch_phase(
    train_config: TrainConfig,
    phase: str,
    config: RunConfig,
    store: RunStore,
    round_id: int,
    model: PhaseModel,
    data: pa.Table,
) -> tuple[PhaseModel, dict[str, float]]:
    """Run one phase through `train.launcher`; returns the trained model (as its folder) and the phase's metrics."""
    logger = run_logger()
    files = store.phase_files(round_id, phase)
    finished = read_result(files.result)
    if finished is not None:
        logger.info("round %d: %s phase already trained by a launched job, reusing %s", round_id, phase, files.result)
        return PhaseModel(folder=files.result), finished
    spec = {
        "config": config.model_dump(mode="json"),
        "warm_start": train_config is config.warm_start,
        "round_id": round_id,
        "phase": phase,
        "model": model.as_folder(files.initial_model),  # a model built in memory is handed over as a folder
        "seed": config.seed + round_id,
        "output_dir": files.checkpoints,
        "final_dir": files.result,
    }
    job = write_job(files.job, spec, data)
    assert train_config.launcher is not None
    command = [_executable(train_config.launcher[0]), *train_config.launcher[1:], "-m", "flows.train_job", job]
    logger.info("round %d: %s phase: %s", round_id, phase, " ".join(command))
    with WATCHDOG.paused():  # the job is its own process, with its own logs
        completed = subprocess.run(command, check=False)
    finished = read_result(files.result)
    if completed.returncode != 0 or finished is None:
        raise RuntimeError(
            f"round {round_id}: the {phase} training job failed (exit code {completed.returncode}): "
            f"{' '.join(command)}; its output is above, its checkpoints are kept for the next attempt"
        )
    return PhaseModel(folder=files.result), finished


def _executable(name: str) -> str:
    """A bare command name is taken from this interpreter's folder when it is there (the virtual environment's
    `accelerate` or `torchrun`, whose bin/ need not be on PATH), else looked up on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if os.sep not in name and beside.exists() else name
