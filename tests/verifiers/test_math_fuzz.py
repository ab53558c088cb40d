"""Fuzzing the math verifier in-process: no input may raise, whatever the text.

`judge` and `extract_answer` are called directly, below `verify`'s last-resort guard, so an exception that
the guard would turn into "cannot judge: internal error" still fails here. Fixed seed: a failure reproduces.
"""

from __future__ import annotations

import random

import pytest

from verifiers.math import extract_answer, judge, verify

SEED = 20261201
CASES = 2000
TOKENS = [
    "1", "2", "17", "0", "-", "+", "*", "/", "^", "=", "<", "\\le", "\\ge", "\\approx", "\\pm", "x", "y", "e", "i",
    "\\pi", "\\frac{", "}{", "}", "{", "(", ")", "[", "]", "\\{", "\\}", ",", ".", "\\sqrt{", "\\sqrt[3]{", "\\log",
    "\\ln", "\\sin", "!", "\\binom{", "\\boxed{", "\\text{", " or ", " and ", "\\infty", "\\cup", "\\cap", "\\in",
    "\\mathbb{R}", "|", "%", "\\%", "$", "\\begin{pmatrix}", "\\end{pmatrix}", "&", "\\\\", "\\overline{", "\\dot{",
    "\\times", "\\cdot", "10", "9" * 30, "1e9", "°", "\\circ", "\\mathrm{", "\\left(", "\\right)", "_", "a", "b",
    "\\alpha", "∞", "√", "×", "−", "½", "²", "\n", "####", "#####", " ", ":", ";", "\\displaystyle", "\\dfrac{", "^{",
    "\\neq", "\\to", "\\lim", "\\sum", "\\int", "\\angle", "\\vec{", "\\langle", "\\rangle", "\x00", "é", "中",
]  # fmt: skip
GOLDS = ["17", "x^2", "\\frac{1}{2}", "(1, 2)", "[0, 1)", "x = 3", "17, 18", "\\text{yes}", "0.125", "2\\sqrt{3}"]


def random_text(draw: random.Random) -> str:
    kind = draw.random()
    if kind < 0.6:  # LaTeX-ish token soup
        return "".join(draw.choice(TOKENS) for _ in range(draw.randint(1, 25)))
    if kind < 0.7:  # deep nesting
        depth = draw.randint(1, 300)
        opening, closing = draw.choice(
            [("(", ")"), ("{", "}"), ("\\frac{", "}{2}"), ("\\sqrt{", "}"), ("[", "]"), ("-", "")]
        )
        return opening * depth + "1" + closing * depth
    if kind < 0.8:  # huge numbers, exponents, factorials
        digits = str(draw.randint(0, 9)) * draw.randint(1, 5000)
        tail = draw.choice(["", "^{" + "9" * draw.randint(1, 50) + "}", "!", "/3", "e99999", "\\times 10^{400}", "\\%"])
        return draw.choice(["", "-", "0.", "10^{"]) + digits + tail
    if kind < 0.9:  # arbitrary unicode
        return "".join(chr(draw.randint(0, 0x2FFFF)) for _ in range(draw.randint(0, 40)))
    return ", ".join(str(draw.randint(0, 99)) for _ in range(draw.randint(1, 400)))  # long answer lists


def test_no_input_raises() -> None:
    draw = random.Random(SEED)
    for _ in range(CASES):
        prediction = random_text(draw)
        gold = draw.choice(GOLDS) if draw.random() < 0.3 else random_text(draw)
        try:
            extract_answer(prediction)
            correct, reason = judge(gold, prediction)
        except Exception as error:  # noqa: BLE001 - the point is to catch any of them
            pytest.fail(f"{type(error).__name__}: {error} on gold={gold[:200]!r} prediction={prediction[:200]!r}")
        assert correct in (True, False, None) and isinstance(reason, str)


@pytest.mark.parametrize(
    ("gold", "prediction"),
    [
        ("10^{" + "9" * 400 + "}", "1"),  # an exponent too large for a float estimate
        ("1", "10^{-" + "9" * 400 + "}"),
        ("17", ", ".join(str(n) for n in range(400))),  # too many answers in a list
        (", ".join(str(n) for n in range(400)), "17"),
    ],
)
def test_inputs_that_used_to_raise_get_a_verdict(gold: str, prediction: str) -> None:
    correct, reason = judge(gold, prediction)
    assert correct in (False, None) and ("too large" in reason or "too many" in reason), reason


@pytest.mark.parametrize("completion", [None, 17, b"\\boxed{17}", ["17"]])
def test_verify_gives_a_verdict_for_any_completion(completion: object) -> None:
    verdict = verify(completion, {"answer": "17"})  # type: ignore[arg-type]
    assert verdict.correct is None and "cannot judge" in verdict.reason
