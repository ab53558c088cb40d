from __future__ import annotations

import pyarrow as pa
import pytest

from configs import ArithmeticConfig
from stages.problems import PROBLEMS_SCHEMA, generate_arithmetic
from stages.sample import TRACES_SCHEMA
from stages.verify import VERIFIED_TRACES_SCHEMA, verify_traces
from verifiers import UnknownVerifierError


def _problems() -> pa.Table:
    return generate_arithmetic(ArithmeticConfig(n_seed=0, n_test=1, n_train=2), seed=0)


def _traces(problems: pa.Table, completions: list[str]) -> pa.Table:
    rows = [
        {
            "round": 1,
            "problem_id": problem["problem_id"],
            "sample_idx": 0,
            "model_ref": "m",
            "prompt": problem["prompt"],
            "completion": completion,
            "completion_tokens": 1,
            "finish_reason": "stop",
            "seed": 1,
        }
        for problem, completion in zip(problems.to_pylist(), completions, strict=True)
    ]
    return pa.Table.from_pylist(rows, schema=TRACES_SCHEMA)


def test_every_trace_gets_a_verdict_from_its_domain_verifier() -> None:
    problems = _problems()
    answers = problems.column("answer").to_pylist()
    verified = verify_traces(_traces(problems, [answers[0], "nonsense", answers[2] + "0"]), problems)
    assert verified.schema == VERIFIED_TRACES_SCHEMA
    assert verified.column("correct").to_pylist() == [True, False, False]
    assert set(verified.column("verifier").to_pylist()) == {"math"}


def test_unknown_domain_names_problem_and_field() -> None:
    problems = _problems()
    rows = problems.to_pylist()
    rows[0]["domain"] = "poetry"
    odd = pa.Table.from_pylist(rows, schema=PROBLEMS_SCHEMA)
    with pytest.raises(UnknownVerifierError, match=f"problem {rows[0]['problem_id']}, field 'domain'"):
        verify_traces(_traces(odd, ["1", "2", "3"]), odd)
