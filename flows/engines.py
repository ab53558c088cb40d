"""Live resources kept across the stages and rounds of one process: the sampling backend and the verifier pool.

The sampling backend is `engine.backend`: the in-process vLLM engine (`stages.sample.Sampler`), engine replicas
in processes of their own (`flows.replicas`) or as actors of a Ray cluster (`flows.ray_sampling`; Ray, the optional
extra `flywheel[ray]`, is imported only by that backend), or OpenAI-compatible servers (`stages.sample_openai`),
either `vllm serve` replicas that flywheel starts and stops (`flows.serving`) or the user's external endpoints.

A round evaluates its new checkpoint and the next round samples from that same checkpoint, so keeping the
engine saves one engine start-up (tens of seconds) per round. The verifier pool serves every shard and every
round; verdicts are cached in the run store (`flows.verdicts`).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Protocol

import pyarrow as pa
from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from configs import EngineConfig, ModelConfig, VerifyConfig
from flows.ray_sampling import RaySampler
from flows.replicas import ReplicaSampler
from flows.serving import ManagedServers
from stages.sample import ReplicaUsage, Sampler, SamplingSpec, prompting_note
from stages.sample_openai import EndpointError, EndpointSampler, served_models
from storage.models import load_tokenizer
from verifiers.pool import VerifierPool


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """The Prefect run logger inside a flow or task (its lines reach the console and the UI), else a plain one."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("flywheel.engines")


class SamplingBackend(Protocol):
    """What the round samples with: `stages.sample.Sampler.sample`'s contract, whatever runs the model."""

    model_path: str
    notes: list[str]
    tokenizer: Any

    def sample(
        self,
        problems: pa.Table,
        spec: SamplingSpec,
        *,
        round_id: int,
        model_ref: str,
        run_seed: int,
        system_prompt: str | None = None,
        purpose: str = "sample",
    ) -> pa.Table: ...

    def take_usage(self) -> list[ReplicaUsage]: ...

    def close(self) -> None: ...


def backend_for(engine: EngineConfig, purpose: str) -> str:
    """The backend a purpose samples with: external servers serve another model, so evaluating the round's own
    checkpoint stays on the in-process engine."""
    if engine.backend == "openai" and engine.openai.mode == "external" and purpose != "sample":
        return "vllm"
    return engine.backend


def api_key(engine: EngineConfig) -> str | None:
    """The API key of the external endpoints, from the environment variable engine.openai.api_key_env."""
    name = engine.openai.api_key_env
    if name is None:
        return None
    key = os.environ.get(name)
    if not key:
        raise ValueError(f"engine.openai.api_key_env names {name}, which is not set in the environment")
    return key


def _warn(message: str) -> None:
    _logger().warning("%s", message)


class ManagedEndpointSampler(EndpointSampler):
    """An `EndpointSampler` over `vllm serve` replicas of one checkpoint, which it stops on `close`. A server whose
    process has exited is not sent requests: those of a shard go to the servers still up, and with none left the
    shard fails, naming each URL (its retry starts fresh servers)."""

    def __init__(self, servers: ManagedServers, engine: EngineConfig, tokenizer: Any) -> None:
        settings = engine.openai
        super().__init__(
            servers.urls,
            servers.served_model,
            tokenizer=tokenizer,
            api_key=None,
            concurrency=settings.concurrency,
            request_n=settings.request_n is not False,
            timeout_s=settings.timeout_s,
            max_retries=settings.max_retries,
            model_path=servers.model_path,
            notes=servers.notes,
            warn=_warn,
        )
        self.servers = servers

    def known_down(self) -> dict[str, str]:
        return {url: f"its vllm serve process exited with code {code}" for url, code in self.servers.exited().items()}

    def close(self) -> None:
        self.servers.close()


def start_backend(
    name: str, model_path: str, model: ModelConfig, engine: EngineConfig, seed: int
) -> SamplingBackend:
    if name == "vllm":
        return Sampler(model_path, model, engine, seed)
    if name == "replicas":
        return ReplicaSampler(model_path, model, engine, seed)
    if name == "ray":
        return RaySampler(model_path, model, engine, seed)
    settings = engine.openai
    if settings.mode == "managed":
        tokenizer = load_tokenizer(model_path)
        return ManagedEndpointSampler(ManagedServers(model_path, model, engine, seed), engine, tokenizer)
    key = api_key(engine)
    served = settings.model or _first_served_model(settings.endpoints[0], key, settings.timeout_s)
    return EndpointSampler(
        settings.endpoints,
        served,
        tokenizer=None,
        api_key=key,
        concurrency=settings.concurrency,
        request_n=settings.request_n is True,
        timeout_s=settings.timeout_s,
        max_retries=settings.max_retries,
        model_path=external_model_ref(served),
        traces_model_ref=external_model_ref(served),
        notes=[f"sampling from external endpoints {settings.endpoints} serving {served!r}"],
        warn=_warn,
    )


def _first_served_model(url: str, key: str | None, timeout_s: float) -> str:
    listed = served_models(url, key, timeout_s)
    if not listed:
        raise EndpointError(f"endpoint {url} lists no model at /models: set engine.openai.model")
    return listed[0]


def external_model_ref(served_model: str) -> str:
    """The model_ref of traces an external endpoint produced: the served model's name, marked as external."""
    return f"external:{served_model}"


def replica_metrics(usage: list[ReplicaUsage]) -> dict[str, float]:
    """Per-replica token counts and busy seconds as stage metrics (`sample_replica<i>_...`)."""
    metrics: dict[str, float] = {}
    for replica, used in enumerate(usage):
        metrics[f"sample_replica{replica}_completion_tokens"] = float(used.completion_tokens)
        metrics[f"sample_replica{replica}_prompt_tokens"] = float(used.prompt_tokens)
        metrics[f"sample_replica{replica}_requests"] = float(used.requests)
        metrics[f"sample_replica{replica}_seconds"] = used.seconds
    return metrics


def _sum_by_replica(first: list[ReplicaUsage], second: list[ReplicaUsage]) -> list[ReplicaUsage]:
    summed = [ReplicaUsage(used.label) for used in (first if len(first) >= len(second) else second)]
    for usage in (first, second):
        for total, used in zip(summed, usage, strict=False):
            total.add(used)
    return summed


class EngineCache:
    def __init__(self) -> None:
        self._sampler: SamplingBackend | None = None
        self._key: tuple[Any, ...] | None = None
        self._endpoints: list[str] = []
        self._served_model: str | None = None
        self._nodes: list[str] = []
        self._closed_usage: list[ReplicaUsage] = []

    def get(
        self,
        model_path: str,
        model: ModelConfig,
        engine: EngineConfig,
        seed: int,
        system_prompt: str | None = None,
        purpose: str = "sample",
    ) -> SamplingBackend:
        """The backend sampling `model_path` for `purpose` (engine.backend; see `backend_for`), started if needed;
        a new one logs its settings and how it prompts."""
        name = backend_for(engine, purpose)
        external = name == "openai" and engine.openai.mode == "external"
        key = (name, engine.model_dump_json()) if external else (name, model_path, engine.model_dump_json())
        if self._sampler is not None and self._key == key:
            return self._sampler
        self.close()
        self._sampler, self._key = start_backend(name, model_path, model, engine, seed), key
        if name == "openai":
            assert isinstance(self._sampler, EndpointSampler)
            self._endpoints, self._served_model = self._sampler.endpoints, self._sampler.served_model
        if isinstance(self._sampler, RaySampler):
            self._nodes = self._sampler.nodes()
        notes = self._sampler.notes
        if self._sampler.tokenizer is not None:
            notes = [*notes, prompting_note(self._sampler.tokenizer, system_prompt)]
        else:
            notes = [*notes, "prompting: chat messages; the external server applies its own chat template"]
        for note in notes:
            _logger().info("%s", note)
        return self._sampler

    def take_usage(self) -> list[ReplicaUsage]:
        """Per-replica usage since the last call, and reset: the backend in use and those closed since (a failed
        shard's retry starts a fresh backend), summed by replica index."""
        usage, self._closed_usage = self._closed_usage, []
        return _sum_by_replica(usage, self._sampler.take_usage() if self._sampler is not None else [])

    def sampling_record(self, engine: EngineConfig) -> dict[str, Any]:
        """For the manifest: how the round's traces were sampled. Endpoints are base URLs, which hold no
        credentials (the schema refuses them); the API key's variable is named, its value never recorded."""
        record: dict[str, Any] = {"backend": engine.backend, "replicas": engine.replicas}
        if engine.backend == "ray":
            record["ray_address"] = engine.ray.address or "local"
            record["nodes"] = self._nodes  # each replica's node, as its engine started
        if engine.backend == "openai":
            record["mode"] = engine.openai.mode
            record["api_key_env"] = engine.openai.api_key_env
            external = engine.openai.mode == "external"
            record["endpoints"] = list(engine.openai.endpoints) if external else self._endpoints
            record["served_model"] = engine.openai.model or self._served_model
            record["traces_from"] = "external endpoints" if external else "vllm serve of the round's model"
        return record

    def close(self) -> None:
        if self._sampler is not None:
            self._closed_usage = _sum_by_replica(self._closed_usage, self._sampler.take_usage())
            self._sampler.close()
            self._sampler = None
            self._key = None


ENGINES = EngineCache()


class VerifierPools:
    def __init__(self) -> None:
        self._pool: VerifierPool | None = None
        self._config: VerifyConfig | None = None

    def get(self, config: VerifyConfig) -> VerifierPool:
        if self._pool is not None and self._config == config:
            return self._pool
        self.close()
        workers = config.workers or VerifierPool.default_size()
        self._pool, self._config = VerifierPool(workers, config.timeout_s, config.memory_limit_mb), config
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


VERIFIER_POOLS = VerifierPools()
