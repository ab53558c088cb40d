"""The vLLM engine arguments chosen per machine (no engine is started here)."""

from __future__ import annotations

import pytest

from configs import EngineConfig, ModelConfig
from stages.sample import CPU_CHUNKED_PREFILL_NOTE, engine_options

MODEL = ModelConfig(path="some/model", dtype="float32", max_model_len=2048)


def test_cpu_turns_chunked_prefill_off_and_says_why() -> None:
    options, notes = engine_options("m", MODEL, EngineConfig(), 0, cuda=False)
    assert options["enable_chunked_prefill"] is False
    assert options["max_model_len"] == 2048 and options["seed"] == 0
    assert "gpu_memory_utilization" not in options and options["enforce_eager"] is False
    assert notes == [CPU_CHUNKED_PREFILL_NOTE]
    assert "CPU Generator does not use offset" in notes[0]


def test_gpu_keeps_vllms_default_unless_told() -> None:
    options, notes = engine_options("m", MODEL, EngineConfig(), 0, cuda=True)
    assert "enable_chunked_prefill" not in options and notes == []
    assert options["gpu_memory_utilization"] == 0.85
    options, _ = engine_options("m", MODEL, EngineConfig(enable_chunked_prefill=False), 0, cuda=True)
    assert options["enable_chunked_prefill"] is False


def test_extra_still_passes_other_arguments_through() -> None:
    options, _ = engine_options("m", MODEL, EngineConfig(extra={"max_num_seqs": 8}), 0, cuda=False)
    assert options["max_num_seqs"] == 8 and options["enable_chunked_prefill"] is False


def test_eager_mode_skips_compilation_when_asked() -> None:
    options, _ = engine_options("m", MODEL, EngineConfig(enforce_eager=True), 0, cuda=True)
    assert options["enforce_eager"] is True


@pytest.mark.parametrize(
    "engine", [EngineConfig(enable_chunked_prefill=True), EngineConfig(extra={"enable_chunked_prefill": True})]
)
def test_chunked_prefill_on_cpu_is_refused_with_the_reason(engine: EngineConfig) -> None:
    with pytest.raises(ValueError, match="chunked prefill cannot be enabled on CPU"):
        engine_options("m", MODEL, engine, 0, cuda=False)
