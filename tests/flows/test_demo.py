"""The demo's claim, checked on its real config: one round of the loop lifts held-out accuracy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_one_round_of_the_demo_raises_held_out_accuracy(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "demo", "--rounds", "1", "--store", str(tmp_path / "runs")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-5000:]
    assert "held-out accuracy per round" in result.stdout
    rounds = tmp_path / "runs" / "demo" / "rounds"
    accuracy = [json.loads((rounds / f"r{r:04d}" / "manifest.json").read_text())["metrics"]["pass@1"] for r in (0, 1)]
    assert accuracy[0] > 0.4, accuracy  # the warm start learned something
    # Measured with the locked dependencies: 0.916 -> 0.956. (0.642 -> 0.848 with the unpinned versions of before;
    # the stronger warm start leaves less to gain.)
    assert accuracy[1] > accuracy[0] + 0.02, accuracy


def test_one_grpo_round_of_the_grpo_demo_raises_held_out_accuracy(tmp_path: Path) -> None:
    config = REPO / "configs" / "demo-grpo.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", str(config), "--rounds", "1", "--store", str(tmp_path / "runs")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-5000:]
    rounds = tmp_path / "runs" / "demo-grpo" / "rounds"
    manifests = [json.loads((rounds / f"r{r:04d}" / "manifest.json").read_text()) for r in (0, 1)]
    accuracy = [manifest["metrics"]["pass@1"] for manifest in manifests]
    assert manifests[1]["metrics"]["grpo_problems"] > 500  # trained on the informative problems of the round
    assert manifests[1]["metrics"]["grpo_reward_last"] > manifests[1]["metrics"]["grpo_reward_first"]
    assert accuracy[1] > accuracy[0] + 0.02, accuracy  # measured with the locked dependencies: 0.916 -> 0.940
