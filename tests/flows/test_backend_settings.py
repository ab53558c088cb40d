"""The sampling backends' settings, without an engine: what the config accepts, how replicas share the machine,
how engine options become `vllm serve` flags, and what the manifest records."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from configs import EngineConfig
from flows.engines import EngineCache, _sum_by_replica, api_key, backend_for, replica_metrics
from flows.ray_sampling import replica_resources
from flows.replicas import ReplicaError, split_rows
from flows.serving import replica_environments, serve_arguments
from stages.sample import ReplicaUsage


@pytest.mark.parametrize(
    ("openai", "message"),
    [
        ({"mode": "external"}, "needs engine.openai.endpoints"),
        ({"mode": "managed", "endpoints": ["http://h:8000/v1"]}, "are for mode external"),
        ({"mode": "external", "endpoints": ["http://user:secret@h:8000/v1"]}, "without credentials"),
        ({"mode": "external", "endpoints": ["h:8000/v1"]}, "not an http"),
    ],
)
def test_backend_settings_that_cannot_work_are_refused(openai: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EngineConfig(backend="openai", openai=openai)


def test_the_api_key_comes_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = EngineConfig(
        backend="openai", openai={"mode": "external", "endpoints": ["http://h/v1"], "api_key_env": "FW_TEST_KEY"}
    )
    monkeypatch.delenv("FW_TEST_KEY", raising=False)
    with pytest.raises(ValueError, match="FW_TEST_KEY, which is not set"):
        api_key(engine)
    monkeypatch.setenv("FW_TEST_KEY", "k-1")
    assert api_key(engine) == "k-1"
    assert "k-1" not in str(EngineCache().sampling_record(engine))


def test_replicas_get_their_own_cores_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3, 4})
    binds = [env["VLLM_CPU_OMP_THREADS_BIND"] for env in replica_environments(2, 1, cuda=False, devices=0)]
    assert binds == ["0,1", "2,3,4"]
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0})
    assert [env["VLLM_CPU_OMP_THREADS_BIND"] for env in replica_environments(2, 1, cuda=False, devices=0)] == ["0", "0"]
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0-3")
    assert replica_environments(2, 1, cuda=False, devices=0) == [{}, {}]


def test_replicas_get_their_own_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert replica_environments(4, 2, cuda=True, devices=8) == [
        {"CUDA_VISIBLE_DEVICES": "0,1"},
        {"CUDA_VISIBLE_DEVICES": "2,3"},
        {"CUDA_VISIBLE_DEVICES": "4,5"},
        {"CUDA_VISIBLE_DEVICES": "6,7"},
    ]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert replica_environments(2, 1, cuda=True, devices=2) == [
        {"CUDA_VISIBLE_DEVICES": "3"},
        {"CUDA_VISIBLE_DEVICES": "5"},
    ]
    with pytest.raises(ValueError, match="needs 4 GPUs; this machine has 2"):
        replica_environments(2, 2, cuda=True, devices=2)


def test_engine_options_become_vllm_serve_flags() -> None:
    options = {"model": "m", "seed": 3, "enforce_eager": True, "enable_prefix_caching": False, "max_model_len": None}
    flags = serve_arguments({**options, "compilation_config": {"level": 0}})
    assert flags == [
        *("--seed", "3", "--enforce-eager", "--no-enable-prefix-caching"),
        *("--compilation-config", '{"level": 0}'),
    ]


def test_external_endpoints_sample_but_do_not_evaluate() -> None:
    external = EngineConfig(backend="openai", openai={"mode": "external", "endpoints": ["http://h/v1"]})
    assert (backend_for(external, "sample"), backend_for(external, "evaluate")) == ("openai", "vllm")
    managed = EngineConfig(backend="openai")
    assert (backend_for(managed, "sample"), backend_for(managed, "evaluate")) == ("openai", "openai")
    assert EngineCache().sampling_record(EngineConfig()) == {"backend": "vllm", "replicas": 1}


def test_replica_usage_becomes_stage_metrics() -> None:
    usage = [ReplicaUsage("a", 2, 10, 30, 1.5), ReplicaUsage("b", 1, 5, 12, 0.5)]
    metrics = replica_metrics(usage)
    assert metrics["sample_replica0_completion_tokens"] == 30.0 and metrics["sample_replica1_seconds"] == 0.5
    assert metrics["sample_replica1_requests"] == 1.0 and metrics["sample_replica0_prompt_tokens"] == 10.0



def test_usage_of_backends_is_summed_by_replica() -> None:
    """A failed shard drops its backend and the retry starts another: their usage adds up, replica by replica."""
    closed = [ReplicaUsage("a", 1, 2, 3, 1.0), ReplicaUsage("b", 1, 2, 4, 1.0)]
    first, second = _sum_by_replica(closed, [ReplicaUsage("a", 1, 2, 5, 2.0)])
    assert (first.requests, first.completion_tokens, first.seconds) == (2, 8, 3.0)
    assert (second.requests, second.completion_tokens) == (1, 4)
    assert _sum_by_replica([], []) == [] and EngineCache().take_usage() == []


def test_a_shard_is_split_into_contiguous_slices_one_per_replica() -> None:
    assert split_rows(10, 2) == [(0, 5), (5, 5)]
    assert split_rows(5, 3) == [(0, 2), (2, 2), (4, 1)]
    assert split_rows(1, 2) == [(0, 1)] and split_rows(0, 2) == []


def test_ray_replicas_ask_for_gpus_where_the_cluster_has_them() -> None:
    engine = EngineConfig(backend="ray", replicas=4, tensor_parallel_size=2, ray={"num_cpus": 2})
    assert replica_resources(engine, {"CPU": 64.0, "GPU": 8.0}) == {"CPU": 2.0, "GPU": 2.0}
    assert replica_resources(engine, {"CPU": 8.0}) == {"CPU": 2.0}
    with pytest.raises(ReplicaError, match=r"each need 8 GPU in all; the Ray cluster has 4"):
        replica_resources(engine, {"CPU": 64.0, "GPU": 4.0})
    with pytest.raises(ReplicaError, match=r"each need 8 CPU in all; the Ray cluster has 6"):
        replica_resources(engine, {"CPU": 6.0})
    assert EngineCache().sampling_record(EngineConfig(backend="ray", ray={"address": "10.0.0.1:6379"})) == {
        "backend": "ray",
        "replicas": 1,
        "ray_address": "10.0.0.1:6379",
        "nodes": [],
    }
