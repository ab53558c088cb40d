"""Math answer verifier: extract the final answer from a completion and decide if it equals the gold answer.

What it does: `extract_answer` finds the answer (`verifiers.math_extract`), `normalize` cleans its text,
`verifiers.math_parse` reads it with a restricted grammar into sympy objects, and `verifiers.math_equiv`
decides equivalence (numbers, expressions, sets, intervals, tuples, root lists, equations, inequalities,
matrices, words and choice letters). The gold answer goes through the same extraction, so a gold that is a
full worked solution is judged by its boxed answer.

Verdicts: `correct=True/False` with reward 1.0/0.0; `correct=None` ("cannot judge", reward None) when the gold
answer is missing or cannot be read as math or words. A prediction that cannot be read is wrong, not
"cannot judge". Conventions where graders differ: `e` is Euler's number (`1.5e3` written alone is e-notation)
and `i` the imaginary unit; `28\\%` equals 28 and 0.28; units are dropped; degrees are dropped, except that an
angle in degrees against one written with pi (`60^\\circ`, `\\frac{\\pi}{3}`) is converted to radians first;
`a:b` is an ordered pair (a clock time `20:34:00` is `20:34`); a number times a tuple (`\\frac{1}{5}\\langle 3, 4
\\rangle`) is the tuple scaled; a number followed by one unit symbol (`250 g`) is that number when the gold is a
number; an angle in degrees inside a trigonometric function (`\\tan 15^\\circ`) is in radians; a decimal of at
least 6 significant digits is a rounded value, alone (`0.0833333` for 1/12) or inside an expression
(`1386.15(e^{0.013t} - 1)` for `\\frac{18.02}{0.013}(e^{0.013t} - 1)`, within what rounding each such decimal
can change); `\\overline{z}` is the complex conjugate unless it marks a repeating decimal (`0.\\overline{3}`);
`r \\operatorname{cis} \\theta` is `r e^{i\\theta}`; `30\\deg` is `30^\\circ`; `a dozen` is 12 and `half a dozen` 6;
`x \\in \\mathbb{R}, x \\neq 0` is the condition `x \\neq 0`; `\\lim_{x \\to a} f` is evaluated exactly (two-sided at a
finite point), so `\\lim_{x \\to 0} \\frac{\\sin x}{x} = 1` is a true relation; see `verifiers.math_equiv`.

Reward-hacking policy (README, "Verifiers"): a stated relation must be true (`5 = 17` is wrong for 17, as is
a chain with a false step); `\\approx` only as an exact value followed by a true approximation; `\\pm`,
ranges, hedges and several candidates are wrong unless the gold has that shape; a gold written as a rational
number needs a number written out, not an expression equal to it (`12 + 40` for 52), except under the
domain `math_expressions` (`verify_expressions_accepted`); a last `\\boxed{` never closed is an unfinished answer,
so the response has none; a value labelled as not the answer (`Answer (wrong): 42`), taken back after it is
stated (`\\boxed{42} is wrong.`), denied, bounded or guessed (`not 42`, `at least 42`, `42, I guess`), named as
the reference or a guess (`Ground truth: 42`, `Guess: 42`), supposed (`Suppose the answer is 42.`) or tried and
rejected (`Try 42. Does not work.`) is none either, and a box inside a box is part of the outer box
(`\\boxed{7\\boxed{42}}` is no answer of 42); a response that asks its grader
to ignore its instructions or to give the reward has no answer. `verify` never raises.

What it does not do: run model text. No `eval`, `sympify` or `parse_expr` is ever called, and every size
is bounded while parsing; the hard wall-clock limit per call is the pool's job (`verifiers.pool`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

import sympy

from verifiers.math_equiv import Assignment, Refused, canonical, equivalent
from verifiers.math_extract import CleanAnswer, clean_answer
from verifiers.math_extract import extract_answer as _extract_answer
from verifiers.math_parse import ParseError, Scalar, Text, TooLarge, parse_answer
from verifiers.verdict import Verdict

NAME = "math"
EXPRESSIONS_NAME = "math_expressions"
VERSION = "0.14.0"

MIN_APPROXIMATION_DIGITS = 6
MAX_ROUNDED_LITERALS = 4
_DECIMAL = re.compile(r"[+-]?[0-9]*\.([0-9]+)")
_DECIMAL_IN_TEXT = re.compile(r"(?<![0-9.])([0-9]+)\.([0-9]{1,60})(?![0-9.])")
_SCIENTIFIC = re.compile(r"([+-]?[0-9.]+)\s*\\times\s*10\s*\^\s*\{?\s*([+-]?[0-9]{1,4})\s*\}?")
_WORDS_ANSWER = re.compile(r"[A-Za-z]{2,}(?: [A-Za-z]+)*")
_WORDS = re.compile(r"[A-Za-z][A-Za-z\s'.,-]*")
_INT_OR_DECIMAL = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_FRACTION_PART = r"(?:\{\s*[+-]?" + _INT_OR_DECIMAL + r"\s*\}|\s*[0-9])"  # {12} or a single digit
_POWER_OF_TEN = r"10\s*\^\s*(?:\{\s*[+-]?[0-9]+\s*\}|[0-9])"
# A number written out: 52, -3.5, 1.5 \times 10^{3}, 10^{6}, \frac{1}{2}, 3\frac{1}{2}, \frac12, 7/8
_NUMBER_LITERAL = re.compile(
    r"[+-]?\s*(?:"
    + _INT_OR_DECIMAL
    + r"(?:\s*(?:\\times|\\cdot)\s*"
    + _POWER_OF_TEN
    + r")?|"
    + _POWER_OF_TEN
    + r"|(?:[0-9]+\s*)?\\frac\s*(?:"
    + _FRACTION_PART * 2
    + r")|[0-9]+\s*/\s*[0-9]+)"
)


# one-letter unit symbols: grams, metres, seconds, litres, joules, newtons, watts, volts, amperes, kelvin, molar,
# hours, coulombs, farads, teslas
_UNIT_SYMBOL_TAIL = re.compile(r"(?P<value>[+-]?[0-9.]+(?:[eE][+-]?[0-9]{1,4})?)\s+(?P<unit>[gmsLJNWVAKMhCFT])")


class GoldUnreadable(ValueError):
    """The gold answer is neither math this verifier reads nor plain words."""


def verify(completion: str, problem: Mapping[str, Any]) -> Verdict:
    """The verdict on one completion; never raises (an unforeseen error is a "cannot judge" naming it)."""
    return _guarded(completion, problem, numbers_only=True, name=NAME)


def verify_expressions_accepted(completion: str, problem: Mapping[str, Any]) -> Verdict:
    """`verify`, except that a number gold also accepts an expression equal to it (`12 + 40` for 52);
    registered as the domain `math_expressions`, for data whose answers are legitimately expressions."""
    return _guarded(completion, problem, numbers_only=False, name=EXPRESSIONS_NAME)


def _guarded(completion: str, problem: Mapping[str, Any], numbers_only: bool, name: str) -> Verdict:
    try:
        return _verdict(*_verify(completion, problem, numbers_only), name=name)
    except Exception as error:  # the contract is a verdict for every input; the fuzz test hunts these
        reason = f"cannot judge: internal error {type(error).__name__}: {str(error)[:200]}"
        return _verdict(None, None, reason, name=name)


def _verify(completion: str, problem: Mapping[str, Any], numbers_only: bool) -> tuple[bool | None, str | None, str]:
    gold = problem.get("answer")
    if gold is None or not str(gold).strip():
        return None, None, "cannot judge: problem has no gold answer"
    gold_answer = _extract_answer(str(gold)) or str(gold)
    predicted = extract_answer(completion)
    if predicted is None:
        return False, None, "no answer found in completion"
    correct, reason = judge(gold_answer, predicted, numbers_only)
    return correct, predicted, reason


def extract_answer(completion: str) -> str | None:
    """The final answer in a completion, or None when it has none."""
    return _extract_answer(completion)


def normalize(answer: str) -> str:
    """The cleaned text of one answer (LaTeX spacing, wrappers, units, currency, separators removed)."""
    return clean_answer(answer).text


def judge(gold_answer: str, predicted_answer: str, numbers_only: bool = True) -> tuple[bool | None, str]:
    """Compare an extracted prediction with a gold answer: (correct or None for cannot judge, reason).

    `numbers_only`: when the gold answer is a rational number, the prediction must be one written out
    (`52`, `0.5`, `\\frac{1}{2}`), not an expression that evaluates to it (`12 + 40`, `2^{10}`).
    """
    gold, predicted = _same_angle_unit(clean_answer(gold_answer), clean_answer(predicted_answer))
    if gold.text and _compact(gold.text) == _compact(predicted.text) and gold.percent == predicted.percent:
        return True, "same text as the gold answer"
    if _WORDS_ANSWER.fullmatch(gold.text) and gold.text.lower() == predicted.text.strip().lower():
        return True, "same words as the gold answer"  # `no` for `\\text{No}`: words, whatever their case
    try:
        gold_node = _read(gold)
    except TooLarge as error:
        return None, f"cannot judge: gold answer {gold.text[:80]!r} is too large ({error})"
    except GoldUnreadable:
        return None, f"cannot judge: gold answer {gold.text[:80]!r} cannot be parsed"
    if isinstance(gold_node, Refused):
        return None, f"cannot judge: gold answer {gold.text[:80]!r} {gold_node.why}"
    if _is_number_gold(gold, gold_node):
        predicted = _without_unit_symbol(predicted)
    try:
        predicted_node = _read(predicted, gold=False)
    except TooLarge as error:
        return False, f"answer {predicted.text[:80]!r} refused: {error}"
    if isinstance(predicted_node, Refused):
        return False, f"answer {predicted.text[:80]!r} {predicted_node.why}"
    if numbers_only and _is_number_gold(gold, gold_node) and not _written_as_number(predicted.text, predicted_node):
        return False, f"answer {predicted.text[:80]!r} is not a number written out (the gold answer is a number)"
    if equivalent(gold_node, predicted_node):
        return True, "equivalent to the gold answer"
    return False, f"{predicted.text[:80]!r} is not equivalent to {gold.text[:80]!r}"


def _without_unit_symbol(predicted: CleanAnswer) -> CleanAnswer:
    """`250 g`, `6.0E-3 M` for a number gold: a number and one unit symbol is the number. Cleaning keeps one
    letter after a number, which may be a variable (`2 m`); against a number gold it can only be a unit."""
    match = _UNIT_SYMBOL_TAIL.fullmatch(predicted.text)
    if match is None:
        return predicted
    value = clean_answer(match.group("value")).text
    return replace(predicted, text=value) if _NUMBER_LITERAL.fullmatch(value) else predicted


def _same_angle_unit(gold: CleanAnswer, predicted: CleanAnswer) -> tuple[CleanAnswer, CleanAnswer]:
    """An angle in degrees (`60^\\circ`) against one in radians (`\\frac{\\pi}{3}`): the degrees in radians.
    Only when the other side is written with pi, so a bare `60` for `60^\\circ` is still compared as 60."""
    if gold.degrees == predicted.degrees:
        return gold, predicted
    degrees, radians = (gold, predicted) if gold.degrees else (predicted, gold)
    if not re.search(r"\\pi|π", radians.text) or _NUMBER_LITERAL.fullmatch(degrees.text) is None:
        return gold, predicted
    converted = replace(degrees, text=f"\\frac{{({degrees.text}) \\pi}}{{180}}", degrees=False)
    return (converted, predicted) if gold.degrees else (gold, converted)


def _read(answer: CleanAnswer, gold: bool = True) -> Any:
    try:
        node = parse_answer(answer.text)
    except TooLarge:
        raise
    except ParseError as error:
        if not gold or _WORDS.fullmatch(answer.text):
            return Text(answer.text)
        raise GoldUnreadable(str(error)) from error
    except RecursionError as error:
        raise TooLarge("nested too deeply") from error
    try:
        result = canonical(node, answer.percent, _decimal_places(answer.text))
    except RecursionError as error:
        raise TooLarge("nested too deeply") from error
    if isinstance(result, Scalar) and result.decimal_places is None:
        moved = _rounding_moves(answer)
        if moved:
            return replace(result, rounded=moved)
    return result


def _is_number_gold(gold: CleanAnswer, node: Any) -> bool:
    """A gold answer written as a rational number; not a long decimal, which approximates an exact value
    (`4.1231056` for the square root of 17), nor an expression (`\\frac12 + \\frac1{72}`)."""
    if not (isinstance(node, Scalar) and isinstance(node.expr, sympy.Rational) and node.decimal_places is None):
        return False
    return _written_as_number(gold.text, node)


def _written_as_number(text: str, node: Any) -> bool:
    """The answer's value, after any `x =` or worked chain `12 + 40 = 52` and before any `\\approx`, is a
    number literal."""
    if not isinstance(node, Scalar | Assignment):
        return True  # not a single value: equivalence to a number fails on its own
    exact = _unwrap(text).split("\\approx", 1)[0]  # an approximation stands for its first, exact side
    value = _unwrap(exact.rsplit("=", 1)[-1])
    return _NUMBER_LITERAL.fullmatch(value) is not None


def _unwrap(text: str) -> str:
    text = text.strip()
    while len(text) > 2 and (text[0], text[-1]) in (("{", "}"), ("(", ")")):
        text = text[1:-1].strip()
    return text


def _decimal_places(text: str) -> int | None:
    """Decimal places of a long decimal literal, which stands for a rounded value: `0.0833333` has 7, and
    `2.314814814815 \\times 10^{-3}` has 15."""
    scientific = _SCIENTIFIC.fullmatch(text)
    mantissa, exponent = (scientific.group(1), int(scientific.group(2))) if scientific else (text, 0)
    match = _DECIMAL.fullmatch(mantissa)
    if match is None:
        return None
    significant = mantissa.lstrip("+-").replace(".", "").lstrip("0")
    return len(match.group(1)) - exponent if len(significant) >= MIN_APPROXIMATION_DIGITS else None


def _rounding_moves(answer: CleanAnswer) -> tuple[Any, ...]:
    """For an answer with decimal literals of at least `MIN_APPROXIMATION_DIGITS` significant digits (rounded
    values, such as `1386.15` in `1386.15(e^{0.013t} - 1)`): the answer's expression again with each of them
    moved up by half a unit of its last place (at most `MAX_ROUNDED_LITERALS`; empty when there are more)."""
    literals = [
        match
        for match in _DECIMAL_IN_TEXT.finditer(answer.text)
        if len((match.group(1) + match.group(2)).lstrip("0")) >= MIN_APPROXIMATION_DIGITS
    ]
    if not literals or len(literals) > MAX_ROUNDED_LITERALS:
        return ()
    moved = []
    for match in literals:
        shifted = Decimal(match.group(0)) + Decimal(5).scaleb(-len(match.group(2)) - 1)
        text = answer.text[: match.start()] + format(shifted, "f") + answer.text[match.end() :]
        try:
            node = canonical(parse_answer(text), answer.percent)
        except (ParseError, RecursionError):
            return ()
        if not isinstance(node, Scalar):
            return ()
        moved.append(node.expr)
    return tuple(moved)


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _verdict(correct: bool | None, extracted: str | None, reason: str, name: str = NAME) -> Verdict:
    reward = None if correct is None else float(correct)
    return Verdict(correct, reward, extracted, reason, name, VERSION)


__all__ = ["NAME", "VERSION", "extract_answer", "judge", "normalize", "verify", "verify_expressions_accepted"]
