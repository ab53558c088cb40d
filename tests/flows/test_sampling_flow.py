"""A round sampled from an external OpenAI-compatible endpoint, end to end: the `flywheel` command samples round 1
from a `vllm serve` of a model, evaluates on its own engine, and keeps the endpoint's key out of the store and the
logs."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from configs import EngineConfig, ModelConfig
from flows.serving import ManagedServers
from tests.conftest import CommittedRun, run_flywheel, tiny_config

pytestmark = pytest.mark.slow

SECRET = "sk-flow-credential-9876543210"


def test_a_round_samples_from_an_external_endpoint_and_stores_no_credential(
    committed_run: CommittedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Round 0 as usual (the session's tiny run, rolled back to it); then round 1 samples from a `vllm serve` of
    round 0's model, playing the teacher (the backend is a runtime setting, so the run continues with it)."""
    run = committed_run.copy_to(tmp_path)
    config = tiny_config(tmp_path / "runs")
    rolled = run_flywheel("rollback", "tiny", "--to", "0", "--store", str(tmp_path / "runs"), cwd=tmp_path)
    assert rolled.returncode == 0, rolled.stderr[-3000:]

    server = ManagedServers(
        str(run / "rounds" / "r0000" / "model"),
        ModelConfig(init="tiny-arithmetic", dtype="float32", max_model_len=32),
        EngineConfig(enforce_eager=True, extra={"distributed_executor_backend": "uni"}),
        seed=0,
    )
    urls, served_model = server.urls, server.served_model
    try:
        monkeypatch.setenv("TEACHER_KEY", SECRET)
        config["engine"] = {
            **config["engine"],
            "backend": "openai",
            "openai": {"mode": "external", "endpoints": urls, "api_key_env": "TEACHER_KEY"},
        }
        (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
        result = run_flywheel("run", "tiny.yaml", cwd=tmp_path)
    finally:
        server.close()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    traces = pq.read_table(run / "rounds" / "r0001" / "traces")
    assert set(traces.column("model_ref").to_pylist()) == {f"external:{served_model}"}
    assert traces.num_rows == 40 * 3
    manifest = json.loads((run / "rounds" / "r0001" / "manifest.json").read_text())
    assert manifest["sampling"] == {
        "backend": "openai",
        "replicas": 1,
        "mode": "external",
        "api_key_env": "TEACHER_KEY",
        "endpoints": urls,
        "served_model": served_model,
        "traces_from": "external endpoints",
    }
    metrics = manifest["metrics"]
    assert metrics["sample_replica0_requests"] == 40 * 3  # n=1 requests in mode external
    assert metrics["sample_replica0_completion_tokens"] == sum(traces.column("completion_tokens").to_pylist())
    # Evaluation samples the round's own checkpoint in-process, not the teacher.
    evaluated = pq.read_table(run / "rounds" / "r0001" / "eval.parquet")
    assert evaluated.num_rows > 0

    stored = [path for path in run.rglob("*") if path.is_file()]
    assert not [path for path in stored if SECRET.encode() in path.read_bytes()], "the API key reached the store"
    assert SECRET not in result.stdout + result.stderr
