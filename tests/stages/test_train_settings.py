"""Training settings checked before anything trains: pretrained-model defaults, warnings, untrained rounds."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from configs import GrpoConfig, TrainConfig
from configs.loader import parse_config
from configs.schema import ANSWER_TAG_INSTRUCTION
from stages.train import training_warnings, untrained, warmup_steps_of
from tests.conftest import REPO


def test_pretrained_defaults_and_warnings_about_warmup_and_epochs() -> None:
    defaults = TrainConfig()
    assert (defaults.learning_rate, defaults.per_device_train_batch_size, defaults.warmup_steps) == (1e-5, 8, 0.05)
    assert training_warnings(defaults, "sft", 2000) == []
    assert warmup_steps_of(0.05, 300) == 15 and warmup_steps_of(50, 300) == 50
    late = training_warnings(TrainConfig(max_steps=50, warmup_steps=50), "sft", 2000)
    assert len(late) == 1 and "never gets to its peak" in late[0]
    small = training_warnings(TrainConfig(max_steps=100), "sft", 40)
    assert len(small) == 1 and "only 40 examples 20 times" in small[0]
    grpo = TrainConfig(grpo=GrpoConfig(max_steps=10, warmup_steps=10))
    assert "grpo: warmup_steps (10)" in training_warnings(grpo, "grpo", 5)[0]


def test_a_round_that_trained_no_step_is_refused_unless_allowed() -> None:
    with pytest.raises(ValueError, match="round 2: training trained 0 steps.*allow_untrained"):
        untrained({"grpo_problems": 0.0}, ("grpo",), TrainConfig(), 2)
    assert untrained({"grpo_problems": 0.0}, ("grpo",), TrainConfig(allow_untrained=True), 2)
    assert not untrained({"sft_steps": 3.0, "grpo_problems": 0.0}, ("sft", "grpo"), TrainConfig(), 2)


def test_the_demo_keeps_the_tiny_models_values_in_its_config() -> None:
    demo = parse_config(yaml.safe_load((REPO / "configs" / "demo.yaml").read_text()))
    assert demo.warm_start is not None
    warm = demo.warm_start
    assert (warm.learning_rate, warm.warmup_steps, warm.per_device_train_batch_size) == (3e-3, 50, 64)
    assert (demo.train.learning_rate, demo.train.warmup_steps, demo.train.per_device_train_batch_size) == (1e-3, 50, 64)
    grpo_demo = parse_config(yaml.safe_load((REPO / "configs" / "demo-grpo.yaml").read_text()))
    assert grpo_demo.warm_start == demo.warm_start


def test_prompting_note_says_whether_the_default_system_message_is_used() -> None:
    from stages.sample import default_system_message, prompting_note
    from stages.tiny_model import build_tiny_arithmetic_model

    _, tokenizer = build_tiny_arithmetic_model(seed=0)
    assert default_system_message(tokenizer) is None
    assert prompting_note(tokenizer, None) == (
        "prompting: chat template without a system message (problems.system_prompt is not set)"
    )


def test_prompting_record_names_the_template_the_system_message_and_the_answer_instruction() -> None:
    from configs import ProblemsConfig, ReasoningGymConfig
    from stages.puzzles import COUNTDOWN_ANSWER_INSTRUCTION, answer_instructions
    from stages.sample import describe_prompting, prompting_record
    from stages.tiny_model import CHAT_TEMPLATE, build_tiny_arithmetic_model

    _, tokenizer = build_tiny_arithmetic_model(seed=0)
    record = prompting_record(tokenizer, None, answer_instructions(ProblemsConfig()))
    assert record == {
        "chat_template_sha256": hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest()[:12],
        "system_message": None,
        "system_message_from": None,
        "template_default_system_message": None,
        "answer_instructions": {"arithmetic": None},
    }
    assert describe_prompting(record)[1:] == [
        "system message: none", "answer instruction (arithmetic): none (prompts as the source writes them)"
    ]
    gym = ProblemsConfig(source="reasoning_gym", reasoning_gym=ReasoningGymConfig(tasks=["chain_sum"]))
    told = prompting_record(tokenizer, "Be brief.", answer_instructions(gym))
    assert told["system_message_from"] == "problems.system_prompt"
    assert describe_prompting(told)[1:] == [
        "system message: 'Be brief.' (problems.system_prompt)",
        f"answer instruction (reasoning_gym): {ANSWER_TAG_INSTRUCTION!r}",
    ]
    assert answer_instructions(ProblemsConfig(source="countdown")) == {"countdown": COUNTDOWN_ANSWER_INSTRUCTION}


@pytest.mark.slow
def test_smollm2s_default_system_message_is_found_and_reported(smollm2: Path) -> None:
    from transformers import AutoTokenizer

    from stages.sample import default_system_message, describe_prompting, prompting_note, prompting_record

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    default = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert default_system_message(tokenizer) == default
    assert f"the chat template's default system message is used: {default!r}" in prompting_note(tokenizer, None)
    assert f"replacing the chat template's default {default!r}" in prompting_note(tokenizer, "Be brief.")
    used = prompting_record(tokenizer, None, {"arithmetic": None})
    assert (used["system_message"], used["system_message_from"]) == (default, "chat template default")
    assert f"system message: {default!r} (the chat template's default;" in describe_prompting(used)[1]
    replaced = describe_prompting(prompting_record(tokenizer, "Be brief.", {"arithmetic": None}))[1]
    assert replaced == (
        f"system message: 'Be brief.' (problems.system_prompt, replacing the chat template's default {default!r})"
    )


def test_cpu_training_autocasts_to_bf16_only_where_the_cpu_has_bf16_instructions(tmp_path: Path) -> None:
    import torch
    from trl import GRPOConfig, SFTConfig

    from stages.train import _common_arguments

    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    arguments = _common_arguments(TrainConfig(use_cpu=True), str(tmp_path), seed=0)
    assert SFTConfig(**arguments).bf16 is native and GRPOConfig(**arguments).bf16 is native
    assert SFTConfig(**arguments | {"bf16": True}).bf16  # train.trl_args win over this default
