"""One training phase as a distributed job: `<launcher> -m flows.train_job <job.json>`.

The flow process writes the job (its run config, round, phase, model and input table) into the round's scratch
folder and starts the configured launcher (`accelerate launch ...`, `torchrun ...`); every rank runs this module,
TRL's trainer does the distributed work, and the main rank saves the trained model and its metrics as the phase's
result (`storage.jobs`). A rank killed mid-way leaves its checkpoints, so re-running the job resumes from them.
Each rank judges GRPO rewards with its own verifier pool, through the run's stored verdicts (`flows.verdicts`),
and stores what it judged (batch files named by their content: ranks need no lock).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from configs import RunConfig, TrainConfig, parse_config
from flows.faults import CrashAtCheckpoint
from flows.verdicts import RunVerdicts, kept_verdicts
from flows.watchdog import BeatOnStep
from stages.curate import DATASET_SCHEMA
from stages.problems import PROBLEMS_SCHEMA
from stages.rewards import CorrectnessReward, reward_functions
from stages.train import TrainResult, train_grpo, train_sft
from storage import RunStore
from storage.jobs import read_job, save_trained
from storage.models import load_model
from verifiers.cache import VerdictCache
from verifiers.pool import VerifierPool


def run_job(job_path: str) -> None:
    spec, table = read_job(job_path)
    config = parse_config(spec["config"], source=job_path)
    train_config = config.warm_start if spec["warm_start"] else config.train
    assert train_config is not None
    expected = DATASET_SCHEMA if spec["phase"] == "sft" else PROBLEMS_SCHEMA
    if table.schema != expected:
        raise ValueError(f"{spec['input']}: schema differs from the {spec['phase']} input schema:\n{table.schema}")
    model, tokenizer = load_model(spec["model"])  # handed over as a folder
    result = _train(spec, config, train_config, table, model, tokenizer)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    # The merged LoRA model is whole on every rank (LoRA is not combined with ZeRO-3); else the trainer saves,
    # collectively under DeepSpeed ZeRO-3.
    saver = {"model": result.model} if train_config.lora is not None else {"trainer": result.trainer}
    save_trained(spec["final_dir"], result.tokenizer, result.metrics, main_rank=main_rank, **saver)


def _train(
    spec: dict[str, Any], config: RunConfig, train_config: TrainConfig, table: pa.Table, model: Any, tokenizer: Any
) -> TrainResult:
    if spec["phase"] == "sft":
        return train_phase("sft", train_config, config, spec["round_id"], model, tokenizer, table,
                           output_dir=spec["output_dir"], pool=lambda: None)  # fmt: skip
    workers = config.verify.workers or VerifierPool.default_size()
    store = RunStore(config.store, config.run_name)
    with VerifierPool(workers, config.verify.timeout_s, config.verify.memory_limit_mb) as pool:
        with kept_verdicts(store, table) as verdicts:
            result = train_phase("grpo", train_config, config, spec["round_id"], model, tokenizer, table,
                                 output_dir=spec["output_dir"], pool=lambda: pool, cache=verdicts.cache)  # fmt: skip
    result.metrics |= verdict_metrics(verdicts)
    return result


def train_phase(
    phase: str,
    train_config: TrainConfig,
    config: RunConfig,
    round_id: int,
    model: Any,
    tokenizer: Any,
    data: pa.Table,
    *,
    output_dir: str,
    pool: Callable[[], VerifierPool | None],
    cache: VerdictCache | None = None,
) -> TrainResult:
    """One training phase, in the flow's process or a launched job's rank; GRPO's rewards judge through `pool()`
    (asked for only by GRPO, so an SFT phase starts no verifier processes)."""
    common: dict[str, Any] = {
        "seed": config.seed + round_id,
        "output_dir": output_dir,
        "system_prompt": config.problems.system_prompt,
        "callbacks": [CrashAtCheckpoint(phase, round_id), BeatOnStep()],
    }
    if phase == "sft":
        return train_sft(model, tokenizer, data, train_config, **common)
    verifier_pool = pool()
    assert verifier_pool is not None
    correctness = CorrectnessReward(
        {row["problem_id"]: row for row in data.to_pylist()}, config=config.verify, pool=verifier_pool, cache=cache
    )
    rewards, weights = reward_functions(correctness, config.verify.format_weight)
    result = train_grpo(
        model, tokenizer, data, train_config, rewards,
        max_completion_length=config.sample.max_tokens, reward_weights=weights, **common,
    )  # fmt: skip
    result.metrics["grpo_reward_seconds"] = correctness.seconds
    result.metrics["grpo_reward_completions"] = float(correctness.calls)
    result.metrics["grpo_reward_cached"] = float(correctness.cached)
    result.metrics["grpo_reward_verifier_calls"] = float(correctness.judged)
    return result


def verdict_metrics(verdicts: RunVerdicts) -> dict[str, float]:
    """How many stored verdicts a GRPO phase started with and how many it stored."""
    return {"grpo_verdicts_loaded": float(verdicts.loaded), "grpo_verdicts_stored": float(verdicts.stored)}


if __name__ == "__main__":
    run_job(sys.argv[1])
