"""Training inside real rounds: SFT then GRPO rewarded by the verifiers, SIGKILLed at a checkpoint of each phase
and resumed from it; the trained model is then loaded by vLLM for the round's evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import run_flywheel, tiny_config

pytestmark = pytest.mark.slow


def test_sft_then_grpo_resumes_each_phase_from_its_checkpoint_after_sigkill(tmp_path: Path) -> None:
    train = {
        "method": "sft_then_grpo",
        "max_steps": 6,
        "save_steps": 3,
        "warmup_steps": 1,
        "per_device_train_batch_size": 16,
        # the tiny warm start solves few problems, so train on all judged ones rather than only informative ones
        "grpo": {
            "problems": "all",
            "max_steps": 4,
            "learning_rate": 1.0e-4,
            "per_device_train_batch_size": 8,
            "num_generations": 4,
        },
    }
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tmp_path / "runs", train=train)))
    store = str(tmp_path / "runs")
    round_1 = tmp_path / "runs" / "tiny" / "rounds" / "r0001"

    killed = run_flywheel("run", str(config), cwd=tmp_path, kill_at="checkpoint:sft:3@1")
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert (round_1 / ".scratch" / "sft" / "checkpoint-3").is_dir()

    killed = run_flywheel("resume", "tiny", "--store", store, cwd=tmp_path, kill_at="checkpoint:grpo:3@1")
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert (round_1 / ".scratch" / "sft" / "checkpoint-6").is_dir()
    assert (round_1 / ".scratch" / "grpo" / "checkpoint-3").is_dir()
    assert not (round_1 / "manifest.json").exists()

    done = run_flywheel("resume", "tiny", "--store", store, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((round_1 / "manifest.json").read_text())["metrics"]
    assert metrics["sft_resumed_from_step"] == 6  # finished before the second kill: not trained again
    assert metrics["sft_steps"] == 6
    assert metrics["grpo_resumed_from_step"] == 3
    assert metrics["grpo_steps"] == 4
    assert metrics["grpo_problems"] == 40
    assert metrics["grpo_reward_seconds"] > 0  # the rewards came from the verifier pool
    assert 0.0 <= metrics["pass@1"] <= 1.0  # the evaluation loaded the trained model in vLLM
    assert not (round_1 / ".scratch").exists()  # checkpoints are working files, gone at commit
    assert (round_1 / "model" / "model.safetensors").is_file()


def test_launcher_trains_each_phase_as_a_two_process_distributed_job(tmp_path: Path) -> None:
    """`train.launcher` with torchrun: two CPU ranks (gloo) train SFT, then GRPO with each rank judging its rewards
    through the run's stored verdicts; the main rank hands the model back."""
    train = {
        "method": "sft_then_grpo",
        "launcher": ["torchrun", "--standalone", "--nproc_per_node", "2"],
        "max_steps": 4,
        "save_steps": 2,
        "warmup_steps": 1,
        "per_device_train_batch_size": 8,
        "grpo": {"problems": "all", "max_steps": 2, "per_device_train_batch_size": 4, "num_generations": 4},
    }
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tmp_path / "runs", train=train, verify={"workers": 1})))
    done = run_flywheel("run", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    round_1 = tmp_path / "runs" / "tiny" / "rounds" / "r0001"
    metrics = json.loads((round_1 / "manifest.json").read_text())["metrics"]
    assert metrics["sft_processes"] == 2 and metrics["grpo_processes"] == 2
    assert metrics["sft_steps"] == 4 and metrics["grpo_steps"] == 2
    # the main rank found the verdicts the round's sample stage stored, judged through them, and stored its own
    assert metrics["grpo_verdicts_loaded"] > 0
    judged = metrics["grpo_reward_cached"] + metrics["grpo_reward_verifier_calls"]
    assert judged == metrics["grpo_reward_completions"] > 0
    assert metrics["grpo_verdicts_stored"] <= metrics["grpo_reward_verifier_calls"]
    assert 0.0 <= metrics["pass@1"] <= 1.0  # vLLM loaded the model the job trained
    round_0 = json.loads((tmp_path / "runs" / "tiny" / "rounds" / "r0000" / "manifest.json").read_text())
    assert round_0["metrics"]["sft_processes"] == 1  # the warm start has no launcher: trained in the flow process


def test_a_grpo_round_short_of_informative_problems_samples_more_and_trains(tmp_path: Path) -> None:
    """One selected problem cannot fill a GRPO batch of two prompts (TRL would train 0 steps, and the round would
    be refused): dynamic sampling draws more problems, keeps the informative ones, and GRPO trains."""
    train = {
        "method": "grpo",
        "grpo": {
            "max_steps": 2,
            "learning_rate": 1.0e-4,
            "per_device_train_batch_size": 8,
            "num_generations": 4,
            "dynamic_sampling": {"enabled": True, "draw_size": 16, "max_extra_problems": 48},
        },
    }
    config = tmp_path / "tiny.yaml"
    changes = {
        "train": train,
        # one-digit sums, and a longer warm start than tiny_config's, so that some problems are informative
        "problems": {"arithmetic": {"digits": 1, "n_seed": 40, "n_test": 10, "n_train": 50}},
        "warm_start": {"max_steps": 60, "learning_rate": 3.0e-3, "warmup_steps": 2, "per_device_train_batch_size": 16},
        "select": {"problems_per_round": 1},
        "sample": {"k": 4, "max_tokens": 6},
        "evaluate": {"n_problems": 10},
    }
    config.write_text(yaml.safe_dump(tiny_config(tmp_path / "runs", **changes)))
    done = run_flywheel("run", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    round_1 = tmp_path / "runs" / "tiny" / "rounds" / "r0001"
    manifest = json.loads((round_1 / "manifest.json").read_text())
    metrics = manifest["metrics"]
    assert metrics["problems"] == 1 and metrics["grpo_informative_needed"] == 4  # 2 steps x 2 prompts
    assert metrics["grpo_extra_problems_drawn"] > 0
    (own_rate,) = pq.read_table(round_1 / "difficulty.parquet").column("pass_rate").to_pylist()
    own = int(own_rate is not None and 0.0 < own_rate < 1.0)
    assert metrics["grpo_problems"] == own + metrics["grpo_extra_problems_informative"]
    assert metrics["grpo_problems"] >= 2  # at least one batch
    assert metrics["grpo_steps"] == 2 and "untrained" not in metrics
    assert "grpo_extra_problems.parquet" in {entry["path"] for entry in manifest["files"]}
