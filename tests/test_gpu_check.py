"""scripts/gpu_check.py, run on CPU as a user runs it: every check passes, and a missing GPU is a clear failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "gpu_check.py"
pytestmark = pytest.mark.slow  # trains three small models

CHECKS = ["device", "matmul bf16", "matmul fp16", "sft", "lora", "grpo", "memory"]


def test_every_check_passes_on_cpu(tmp_path: Path) -> None:
    report = tmp_path / "checks.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--json", str(report)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    results = json.loads(report.read_text())
    assert [result["name"] for result in results] == CHECKS
    assert all(result["passed"] for result in results), results
    table = done.stdout.splitlines()
    assert table[-1] == "all checks passed"
    assert all(" PASS " in line for line in table[1:-1])
    by_name = {result["name"]: result["detail"] for result in results}
    assert "loss" in by_name["sft"] and "merged, logits within" in by_name["lora"] and "mean reward" in by_name["grpo"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_the_cuda_check_fails_and_says_why() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "device  FAIL" in done.stdout and "CUDA is not available" in done.stdout
    assert done.stdout.splitlines()[-1] == "FAILED: device"
