"""Hugging Face model folders: loading one for training, saving an in-memory model as one, atomically.

A round's stored model is `RunStore.save_model` / `RunStore.local_model_path`; this module is the folder-level
I/O the flows need around training (a base model by hub id or path, a model built in memory handed to a
launched job as a folder). It does not know the store's layout.
"""

from __future__ import annotations

import os
import shutil
from typing import Any


def load_model(path: str) -> tuple[Any, Any]:
    """A Hugging Face model and its tokenizer from a hub id or local folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path, dtype="auto"), AutoTokenizer.from_pretrained(path)


def load_tokenizer(path: str) -> Any:
    """The tokenizer of a hub id or local model folder."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def save_model_folder(path: str, model: Any, tokenizer: Any) -> str:
    """Save an in-memory model and tokenizer as a Hugging Face folder at `path`, atomically; returns `path`."""
    staging = f"{path}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(staging, path)
    return path
