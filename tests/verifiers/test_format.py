from __future__ import annotations

import pytest

from verifiers import VERIFIERS
from verifiers.format import format_problem, format_reward, verify

CASES = [
    ("<think>2 + 2 is 4</think>\nThe answer is 4.", None),
    ("  <think>\nreason\n</think><answer>4</answer>", None),
    ("<think>r</think>\n<answer> 4 </answer>\n", None),
    ("The answer is 4.", "does not start with a <think>...</think> block"),
    ("<think>unclosed reasoning", "does not start with a <think>...</think> block"),
    ("<think>  </think> 4", "empty <think> block"),
    ("<think>r</think>   ", "no answer after </think>"),
    ("<think>a</think><think>b</think> 4", "more than one <think> block"),
    ("<think>a <think> b</think> 4", "nested <think> tag"),
    ("<think>r</think><answer>4</answer><answer>5</answer>", "more than one <answer> block"),
    ("<think>r</think><answer>4", "text outside the <answer> block, or an unclosed <answer> tag"),
    ("<think>r</think>so <answer>4</answer>", "text outside the <answer> block, or an unclosed <answer> tag"),
    ("<think>r</think><answer> </answer>", "empty <answer> block"),
]


@pytest.mark.parametrize(("completion", "problem"), CASES)
def test_format(completion: str, problem: str | None) -> None:
    assert format_problem(completion) == problem
    assert format_reward(completion) == (1.0 if problem is None else 0.0)
    verdict = verify(completion, {})
    assert verdict.correct is (problem is None)
    assert verdict.reward == format_reward(completion)
    assert verdict.reason == (problem or "<think> block followed by an answer")


def test_registered_and_in_unit_range() -> None:
    assert VERIFIERS["format"] is verify
    assert all(0.0 <= format_reward(completion) <= 1.0 for completion, _ in CASES)
