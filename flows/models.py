"""Model references, resolved in one place.

A round names its models by reference strings (the manifest's `model_in` / `model_out`): `round:N` is round
N's stored model, `init:NAME` a model built in memory from `model.init` (the tiny demo model), anything else a
hub id or local folder. `model_folder` turns a reference into a folder vLLM or transformers can load;
`model_for_training` into a `PhaseModel`, the start of a round's training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from configs import RunConfig
from stages.tiny_model import build_tiny_arithmetic_model
from storage import RunStore
from storage.models import load_model, save_model_folder

ROUND = "round:"
INIT = "init:"


def round_ref(round_id: int) -> str:
    return f"{ROUND}{round_id}"


def base_model_ref(config: RunConfig) -> str:
    """The model a run starts from: `init:NAME` for a model built in memory, else `model.path`."""
    return f"{INIT}{config.model.init}" if config.model.init else str(config.model.path)


def model_folder(store: RunStore, model_ref: str) -> str:
    """A local folder (or hub id) holding the model `model_ref` names; an `init:` model has none until saved."""
    if model_ref.startswith(ROUND):
        return store.local_model_path(int(model_ref.removeprefix(ROUND)))
    if model_ref.startswith(INIT):
        raise ValueError(f"{model_ref} is built in memory and has no folder; a round stores it as round:0")
    return model_ref


@dataclass
class PhaseModel:
    """The model a training phase starts from: in memory, or a folder (a stored round, a base model, the result
    of a launched job), loaded or saved only when a phase needs the other form."""

    folder: str | None = None
    model: Any = None
    tokenizer: Any = None

    def loaded(self) -> tuple[Any, Any]:
        if self.model is None:
            assert self.folder is not None
            self.model, self.tokenizer = load_model(self.folder)
        return self.model, self.tokenizer

    def as_folder(self, path: str) -> str:
        """Its folder; a model held only in memory is saved to `path` first."""
        if self.folder is None:
            self.folder = save_model_folder(path, self.model, self.tokenizer)
        return self.folder


def model_for_training(store: RunStore, config: RunConfig, model_ref: str) -> PhaseModel:
    if model_ref.startswith(INIT):
        model, tokenizer = build_tiny_arithmetic_model(config.model.init_seed)
        return PhaseModel(model=model, tokenizer=tokenizer)
    return PhaseModel(folder=model_folder(store, model_ref))
