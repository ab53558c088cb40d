"""One live vLLM engine per process, kept while consecutive steps use the same model.

A round evaluates its new checkpoint and the next round samples from that same checkpoint, so keeping the
engine saves one engine start-up (tens of seconds) per round.
"""

from __future__ import annotations

from configs import EngineConfig, ModelConfig
from stages.sample import Sampler


class EngineCache:
    def __init__(self) -> None:
        self._sampler: Sampler | None = None

    def get(self, model_path: str, model: ModelConfig, engine: EngineConfig, seed: int) -> Sampler:
        if self._sampler is not None and self._sampler.model_path == model_path:
            return self._sampler
        self.close()
        self._sampler = Sampler(model_path, model, engine, seed)
        return self._sampler

    def close(self) -> None:
        if self._sampler is not None:
            self._sampler.close()
            self._sampler = None


ENGINES = EngineCache()
