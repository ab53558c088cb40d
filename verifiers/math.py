"""Math answer verifier: extract the final answer from a completion and compare it with the gold answer.

What it does: extraction (`\\boxed{}` with nested braces, `<answer>` tags, GSM8K `####`, "the answer is",
the last number), LaTeX/format normalisation, and exact comparison of numbers (integers, decimals,
fractions, `\\frac`, mixed numbers, scientific notation, percentages) as `fractions.Fraction`, so
0.5 == 1/2 == \\frac{1}{2} with no floating-point tolerance. Non-numeric gold answers match by
normalised string; when they differ the verdict is "cannot judge" (`correct=None`), never a silent
"wrong".

What it does not do: symbolic equivalence (expressions, sets, intervals, equations). Model text is never
evaluated: numbers are read by regular expressions with a digit bound, so no input can make a call slow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from verifiers.verdict import Verdict

NAME = "math"
VERSION = "0.1.0"

MAX_DIGITS = 1000  # longer literals are not numbers anyone grades; bounding them keeps every call cheap
MAX_EXPONENT = 1000
TAIL_CHARS = 4000  # answers sit at the end; only the tail of a runaway completion is searched

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_GSM8K = re.compile(r"####\s*([^\n]+)")
_ANSWER_IS = re.compile(
    r"(?:final answer|the answer)\s*(?:is|=|:)\s*[:\s]*([^\n]+?)\s*(?:\.\s*)?$", re.IGNORECASE | re.MULTILINE
)
_NUMBER_IN_TEXT = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")

_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)")
_SCIENTIFIC = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:e|\\times10\^|\*10\^|×10\^)\{?([+-]?\d+)\}?", re.IGNORECASE)
_SLASH_FRACTION = re.compile(r"([+-]?\d+)/(\d+)")
_LATEX_FRACTION = re.compile(r"([+-]?)\\frac\{([+-]?\d+)\}\{([+-]?\d+)\}")
_MIXED_NUMBER = re.compile(r"([+-]?)(\d+)(?:\s+|\\,|(?=\\frac))(?:\\frac\{(\d+)\}\{(\d+)\}|(\d+)/(\d+))")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_TEXT_MACRO = re.compile(r"\\(?:text|textbf|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}")
_DROP_TOKENS = (r"\left", r"\right", r"\!", r"\,", r"\;", r"\:", r"\ ", "$", r"\(", r"\)", r"\[", r"\]")


def verify(completion: str, problem: Mapping[str, Any]) -> Verdict:
    gold = problem.get("answer")
    if gold is None or not str(gold).strip():
        return _verdict(None, None, "cannot judge: problem has no gold answer")
    extracted = extract_answer(completion)
    if extracted is None:
        return _verdict(False, None, "no answer found in completion")
    gold_text, predicted_text = normalize(str(gold)), normalize(extracted)
    gold_number = parse_number(gold_text)
    if gold_number is None:
        if gold_text.replace(" ", "") == predicted_text.replace(" ", ""):
            return _verdict(True, extracted, "same text as the gold answer")
        return _verdict(None, extracted, f"cannot judge: gold answer {gold_text!r} is not a number")
    predicted_number = parse_number(predicted_text)
    if predicted_number is None:
        return _verdict(False, extracted, f"answer {predicted_text!r} is not a number")
    if predicted_number == gold_number:
        return _verdict(True, extracted, "equal numbers")
    return _verdict(False, extracted, f"{predicted_text} != {gold_text}")


def extract_answer(completion: str) -> str | None:
    """The final answer in a completion, by the first rule that finds one (most explicit first)."""
    text = completion[-TAIL_CHARS:]
    boxed = _last_boxed(text)
    if boxed is not None:
        return boxed
    for pattern in (_ANSWER_TAG, _GSM8K, _ANSWER_IS):
        matches = pattern.findall(text)
        if matches:
            return matches[-1].strip()
    stripped = text.strip()
    if stripped and parse_number(normalize(stripped)) is not None:
        return stripped
    numbers = _NUMBER_IN_TEXT.findall(text)
    return numbers[-1] if numbers else None


def normalize(answer: str) -> str:
    """Canonical text of an answer: LaTeX spacing and wrappers, units of form, separators removed."""
    text = answer.strip()
    boxed = _last_boxed(text)
    if boxed is not None:
        text = boxed
    text = text.replace(r"\dfrac", r"\frac").replace(r"\tfrac", r"\frac")
    while True:
        unwrapped = _TEXT_MACRO.sub(r"\1", text)
        if unwrapped == text:
            break
        text = unwrapped
    for token in _DROP_TOKENS:
        text = text.replace(token, "")
    text = text.replace(r"\%", "%").replace(r"\$", "")
    text = re.sub(r"\^\s*\{?\\circ\}?|°", "", text)
    text = text.strip().rstrip(".").strip()
    text = text.removesuffix("%").strip()
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    return text


def parse_number(text: str) -> Fraction | None:
    """An exact rational from a normalised answer, or None when it is not a plain number."""
    if len(text) > MAX_DIGITS + 20:
        return None
    compact = text.replace(" ", "") if not _MIXED_NUMBER.fullmatch(text) else text
    if _INTEGER.fullmatch(compact) or _DECIMAL.fullmatch(compact):
        return Fraction(compact)
    if match := _SLASH_FRACTION.fullmatch(compact):
        return _fraction(match[1], match[2])
    if match := _LATEX_FRACTION.fullmatch(compact):
        value = _fraction(match[2], match[3])
        return -value if value is not None and match[1] == "-" else value
    if match := _MIXED_NUMBER.fullmatch(text):
        numerator, denominator = (match[3], match[4]) if match[3] else (match[5], match[6])
        part = _fraction(numerator, denominator)
        if part is None:
            return None
        value = int(match[2]) + part
        return -value if match[1] == "-" else value
    if match := _SCIENTIFIC.fullmatch(compact):
        exponent = int(match[2])
        if abs(exponent) > MAX_EXPONENT:
            return None
        return Fraction(match[1]) * Fraction(10) ** exponent
    return None


def _fraction(numerator: str, denominator: str) -> Fraction | None:
    if int(denominator) == 0:
        return None
    return Fraction(int(numerator), int(denominator))


def _last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}`, honouring nested braces; None if absent or unclosed."""
    starts = [match.end() for match in _BOXED.finditer(text)]
    if not starts:
        return None
    start = starts[-1]
    depth = 1
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[start:index].strip()
    return None


def _verdict(correct: bool | None, extracted: str | None, reason: str) -> Verdict:
    reward = None if correct is None else float(correct)
    return Verdict(correct, reward, extracted, reason, NAME, VERSION)
