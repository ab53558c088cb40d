"""Live resources kept across the stages and rounds of one process: the vLLM engine and the verifier pool.

A round evaluates its new checkpoint and the next round samples from that same checkpoint, so keeping the
engine saves one engine start-up (tens of seconds) per round. The verifier pool and its verdict cache
serve every shard and every round.
"""

from __future__ import annotations

import logging

from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from configs import EngineConfig, ModelConfig, VerifyConfig
from stages.sample import Sampler, prompting_note
from verifiers.cache import VerdictCache
from verifiers.pool import VerifierPool


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """The Prefect run logger inside a flow or task (its lines reach the console and the UI), else a plain one."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("flywheel.engines")


class EngineCache:
    def __init__(self) -> None:
        self._sampler: Sampler | None = None

    def get(
        self, model_path: str, model: ModelConfig, engine: EngineConfig, seed: int, system_prompt: str | None = None
    ) -> Sampler:
        """The engine for `model_path`, started if needed; a new engine logs its settings and how it prompts."""
        if self._sampler is not None and self._sampler.model_path == model_path:
            return self._sampler
        self.close()
        self._sampler = Sampler(model_path, model, engine, seed)
        for note in [*self._sampler.notes, prompting_note(self._sampler.tokenizer, system_prompt)]:
            _logger().info("%s", note)
        return self._sampler

    def close(self) -> None:
        if self._sampler is not None:
            self._sampler.close()
            self._sampler = None


ENGINES = EngineCache()


class VerifierPools:
    def __init__(self) -> None:
        self._pool: VerifierPool | None = None
        self._config: VerifyConfig | None = None
        self.cache = VerdictCache()

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
