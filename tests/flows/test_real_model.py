"""Smoke test on a real pretrained model: one tiny round of SmolLM2-135M-Instruct, as a user runs it.

It exercises what the tiny character model cannot: a BPE tokenizer, a chat template that inserts its own default
system message, seeded sampling on vLLM's CPU backend with prompts that do not fit one engine step (with chunked
prefill on, that crashed the engine: `CPU Generator does not use offset`), SFT of a pretrained model with the
default training settings, and evaluation of the new checkpoint. A handful of problems, a few tokens, 2 SFT steps.
Its problems are the README's `reasoning_gym` example (leg_counting and basic_arithmetic), at a smaller size: the
shared instructions of templated prompts must not be taken for contamination, or no problem would be eligible.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from configs.schema import ANSWER_TAG_INSTRUCTION
from tests.conftest import run_flywheel

pytestmark = pytest.mark.slow


def test_one_tiny_round_on_smollm2(smollm2: Path, tmp_path: Path) -> None:
    # Checkpoints without the optimizer state: 0.5 GB instead of 1.6 GB per phase (nothing here resumes training).
    model_only = {"trl_args": {"save_only_model": True}}
    config = {
        "run_name": "smollm2-smoke",
        "store": str(tmp_path / "runs"),
        "rounds": 1,
        # 256-token engine steps: 16 prompts of ~100 tokens need several, so a prefill would be chunked if it could
        "model": {"path": str(smollm2), "dtype": "float32", "max_model_len": 256},
        "engine": {
            "enforce_eager": True,
            "core_in_process": True,
            "extra": {"max_num_batched_tokens": 256, "distributed_executor_backend": "uni"},
        },
        "problems": {
            "source": "reasoning_gym",
            "reasoning_gym": {"tasks": ["leg_counting", "basic_arithmetic"], "n_seed": 4, "n_train": 10, "n_test": 3},
        },
        # one step on the labelled seed split, so round 1 has SFT data even if no sample is correct
        "warm_start": {"max_steps": 1, "warmup_steps": 0, "per_device_train_batch_size": 4, **model_only},
        "select": {"problems_per_round": 8},
        "sample": {"k": 2, "max_tokens": 12, "shard_size": 8},
        "train": {"max_steps": 2, "warmup_steps": 0, "per_device_train_batch_size": 4, **model_only},
        "evaluate": {"n_problems": 6},
    }
    path = tmp_path / "smollm2.yaml"
    path.write_text(yaml.safe_dump(config))
    done = run_flywheel("run", str(path), cwd=tmp_path, timeout=1500)
    assert done.returncode == 0, done.stderr[-5000:]
    log = done.stdout + done.stderr
    assert "chunked prefill is off" in log
    assert "the chat template's default system message is used: 'You are a helpful AI assistant named SmolLM" in log

    rounds = tmp_path / "runs" / "smollm2-smoke" / "rounds"
    traces = pq.read_table(rounds / "r0001" / "traces").to_pylist()
    assert len(traces) == 16 and {t["sample_idx"] for t in traces} == {0, 1}
    assert all(ANSWER_TAG_INSTRUCTION in t["prompt"] for t in traces)
    assert len({t["seed"] for t in traces}) == 8  # one seed per problem; vLLM derives sample i's as seed + i
    assert all(t["completion_tokens"] > 0 for t in traces)
    manifest = json.loads((rounds / "r0001" / "manifest.json").read_text())
    metrics = manifest["metrics"]
    assert metrics["sft_steps"] == 2 and metrics["sft_tokens"] > 0
    assert "untrained" not in metrics
    assert 0.0 <= metrics["pass@1"] <= 1.0
    assert manifest["prompting"]["answer_instructions"] == {"reasoning_gym": ANSWER_TAG_INSTRUCTION}
    assert (rounds / "r0001" / "model" / "tokenizer.json").is_file()  # the BPE tokenizer travels with the model
