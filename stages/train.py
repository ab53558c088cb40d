"""Supervised fine-tuning with TRL's `SFTTrainer`: rejection-sampling fine-tuning / expert iteration.

Data is conversational prompt-completion (the prompt as a user message, the kept completion as the
assistant reply), so TRL renders it with the model's chat template, exactly as sampling does, and puts
the loss on completion tokens only. The trained model is returned in memory; the caller stores it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from configs import TrainConfig
from stages.curate import DATASET_SCHEMA
from stages.sample import chat_messages


@dataclass
class TrainResult:
    model: Any
    tokenizer: Any
    metrics: dict[str, float]


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


def train_sft(
    model: Any,
    tokenizer: Any,
    dataset: pa.Table,
    config: TrainConfig,
    *,
    seed: int,
    scratch_dir: str,
    system_prompt: str | None = None,
) -> TrainResult:
    """Fine-tune `model` (a loaded model or a path/hub id) on `dataset`; `scratch_dir` takes TRL's files."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    if dataset.num_rows == 0:
        raise ValueError("train: the training dataset is empty; nothing was kept to train on")
    if isinstance(model, str):
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
        model = AutoModelForCausalLM.from_pretrained(model, dtype="auto")
    use_cpu = config.use_cpu if config.use_cpu is not None else not torch.cuda.is_available()
    arguments = SFTConfig(
        output_dir=scratch_dir,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        warmup_steps=config.warmup_steps,
        lr_scheduler_type=config.lr_scheduler_type,
        max_grad_norm=config.max_grad_norm,
        weight_decay=config.weight_decay,
        seed=seed,
        data_seed=seed,
        use_cpu=use_cpu,
        save_strategy="no",
        report_to="none",
        logging_steps=max(1, config.max_steps // 4),
        dataloader_num_workers=0,
        **config.trl_args,
    )
    train_dataset = Dataset.from_list(to_sft_records(dataset, system_prompt))
    trainer = SFTTrainer(model=model, args=arguments, train_dataset=train_dataset, processing_class=tokenizer)
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    trained = trainer.model
    trained.eval()
    metrics = {
        "train_loss": float(output.training_loss),
        "train_steps": float(output.global_step),
        "train_seconds": seconds,
        "train_examples": float(dataset.num_rows),
        "train_tokens": _tokens_seen(trainer.state.log_history),
    }
    return TrainResult(trained, trainer.processing_class, metrics)


def _tokens_seen(log_history: list[dict[str, Any]]) -> float:
    """Tokens trained on, from TRL's running `num_tokens` log entry (0 when it logged none)."""
    counts = [entry["num_tokens"] for entry in log_history if "num_tokens" in entry]
    return float(counts[-1]) if counts else 0.0
