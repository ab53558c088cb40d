from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import torch

from configs import ArithmeticConfig, GrpoConfig, LoraConfig, TrainConfig, VerifyConfig
from stages.curate import labelled_dataset
from stages.problems import generate_arithmetic, split_of
from stages.rewards import CorrectnessReward
from stages.tiny_model import build_tiny_arithmetic_model
from stages.train import grpo_problems_of, to_sft_records, train_grpo, train_sft
from verifiers.pool import VerifierPool

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
    result = train_sft(model, tokenizer, data, config, seed=0, output_dir=str(tmp_path))
    after = _completion_loss(result.model, result.tokenizer, records)
    assert after < before - 0.5, (before, after)
    assert result.metrics["sft_steps"] == 60
    assert result.metrics["sft_tokens"] > 0
    assert result.metrics["sft_resumed_from_step"] == 0
    assert (tmp_path / "checkpoint-60" / "trainer_state.json").is_file()  # the end of a phase is checkpointed
    assert records[0]["completion"] == [{"role": "assistant", "content": data.column("completion")[0].as_py()}]


def test_empty_dataset_is_refused(tmp_path: Path) -> None:
    model, tokenizer = build_tiny_arithmetic_model(seed=0)
    empty = labelled_dataset(split_of(generate_arithmetic(ArithmeticConfig(n_seed=0, n_test=1), 0), "seed"), 0)
    with pytest.raises(ValueError, match="training dataset is empty"):
        train_sft(model, tokenizer, empty, TrainConfig(), seed=0, output_dir=str(tmp_path))


def test_finished_phase_resumes_from_its_last_checkpoint_without_training_again(tmp_path: Path) -> None:
    problems = generate_arithmetic(ArithmeticConfig(n_seed=64, n_test=1, n_train=1), seed=0)
    data = labelled_dataset(split_of(problems, "seed"), round_id=0)
    config = TrainConfig(max_steps=6, save_steps=4, warmup_steps=0, per_device_train_batch_size=16)
    model, tokenizer = build_tiny_arithmetic_model(seed=0)
    first = train_sft(model, tokenizer, data, config, seed=0, output_dir=str(tmp_path))
    assert sorted(path.name for path in tmp_path.glob("checkpoint-*")) == ["checkpoint-6"]  # save_total_limit 1
    fresh_model, _ = build_tiny_arithmetic_model(seed=1)
    again = train_sft(fresh_model, tokenizer, data, config, seed=0, output_dir=str(tmp_path))
    assert again.metrics["sft_resumed_from_step"] == 6
    assert again.metrics["sft_steps"] == 6
    for name, weight in first.model.state_dict().items():
        assert torch.equal(weight, again.model.state_dict()[name]), name


def test_lora_adapter_is_trained_and_merged_into_a_plain_model(tmp_path: Path) -> None:
    problems = generate_arithmetic(ArithmeticConfig(n_seed=128, n_test=1, n_train=1), seed=0)
    data = labelled_dataset(split_of(problems, "seed"), round_id=0)
    model, tokenizer = build_tiny_arithmetic_model(seed=0)
    base_names = set(model.state_dict())
    records = to_sft_records(data.slice(0, 32), system_prompt=None)
    before = _completion_loss(model, tokenizer, records)
    config = TrainConfig(
        max_steps=40, learning_rate=1e-2, warmup_steps=2, per_device_train_batch_size=32, lora=LoraConfig(r=8, alpha=16)
    )
    result = train_sft(model, tokenizer, data, config, seed=0, output_dir=str(tmp_path))
    assert not hasattr(result.model, "peft_config")  # merged: a plain transformers model
    assert set(result.model.state_dict()) == base_names
    assert _completion_loss(result.model, result.tokenizer, records) < before - 0.3
    result.model.save_pretrained(tmp_path / "saved")
    assert not (tmp_path / "saved" / "adapter_config.json").exists()


def test_grpo_steps_are_rewarded_by_the_math_verifier(tmp_path: Path) -> None:
    problems = generate_arithmetic(ArithmeticConfig(digits=1, n_seed=59, n_test=1, n_train=40), seed=0)
    model, tokenizer = build_tiny_arithmetic_model(seed=0)
    warm = TrainConfig(max_steps=80, learning_rate=3e-3, warmup_steps=5, per_device_train_batch_size=32)
    seed_data = labelled_dataset(split_of(problems, "seed"), round_id=0)
    model = train_sft(model, tokenizer, seed_data, warm, seed=0, output_dir=str(tmp_path / "sft")).model
    before = {name: weight.clone() for name, weight in model.state_dict().items()}
    train = split_of(problems, "train")
    config = TrainConfig(
        grpo=GrpoConfig(max_steps=4, learning_rate=1e-4, per_device_train_batch_size=16, num_generations=4)
    )
    with VerifierPool(1, timeout_s=5.0, memory_limit_mb=1024) as pool:
        reward = CorrectnessReward(
            {row["problem_id"]: row for row in train.to_pylist()}, config=VerifyConfig(), pool=pool
        )
        result = train_grpo(
            model, tokenizer, train, config, [reward], seed=0, output_dir=str(tmp_path / "g"), max_completion_length=6
        )
    assert reward.calls == 4 * 16  # every completion of every step went through the verifier
    assert result.metrics["grpo_steps"] == 4
    assert 0.0 < max(result.metrics["grpo_reward_first"], result.metrics["grpo_reward_last"]) <= 1.0
    changed = [name for name, weight in result.model.state_dict().items() if not torch.equal(weight, before[name])]
    assert changed


def test_grpo_problems_are_the_informative_ones() -> None:
    problems = generate_arithmetic(ArithmeticConfig(n_seed=0, n_test=1, n_train=4), seed=0)
    train = split_of(problems, "train")
    ids = train.column("problem_id").to_pylist()
    difficulty = pa.table(
        {"problem_id": ids, "pass_rate": [0.0, 0.5, 1.0, None]},
        schema=pa.schema([pa.field("problem_id", pa.string()), pa.field("pass_rate", pa.float64())]),
    )
    assert grpo_problems_of(train, difficulty, "informative").column("problem_id").to_pylist() == [ids[1]]
    assert grpo_problems_of(train, difficulty, "all").column("problem_id").to_pylist() == ids[:3]


def test_trl_args_override_flywheel_defaults(tmp_path: Path) -> None:
    problems = generate_arithmetic(ArithmeticConfig(n_seed=32, n_test=1, n_train=1), seed=0)
    data = labelled_dataset(split_of(problems, "seed"), round_id=0)
    model, tokenizer = build_tiny_arithmetic_model(seed=0)
    config = TrainConfig(max_steps=3, warmup_steps=0, per_device_train_batch_size=8, trl_args={"logging_steps": 1})
    result = train_sft(model, tokenizer, data, config, seed=0, output_dir=str(tmp_path))
    assert [entry["step"] for entry in result.trainer.state.log_history if "loss" in entry] == [1, 2, 3]
