"""A round sampled from an external OpenAI-compatible endpoint, end to end: the `flywheel` command samples round 1
from a `vllm serve` of the tiny model, evaluates on its own engine, and keeps the endpoint's key out of the store and
the logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from configs import EngineConfig, ModelConfig
from flows.serving import ManagedServers
from stages.tiny_model import build_tiny_arithmetic_model
from tests.conftest import run_flywheel, tiny_config

pytestmark = pytest.mark.slow

SECRET = "sk-flow-credential-9876543210"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedServers]:
    """A `vllm serve` of the tiny model (the run's round-0 model: same recipe, same seed), playing the teacher."""
    folder = tmp_path_factory.mktemp("teacher")
    model, tokenizer = build_tiny_arithmetic_model(seed=0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    servers = ManagedServers(
        str(folder),
        ModelConfig(init="tiny-arithmetic", dtype="float32", max_model_len=32),
        EngineConfig(enforce_eager=True, extra={"distributed_executor_backend": "uni"}),
        seed=0,
    )
    yield servers
    servers.close()


def test_a_round_samples_from_an_external_endpoint_and_stores_no_credential(
    server: ManagedServers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEACHER_KEY", SECRET)
    config = tiny_config(tmp_path / "runs", warm_start=None)
    config["engine"] = {
        **config["engine"],
        "backend": "openai",
        "openai": {"mode": "external", "endpoints": server.urls, "api_key_env": "TEACHER_KEY"},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    result = run_flywheel("run", "tiny.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    run = tmp_path / "runs" / "tiny"
    traces = pq.read_table(run / "rounds" / "r0001" / "traces")
    assert set(traces.column("model_ref").to_pylist()) == {f"external:{server.served_model}"}
    assert traces.num_rows == 40 * 3
    manifest = json.loads((run / "rounds" / "r0001" / "manifest.json").read_text())
    assert manifest["sampling"] == {
        "backend": "openai",
        "replicas": 1,
        "mode": "external",
        "api_key_env": "TEACHER_KEY",
        "endpoints": server.urls,
        "served_model": server.served_model,
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
