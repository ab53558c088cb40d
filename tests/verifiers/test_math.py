from __future__ import annotations

import time

import pytest

from verifiers import VERIFIERS, UnknownVerifierError, get_verifier
from verifiers.math import extract_answer, normalize, parse_number, verify

# (completion, gold, expected correct)
CASES = [
    ("46", "46", True),
    ("47", "46", False),
    ("The sum is 12. So the answer is 46.", "46", True),
    ("We get \\boxed{\\frac{1}{2}}", "0.5", True),
    ("\\boxed{\\dfrac{3}{4}}", "3/4", True),
    ("nested \\boxed{\\frac{10}{\\left(2\\right)}} no", "5", False),
    ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72", True),
    ("<think>2+2</think><answer>4</answer>", "4", True),
    ("Total: $1,234.", "1234", True),
    ("\\boxed{50\\%}", "50", True),
    ("\\boxed{90^\\circ}", "90", True),
    ("\\boxed{\\text{5}}", "5", True),
    ("the answer is 2 1/2", "5/2", True),
    ("\\boxed{-\\frac{7}{2}}", "-3.5", True),
    ("\\boxed{1.5e3}", "1500", True),
    ("1500.0", "1500", True),
    ("I think it is 3 or maybe 4", "4", True),
    ("no digits here", "4", False),
]


@pytest.mark.parametrize(("completion", "gold", "expected"), CASES)
def test_math_verdicts(completion: str, gold: str, expected: bool) -> None:
    verdict = verify(completion, {"answer": gold})
    assert verdict.correct is expected, verdict.reason
    assert verdict.reward == float(expected)
    assert verdict.verifier == "math" and verdict.verifier_version


def test_extraction_prefers_the_last_boxed_answer_with_nested_braces() -> None:
    assert extract_answer("first \\boxed{1} then \\boxed{\\frac{2}{3}}") == "\\frac{2}{3}"
    assert extract_answer("unclosed \\boxed{12") == "12"


def test_normalisation_strips_latex_wrappers() -> None:
    assert normalize("$\\left( 3 \\right)$") == "( 3 )"
    assert normalize("\\text{\\textbf{7}}") == "7"


def test_gold_that_is_not_a_number_cannot_be_judged_unless_identical() -> None:
    unjudged = verify("x^2+1", {"answer": "1+x^2"})
    assert unjudged.correct is None and unjudged.reward is None
    assert "cannot judge" in unjudged.reason
    same = verify("\\boxed{x^2 + 1}", {"answer": "x^2+1"})
    assert same.correct is True


def test_missing_gold_cannot_be_judged() -> None:
    assert verify("4", {"answer": None}).correct is None
    assert verify("4", {}).correct is None


def test_model_text_is_never_evaluated() -> None:
    started = time.perf_counter()
    verdict = verify("\\boxed{__import__('time').sleep(5)}", {"answer": "0"})
    assert verdict.correct is False
    assert time.perf_counter() - started < 1.0


def test_huge_inputs_are_bounded() -> None:
    assert parse_number("9" * 5000) is None
    assert parse_number("1e100000") is None
    started = time.perf_counter()
    verdict = verify("1" * 200_000, {"answer": "1"})
    assert verdict.correct is False
    assert time.perf_counter() - started < 1.0


def test_registry_names_known_verifiers_on_unknown_name() -> None:
    assert get_verifier("math") is VERIFIERS["math"]
    with pytest.raises(UnknownVerifierError, match="unknown verifier 'chess'.*known verifiers: math"):
        get_verifier("chess")
