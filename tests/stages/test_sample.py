"""A real vLLM engine on CPU over the tiny model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from configs import ArithmeticConfig, EngineConfig, ModelConfig
from stages.problems import generate_arithmetic, split_of
from stages.sample import TRACES_SCHEMA, Sampler, SamplingSpec, render_prompt_ids
from stages.tiny_model import build_tiny_arithmetic_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sampler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sampler]:
    folder = tmp_path_factory.mktemp("tiny-model")
    model, tokenizer = build_tiny_arithmetic_model(seed=0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    engine = Sampler(
        str(folder), ModelConfig(init="tiny-arithmetic", dtype="float32", max_model_len=32), EngineConfig(), seed=0
    )
    yield engine
    engine.close()


def _problems() -> pa.Table:
    return split_of(generate_arithmetic(ArithmeticConfig(n_seed=0, n_test=1, n_train=12), seed=0), "train")


def test_k_samples_per_problem_with_the_traces_schema(sampler: Sampler) -> None:
    problems = _problems()
    traces = sampler.sample(problems, SamplingSpec(3, 1.0, 1.0, 6), round_id=1, model_ref="m", run_seed=0)
    assert traces.schema == TRACES_SCHEMA
    assert traces.num_rows == 36
    for problem_id in problems.column("problem_id").to_pylist():
        rows = [r for r in traces.to_pylist() if r["problem_id"] == problem_id]
        assert sorted(r["sample_idx"] for r in rows) == [0, 1, 2]
    assert all(0 < r["completion_tokens"] <= 6 for r in traces.to_pylist())
    assert set(traces.column("finish_reason").to_pylist()) <= {"stop", "length"}


def test_samples_depend_on_problem_seed_not_on_sharding(sampler: Sampler) -> None:
    problems = _problems()
    spec = SamplingSpec(2, 1.0, 1.0, 6)
    whole = sampler.sample(problems, spec, round_id=1, model_ref="m", run_seed=0)
    halves = pa.concat_tables(
        [sampler.sample(problems.slice(s, 6), spec, round_id=1, model_ref="m", run_seed=0) for s in (6, 0)]
    )
    key = ["problem_id", "sample_idx"]
    assert whole.sort_by([(k, "ascending") for k in key]).equals(halves.sort_by([(k, "ascending") for k in key]))


def test_prompts_use_the_chat_template_once(sampler: Sampler, tmp_path: Path) -> None:
    ids = render_prompt_ids(sampler.tokenizer, "12+34=", system_prompt=None)
    assert ids[0] == sampler.tokenizer.bos_token_id and ids.count(sampler.tokenizer.bos_token_id) == 1
    assert sampler.tokenizer.decode(ids[1:]) == "12+34="
