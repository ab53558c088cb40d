"""The TRL reward adapter (`stages.rewards`), judged by the real verifiers in a real worker pool."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from configs import VerifyConfig
from stages.rewards import CorrectnessReward, format_reward_function, reward_functions
from verifiers.pool import VerifierPool


@pytest.fixture(scope="module")
def pool() -> Iterator[VerifierPool]:
    with VerifierPool(workers=1, timeout_s=5.0, memory_limit_mb=1024) as live:
        yield live


def _problem(problem_id: str, answer: str | None) -> dict[str, str | None]:
    return {"problem_id": problem_id, "domain": "math", "prompt": "?", "answer": answer, "tests": None}


def test_correctness_reward_follows_trl_conventions(pool: VerifierPool) -> None:
    problems = {"a": _problem("a", "4"), "b": _problem("b", "5"), "c": _problem("c", None)}
    reward = CorrectnessReward(problems, config=VerifyConfig(), pool=pool)
    completions = ["\\boxed{4}", [{"role": "assistant", "content": "The answer is 5."}], "\\boxed{3}"]
    # TRL passes every dataset column as a keyword list; a completion that cannot be judged gets None.
    assert reward(completions, problem_id=["a", "b", "c"], prompts=["p", "q", "r"]) == [1.0, 1.0, None]
    assert reward.calls == 3


def test_a_completion_of_another_shape_is_refused(pool: VerifierPool) -> None:
    reward = CorrectnessReward({"a": _problem("a", "4")}, config=VerifyConfig(), pool=pool)
    with pytest.raises(TypeError, match="string or a list of messages"):
        reward([4], problem_id=["a"])


def test_format_reward_is_a_second_function_only_with_weight(pool: VerifierPool) -> None:
    correctness = CorrectnessReward({}, config=VerifyConfig(), pool=pool)
    assert reward_functions(correctness, 0.0) == ([correctness], [1.0])
    assert reward_functions(correctness, 0.5) == ([correctness, format_reward_function], [1.0, 0.5])
    assert format_reward_function(["<think>2+2</think> 4", "4"]) == [1.0, 0.0]
