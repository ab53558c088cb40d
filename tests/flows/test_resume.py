"""Crash recovery with real processes: `flywheel run` is SIGKILLed at every stage boundary and mid-sampling,
`flywheel resume` finishes the round; then rollback, a round re-done on two engine replicas of which one is SIGKILLed
mid-shard, and two writers on one run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import REPO, CommittedRun, file_digests, run_flywheel, tiny_config

pytestmark = pytest.mark.slow
# A SIGKILL right after training is in tests/flows/test_stopping.py, with the other ways a command is stopped.
KILL_POINTS = ("stage:select", "shard:traces:0", "stage:sample", "stage:curate", "stage:evaluate")


def _keys(round_dir: Path) -> list[tuple[str, int]]:
    traces = pq.read_table(round_dir / "traces", columns=["problem_id", "sample_idx"])
    return sorted(zip(traces.column("problem_id").to_pylist(), traces.column("sample_idx").to_pylist(), strict=True))


def _check_manifest(round_dir: Path) -> None:
    manifest = json.loads((round_dir / "manifest.json").read_text())
    actual = file_digests(round_dir)
    actual.pop("manifest.json")
    assert {entry["path"]: entry["sha256"] for entry in manifest["files"]} == actual


def test_resume_after_sigkill_at_every_stage_boundary(committed_run: CommittedRun, tmp_path: Path) -> None:
    """Round 0 is the session's tiny run's, rolled back to it; round 1 is killed at every stage boundary."""
    run = committed_run.copy_to(tmp_path)
    config = tmp_path / "tiny.yaml"
    round_1 = run / "rounds" / "r0001"
    rolled = run_flywheel("rollback", "tiny", "--to", "0", "--store", str(tmp_path / "runs"), cwd=tmp_path)
    assert rolled.returncode == 0, rolled.stderr[-3000:]
    archived_before = set((run / "archive").glob("*/r0001"))

    first = run_flywheel("run", str(config), cwd=tmp_path, kill_at="stage:select@1")
    assert first.returncode == -9, first.stderr[-3000:]
    assert (run / "rounds" / "r0000" / "manifest.json").exists() and not (round_1 / "manifest.json").exists()
    round_0 = file_digests(run / "rounds" / "r0000")

    for kill_at in KILL_POINTS[1:]:
        if kill_at == "stage:curate":
            # a part file cut short after it was journaled: found by its hash and sampled again
            part = round_1 / "traces" / "part-00001.parquet"
            part.write_bytes(part.read_bytes()[:100])
        killed = run_flywheel("resume", "tiny", "--store", str(tmp_path / "runs"), cwd=tmp_path, kill_at=f"{kill_at}@1")
        assert killed.returncode == -9, (kill_at, killed.stderr[-3000:])
        assert not (round_1 / "manifest.json").exists()
        if kill_at == "stage:curate":
            assert "re-sampling shard 1" in killed.stderr + killed.stdout
            assert "part-00001.parquet does not match its recorded sha256" in killed.stderr + killed.stdout

    status = run_flywheel("status", "tiny", "--store", str(tmp_path / "runs"), cwd=tmp_path)
    assert "open round 1 (not committed): finished stages: select, sample, curate, train, evaluate" in status.stdout
    assert "stale (holder is dead)" in status.stdout

    done = run_flywheel("resume", "tiny", "--store", str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run / "HEAD").read_text().strip() == "1"
    _check_manifest(round_1)
    assert file_digests(run / "rounds" / "r0000") == round_0

    keys = _keys(round_1)
    assert len(keys) == len(set(keys)) == 40 * 3
    assert keys == _keys(committed_run.run / "rounds" / "r0001")  # the same config, never interrupted

    # Rollback: round 1 is archived untouched, round 0 stays as it was, the next round 1 starts from round 0.
    round_1_traces = _traces(round_1)
    round_1_digests = file_digests(round_1)
    rolled = run_flywheel("rollback", "tiny", "--to", "0", "--store", str(tmp_path / "runs"), cwd=tmp_path)
    assert rolled.returncode == 0, rolled.stderr
    assert (run / "HEAD").read_text().strip() == "0" and not round_1.exists()
    archived = sorted(set((run / "archive").glob("*/r0001")) - archived_before)
    assert len(archived) == 1 and file_digests(archived[0]) == round_1_digests
    # The new round 1 samples with two engine replicas (engine is a runtime setting), and replica 1's first
    # process is SIGKILLed with its half of the first shard sampled: the run still completes, each (problem_id,
    # sample_idx) once, with the traces the in-process engine gave the archived round 1 (the same seeds).
    on_replicas = tiny_config(tmp_path / "runs")
    on_replicas["engine"] = {**on_replicas["engine"], "backend": "replicas", "replicas": 2}
    config.write_text(yaml.safe_dump(on_replicas))
    again = run_flywheel("run", str(config), cwd=tmp_path, kill_at="replica:1.0@1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "replica 1.0 died sampling 8 problems of the shard" in again.stdout + again.stderr
    manifest = json.loads((round_1 / "manifest.json").read_text())
    assert manifest["model_in"] == "round:0"
    assert _traces(round_1).equals(round_1_traces)
    assert manifest["sampling"] == {"backend": "replicas", "replicas": 2}
    metrics = manifest["metrics"]
    assert metrics["sample_replica0_requests"] + metrics["sample_replica1_requests"] == 40
    replica_tokens = metrics["sample_replica0_completion_tokens"] + metrics["sample_replica1_completion_tokens"]
    assert replica_tokens == sum(round_1_traces.column("completion_tokens").to_pylist())
    assert file_digests(run / "rounds" / "r0000") == round_0
    assert file_digests(archived[0]) == round_1_digests


def _traces(round_dir: Path) -> pa.Table:
    traces = pq.read_table(round_dir / "traces")
    return traces.sort_by([("problem_id", "ascending"), ("sample_idx", "ascending")])


def test_second_writer_is_refused_and_a_dead_writers_lock_is_taken_over(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tmp_path / "runs")))
    lock = tmp_path / "runs" / "tiny" / "LOCK"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FLYWHEEL_KILL_AT", None)
    env["FLYWHEEL_PAUSE_AT"] = "stage:seed_data@0"  # holds the lock until it is killed, however fast the run is
    holder = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not lock.exists() and holder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert lock.exists(), "the first run never took the lock"
        writer = json.loads(lock.read_text())["pid"]  # the supervised process that runs the flow
        second = run_flywheel("run", str(config), cwd=tmp_path)
        assert second.returncode == 2
        assert f"is locked by pid {writer} on host" in second.stderr
        os.kill(writer, signal.SIGKILL)  # the writer dies the hard way; its supervisor cleans up the rest
        assert holder.wait(timeout=60) == -signal.SIGKILL
    finally:
        holder.kill()
        holder.wait()
    assert lock.exists()  # SIGKILL leaves the lock behind
    third = run_flywheel("run", str(config), cwd=tmp_path, kill_at="stage:evaluate@0")
    assert third.returncode == -9
    assert "taking over the lock" in third.stderr + third.stdout
