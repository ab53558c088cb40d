from __future__ import annotations

import json
from collections.abc import Iterator

import pyarrow as pa
import pytest

from configs import ArithmeticConfig, VerifyConfig
from stages.problems import PROBLEMS_SCHEMA, generate_arithmetic
from stages.sample import TRACES_SCHEMA
from stages.verify import (
    FLIPS_SCHEMA,
    VERDICT_CACHE_SCHEMA,
    VERIFIED_TRACES_SCHEMA,
    cache_from_table,
    cache_table,
    rescore_traces,
    verify_traces,
)
from tests.verifiers import slow_verifiers
from verifiers import VERIFIERS, VERSIONS, UnknownVerifierError
from verifiers.cache import VerdictCache
from verifiers.pool import VerifierPool


def _problems(n_train: int = 2) -> pa.Table:
    return generate_arithmetic(ArithmeticConfig(n_seed=0, n_test=1, n_train=n_train), seed=0)


def _traces(problems: pa.Table, completions: list[str]) -> pa.Table:
    rows = [
        {
            "round": 1,
            "problem_id": problem["problem_id"],
            "sample_idx": index,
            "model_ref": "m",
            "prompt": problem["prompt"],
            "completion": completion,
            "completion_tokens": 1,
            "finish_reason": "stop",
            "seed": 1,
        }
        for index, (problem, completion) in enumerate(zip(problems.to_pylist(), completions, strict=True))
    ]
    return pa.Table.from_pylist(rows, schema=TRACES_SCHEMA)


@pytest.fixture(scope="module")
def pool() -> Iterator[VerifierPool]:
    with VerifierPool(workers=2, timeout_s=1.0) as live:
        yield live


def test_every_trace_gets_a_verdict_from_its_domain_verifier() -> None:
    problems = _problems()
    answers = problems.column("answer").to_pylist()
    verified = verify_traces(_traces(problems, [answers[0], "nonsense", answers[2] + "0"]), problems)
    assert verified.schema == VERIFIED_TRACES_SCHEMA
    assert verified.column("correct").to_pylist() == [True, False, False]
    assert set(verified.column("verifier").to_pylist()) == {"math"}


def test_config_and_open_pool_give_the_same_verdicts(pool: VerifierPool) -> None:
    problems = _problems()
    answers = problems.column("answer").to_pylist()
    traces = _traces(problems, [f"\\boxed{{{answers[0]}}}", "so 7", f"The answer is {answers[2]}."])
    with_config = verify_traces(traces, problems, config=VerifyConfig(workers=1, timeout_s=2.0))
    with_pool = verify_traces(traces, problems, pool=pool)
    assert with_config.equals(with_pool)
    assert with_pool.column("correct").to_pylist()[::2] == [True, True]


def test_same_extracted_answer_is_judged_once_and_cached(pool: VerifierPool) -> None:
    problems = _problems(n_train=2)
    problem = problems.slice(0, 1)
    answer = problem.column("answer")[0].as_py()
    completions = [f"Work {i}. So \\boxed{{{answer}}}" for i in range(3)]
    traces = _traces(pa.concat_tables([problem] * 3), completions)
    cache = VerdictCache()
    verified = verify_traces(traces, problems, pool=pool, cache=cache)
    assert verified.column("correct").to_pylist() == [True] * 3
    assert len(cache) == 1
    table = cache_table(cache)
    assert table.schema == VERDICT_CACHE_SCHEMA and table.num_rows == 1
    assert len(cache_from_table(table)) == 1


def test_timeout_comes_back_as_a_timed_out_verdict(pool: VerifierPool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(VERIFIERS, "sleepy", slow_verifiers.sleepy)
    monkeypatch.setitem(VERSIONS, "sleepy", "1")
    rows = _problems().to_pylist()[:2]
    rows[0]["domain"] = "sleepy"
    problems = pa.Table.from_pylist(rows, schema=PROBLEMS_SCHEMA)
    verified = verify_traces(_traces(problems, ["30", rows[1]["answer"]]), problems, pool=pool)
    assert verified.column("timed_out").to_pylist() == [True, False]
    assert verified.column("correct").to_pylist() == [False, True]


def test_rescore_reports_flips_after_a_verifier_upgrade(pool: VerifierPool) -> None:
    problems = _problems()
    answers = problems.column("answer").to_pylist()
    verified = verify_traces(_traces(problems, [answers[0], "wrong", answers[2]]), problems, pool=pool)
    rows = verified.to_pylist()
    rows[1] = replace_row(rows[1], correct=True, reward=1.0, verifier_version="0.0.1")
    old = pa.Table.from_pylist(rows, schema=VERIFIED_TRACES_SCHEMA)
    rescored, flips = rescore_traces(old, problems, pool=pool)
    assert rescored.column("correct").to_pylist() == [True, False, True]
    assert flips.schema == FLIPS_SCHEMA
    assert flips.to_pylist() == [
        {
            "problem_id": rows[1]["problem_id"],
            "sample_idx": 1,
            "old_correct": True,
            "new_correct": False,
            "old_version": "0.0.1",
            "new_version": VERSIONS["math"],
        }
    ]


def replace_row(row: dict, **changes: object) -> dict:
    return {**row, **changes}


def test_unknown_domain_names_problem_and_field() -> None:
    problems = _problems()
    rows = problems.to_pylist()
    rows[0]["domain"] = "poetry"
    odd = pa.Table.from_pylist(rows, schema=PROBLEMS_SCHEMA)
    with pytest.raises(UnknownVerifierError, match=f"problem {rows[0]['problem_id']}, field 'domain'"):
        verify_traces(_traces(odd, ["1", "2", "3"]), odd)


def test_format_weight_adds_the_format_reward_without_changing_correctness() -> None:
    from configs import VerifyConfig

    problems = _problems()
    answers = problems.column("answer").to_pylist()
    completions = [f"<think>add</think>{answers[0]}", answers[1], f"<think>x</think>{answers[2]}0"]
    verified = verify_traces(_traces(problems, completions), problems, config=VerifyConfig(format_weight=0.5))
    assert verified.column("correct").to_pylist() == [True, True, False]
    assert verified.column("reward").to_pylist() == [1.5, 1.0, 0.5]


def test_countdown_problems_that_share_a_solution_are_judged_against_their_own_numbers(pool: VerifierPool) -> None:
    """Countdown reads `metadata` (numbers, target, use_all), not `answer` (one solution): two problems with the
    same `answer` are two golds, so one's verdict is never handed to the other."""
    base = _problems().to_pylist()[0]
    rows = [
        base | {"problem_id": f"countdown-{use_all}", "domain": "countdown", "answer": "3*2",
                "metadata": json.dumps({"numbers": [1, 2, 3], "target": 6, "use_all": use_all})}
        for use_all in (False, True)
    ]  # fmt: skip
    problems = pa.Table.from_pylist(rows, schema=PROBLEMS_SCHEMA)
    cache = VerdictCache()
    verified = verify_traces(_traces(problems, ["<answer>3*2</answer>"] * 2), problems, pool=pool, cache=cache)
    assert verified.column("correct").to_pylist() == [True, False]  # use_all: the 1 is left over
    assert len(cache) == 2
