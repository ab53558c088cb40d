"""Countdown verifier: does the completion's arithmetic expression reach the target with the given numbers?

The problem's `metadata` (JSON) holds `numbers` (list of ints), `target` (int) and optionally `use_all`
(bool, default false: each number at most once; true: each exactly once). The expression is the last
`<answer>...</answer>` of the completion, else the last non-empty line after any `</think>`; a trailing
`= <number>` is ignored, and `×`, `÷`, `−` read as `*`, `/`, `-`.

The expression is parsed with Python's `ast` module and walked with a whitelist: integer literals, `+`,
`-`, `*`, `/` and parentheses; anything else (names, calls, powers, unary minus, floats) is rejected. It
is never `eval`ed. Arithmetic is exact (`fractions.Fraction`), so `7 / 2 * 2` is 7 and division by zero is
a wrong answer. Every literal must be one of the given numbers, used no more often than given, so
evaluation stays cheap whatever the completion holds.

What it does not do: partial credit for getting close, or other operators (powers, concatenation).
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from verifiers.verdict import Verdict

NAME = "countdown"
VERSION = "0.1.0"

MAX_EXPRESSION_CHARS = 300

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_TRAILING_RESULT = re.compile(r"=\s*-?\d+(?:\.\d+)?\s*\.?\s*$")
_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


class ExpressionError(ValueError):
    """An expression outside the countdown grammar; the message says which part."""


def verify(completion: str, problem: Mapping[str, Any]) -> Verdict:
    try:
        numbers, target, use_all = puzzle_of(problem)
    except ValueError as error:
        return _verdict(None, None, f"cannot judge: field 'metadata': {error}")
    expression = extract_expression(completion)
    if expression is None:
        return _verdict(False, None, "no expression found in completion")
    try:
        value, used = evaluate(expression)
    except ExpressionError as error:
        return _verdict(False, expression, f"not a valid expression: {error}")
    extra = Counter(used) - Counter(numbers)
    if extra:
        return _verdict(False, expression, f"uses numbers not available: {sorted(extra.elements())} (given {numbers})")
    if use_all and Counter(used) != Counter(numbers):
        unused = sorted((Counter(numbers) - Counter(used)).elements())
        return _verdict(False, expression, f"must use every number; unused: {unused}")
    if value != target:
        return _verdict(False, expression, f"evaluates to {_show(value)}, not {target}")
    return _verdict(True, expression, f"reaches {target}")


def puzzle_of(problem: Mapping[str, Any]) -> tuple[list[int], int, bool]:
    raw = problem.get("metadata")
    try:
        metadata = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error})") from None
    if not isinstance(metadata, Mapping):
        raise ValueError("missing, or not a JSON object with 'numbers' and 'target'")
    numbers, target = metadata.get("numbers"), metadata.get("target")
    if not isinstance(numbers, list) or not numbers or not all(_is_int(number) for number in numbers):
        raise ValueError(f"'numbers' must be a non-empty list of integers, got {numbers!r}")
    if not _is_int(target):
        raise ValueError(f"'target' must be an integer, got {target!r}")
    return list(numbers), int(target), bool(metadata.get("use_all", False))


def extract_expression(completion: str) -> str | None:
    tags = _ANSWER_TAG.findall(completion)
    if tags:
        text = tags[-1]
    else:
        lines = [line for line in completion.rsplit("</think>", 1)[-1].splitlines() if line.strip()]
        if not lines:
            return None
        text = lines[-1]
    text = text.strip().replace("×", "*").replace("÷", "/").replace("−", "-").replace("\\times", "*")
    text = _TRAILING_RESULT.sub("", text).strip()
    return text or None


def evaluate(expression: str) -> tuple[Fraction, list[int]]:
    """The exact value of a whitelisted expression and the integer literals it uses."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise ExpressionError(f"does not parse ({type(error).__name__})") from None
    used: list[int] = []
    return _value(tree.body, used), used


def _value(node: ast.AST, used: list[int]) -> Fraction:
    if isinstance(node, ast.Constant) and _is_int(node.value):
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _value(node.left, used), _value(node.right, used)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if right == 0:
            raise ExpressionError("division by zero")
        return left / right
    if isinstance(node, ast.BinOp):
        raise ExpressionError(f"operator {type(node.op).__name__} is not one of + - * /")
    if isinstance(node, ast.UnaryOp):
        raise ExpressionError("unary operators are not allowed")
    if isinstance(node, ast.Constant):
        raise ExpressionError(f"{node.value!r} is not an integer")
    raise ExpressionError(f"{type(node).__name__} is not allowed (only integers, + - * / and parentheses)")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _verdict(correct: bool | None, extracted: str | None, reason: str) -> Verdict:
    reward = None if correct is None else float(correct)
    return Verdict(correct, reward, extracted, reason, NAME, VERSION)
