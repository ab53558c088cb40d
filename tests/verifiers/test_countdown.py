from __future__ import annotations

import json

import pytest

from verifiers import VERIFIERS
from verifiers.countdown import ExpressionError, evaluate, extract_expression, verify


def puzzle(numbers: list[int], target: int, use_all: bool = False) -> dict[str, str]:
    return {"metadata": json.dumps({"numbers": numbers, "target": target, "use_all": use_all})}


CASES = [
    ("<think>25*4 is 100</think><answer>(25 - 5) * 4 + 2</answer>", True, "reaches 82"),
    ("<answer>(25 - 5) * 4 + 2 = 82</answer>", True, "reaches 82"),
    ("<answer>(25 − 5) × 4 + 2</answer>", True, "reaches 82"),
    ("I think:\n(25 - 5) * 4 + 2", True, "reaches 82"),
    ("<answer>25 * 4 - 5 - 2</answer>", False, "evaluates to 93, not 82"),
    ("<answer>(25 - 5) * 4 + 2 + 2</answer>", False, "uses numbers not available: [2]"),
    ("<answer>(25 - 5) * 4 + 3</answer>", False, "uses numbers not available: [3]"),
    ("<answer>25 ** 2</answer>", False, "Pow is not one of + - * /"),
    ("<answer>__import__('os').system('true')</answer>", False, "Call is not allowed"),
    ("<answer>-25 + 5</answer>", False, "unary operators are not allowed"),
    ("<answer>2.5 * 4</answer>", False, "2.5 is not an integer"),
    ("<answer>25 / (5 - 5)</answer>", False, "division by zero"),
    ("<answer>(25 - 5</answer>", False, "does not parse"),
    ("<answer>" + "(" * 500 + "2" + ")" * 500 + "</answer>", False, "longer than"),
]


@pytest.mark.parametrize(("completion", "correct", "reason"), CASES)
def test_countdown_verdicts(completion: str, correct: bool, reason: str) -> None:
    verdict = verify(completion, puzzle([25, 5, 4, 2], 82))
    assert verdict.correct is correct, verdict.reason
    assert reason in verdict.reason
    assert verdict.reward == float(correct)
    assert VERIFIERS["countdown"] is verify


def test_division_is_exact() -> None:
    assert verify("<answer>7 / 2 * 2</answer>", puzzle([7, 2, 2], 7)).correct is True
    assert verify("<answer>7 / 2</answer>", puzzle([7, 2], 3)).reason == "evaluates to 7/2, not 3"


def test_use_all_requires_every_number() -> None:
    assert verify("<answer>25 * 4</answer>", puzzle([25, 4, 1], 100)).correct is True
    verdict = verify("<answer>25 * 4</answer>", puzzle([25, 4, 1], 100, use_all=True))
    assert verdict.correct is False and "unused: [1]" in verdict.reason
    assert verify("<answer>25 * 4 * 1</answer>", puzzle([25, 4, 1], 100, use_all=True)).correct is True


def test_repeated_numbers_may_be_used_as_often_as_given() -> None:
    assert verify("<answer>3 * 3 + 3</answer>", puzzle([3, 3, 3], 12)).correct is True
    assert verify("<answer>3 * 3 + 3</answer>", puzzle([3, 3], 12)).correct is False


@pytest.mark.parametrize("metadata", [None, "{}", "not json", json.dumps({"numbers": [1, "2"], "target": 3})])
def test_bad_metadata_cannot_be_judged(metadata: str | None) -> None:
    verdict = verify("<answer>1 + 2</answer>", {"metadata": metadata})
    assert verdict.correct is None and verdict.reward is None
    assert "field 'metadata'" in verdict.reason


def test_no_expression() -> None:
    assert verify("<think>hmm</think>", puzzle([1, 2], 3)).reason == "no expression found in completion"
    assert extract_expression("") is None


def test_evaluate_reports_literals() -> None:
    value, used = evaluate("(1 + 2) * 3")
    assert value == 9 and used == [1, 2, 3]
    with pytest.raises(ExpressionError):
        evaluate("x + 1")
