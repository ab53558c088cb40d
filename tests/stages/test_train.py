from __future__ import annotations

from pathlib import Path

import pytest
import torch

from configs import ArithmeticConfig, TrainConfig
from stages.curate import labelled_dataset
from stages.problems import generate_arithmetic, split_of
from stages.tiny_model import build_tiny_arithmetic_model
from stages.train import to_sft_records, train_sft

pytestmark = pytest.mark.slow


def _completion_loss(model: torch.nn.Module, tokenizer: object, records: list[dict]) -> float:
    """Mean cross-entropy of the completion tokens given the prompt, computed by hand."""
    losses = []
    for record in records:
        prompt = tokenizer.apply_chat_template(record["prompt"], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(record["prompt"] + record["completion"], tokenize=False)
        prompt_ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
        full_ids = tokenizer(full, add_special_tokens=False, return_tensors="pt").input_ids
        labels = full_ids.clone()
        labels[:, : prompt_ids.shape[1]] = -100
        with torch.no_grad():
            losses.append(model(input_ids=full_ids, labels=labels).loss.item())
    return sum(losses) / len(losses)


def test_sft_on_labelled_examples_lowers_completion_loss(tmp_path: Path) -> None:
    problems = generate_arithmetic(ArithmeticConfig(n_seed=128, n_test=1, n_train=1), seed=0)
    data = labelled_dataset(split_of(problems, "seed"), round_id=0)
    model, tokenizer = build_tiny_arithmetic_model(seed=0)
    records = to_sft_records(data.slice(0, 32), system_prompt=None)
    before = _completion_loss(model, tokenizer, records)
    config = TrainConfig(max_steps=60, learning_rate=3e-3, warmup_steps=5, per_device_train_batch_size=32)
    result = train_sft(model, tokenizer, data, config, seed=0, scratch_dir=str(tmp_path))
    after = _completion_loss(result.model, result.tokenizer, records)
    assert after < before - 0.5, (before, after)
    assert result.metrics["train_steps"] == 60
    assert result.metrics["train_tokens"] > 0
    assert records[0]["completion"] == [{"role": "assistant", "content": data.column("completion")[0].as_py()}]


def test_empty_dataset_is_refused(tmp_path: Path) -> None:
    model, tokenizer = build_tiny_arithmetic_model(seed=0)
    empty = labelled_dataset(split_of(generate_arithmetic(ArithmeticConfig(n_seed=0, n_test=1), 0), "seed"), 0)
    with pytest.raises(ValueError, match="training dataset is empty"):
        train_sft(model, tokenizer, empty, TrainConfig(), seed=0, scratch_dir=str(tmp_path))
