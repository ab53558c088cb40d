"""Decide whether two parsed math answers are equivalent.

What it does: reduces answer nodes (`verifiers.math_parse`) to comparable forms and compares them:
- numbers exactly as rationals; polynomials and rational functions exactly (`cancel` of the difference);
  other expressions by evaluation at fixed points (some all-positive, some with negative values) and at
  points drawn at random per call, at 50 significant digits; points where either side is undefined or not
  real are skipped, so `\\log(a^2 b)` equals `2\\log a + \\log b` on their common real domain, while
  `\\sqrt{x^2}` differs from `x`; complex values (an odd root of a negative number) that agree count
  as points, and binomials are not sampled where their value is a convention (a negative integer n, k or
  n - k). An expression built to agree with the gold at the fixed points is caught by the exact check or
  the random points.
- exact constants (no decimal in them) by their difference, resolved to 400 digits: `2^{2^{-1000}}` is not 1.
- a decimal literal with at least 6 significant digits equals an exact value that rounds to it
  (`0.0833333333333333` = 1/12); shorter decimals must be exact (`0.33` != 1/3). An expression with such
  decimals (`1386.15(e^{0.013t} - 1)`) equals an exact one when, at every sampled point, they differ by no more
  than moving each decimal by half a unit of its last place changes it (`Scalar.rounded`, first order).
- percent: `28\\%` equals 28 and 0.28.
- tuples in order; bare lists (`1, 2`), set literals and `±` answers as unordered collections; intervals and
  unions as sets; inequalities in one variable by their solution sets (`-x > -1` = `x < 1`); equations by
  proportional `lhs - rhs`; `x = 3` against `3` by its right side when the left side is a plain name; chains of
  equalities by their last side when every step holds (`1 = 2 = 17` and `5 = 17` are `Refused`, as is
  `a \\approx b` unless the gold is an approximation too); inequalities joined by "or" by the union of their
  solution sets, also against an interval union (`x < 0 or x > 1` = `(-\\infty, 0) \\cup (1, \\infty)`);
  matrices entry by entry, a column vector as the tuple `(a, b)` of its entries; words by their letters,
  case-insensitively.

What it does not do: prove identities beyond rational functions. For those, agreement at every sampled point
is taken as equality (the fixed points plus fresh random ones each call); every evaluation is bounded by the
parser's size limits and by the caller's timeout.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

import sympy

from verifiers.math_parse import (
    PLUS_MINUS,
    AnswerList,
    Bracketed,
    ParseError,
    Ratio,
    Relation,
    Scalar,
    SetValue,
    Text,
    TooLarge,
    as_set,
)

PRECISION = 50
RELATIVE_TOLERANCE = sympy.Float("1e-30", PRECISION)
MIN_VALID_POINTS = 3
EXACT_WORKING_DIGITS = 400  # how far exact constants are resolved: a difference below 10^-400 counts as 0
APPROXIMATION_TOLERANCE = sympy.Rational(1, 100)  # `a \\approx b` holds within 1 %
RANDOM_POINTS = 4  # drawn per call, on top of the fixed points
MAX_EXACT_SYMBOLS = 6
MAX_EXACT_EXPONENT = 40  # larger powers are compared at points only (expanding them costs too much)
MAX_ITEMS = 200

_POSITIVE_VALUES = [sympy.Rational(n, d) for n, d in [(7, 5), (13, 6), (5, 7), (17, 4), (9, 11), (23, 7), (3, 13),
                                                      (11, 3), (29, 10), (19, 17), (31, 9), (2, 19)]]  # fmt: skip
_MIXED_VALUES = [sympy.Rational(n, d) for n, d in [(-7, 3), (5, 4), (-11, 7), (-2, 9), (17, 5), (-13, 4), (8, 11),
                                                   (-19, 6), (3, 7), (-5, 13), (27, 8), (-9, 5)]]  # fmt: skip


@dataclass(frozen=True)
class Assignment:
    """`x = 3`, `(p, q) = (3, 2)`, `f(x) = 1`: a value given a name; compared by its value."""

    label: Any
    value: Any


@dataclass(frozen=True)
class Equation:
    difference: Any  # lhs - rhs


@dataclass(frozen=True)
class Refused:
    """An answer that states something false or hedged (`5 = 17`, `1 = 2 = 17`, `17 \\approx 99`): never
    equivalent to anything, whatever its last side."""

    why: str


def canonical(node: Any, percent: bool = False, decimal_places: int | None = None) -> Any:
    """The comparable form of a parsed answer."""
    if isinstance(node, Scalar):
        return node
    if isinstance(node, sympy.Basic | sympy.MatrixBase) and not isinstance(node, sympy.Set):
        if isinstance(node, sympy.Expr) and node.has(PLUS_MINUS):
            return AnswerList(tuple(Scalar(node.subs(PLUS_MINUS, sign), percent) for sign in (1, -1)))
        return Scalar(node, percent, decimal_places)
    if isinstance(node, sympy.Set):
        return SetValue(node)
    if isinstance(node, AnswerList):
        items: list[Any] = []
        for item in node.items:
            reduced = canonical(item, percent)
            if isinstance(reduced, AnswerList):
                items.extend(reduced.items)
            elif isinstance(reduced, Assignment) and isinstance(reduced.value, AnswerList):
                items.extend(Assignment(reduced.label, value) for value in reduced.value.items)
            else:
                items.append(reduced)
        if len(items) > MAX_ITEMS:
            raise TooLarge("too many answers in a list")
        return items[0] if len(items) == 1 else AnswerList(tuple(items))
    if isinstance(node, Bracketed):
        if node.opening == "{":
            return canonical(AnswerList(node.items), percent)
        if (node.opening, node.closing) in (("[", ")"), ("(", "]")):
            try:
                return SetValue(as_set(node))
            except ParseError:
                pass
        return Bracketed(node.opening, node.closing, tuple(canonical(item) for item in node.items))
    if isinstance(node, Ratio):
        return Ratio(tuple(canonical(part) for part in node.parts))
    if isinstance(node, Relation):
        return _canonical_relation(node, percent)
    return node


def _canonical_relation(node: Relation, percent: bool) -> Any:
    ops, parts = node.ops, node.parts
    if "approx" in ops and all(op in ("=", "approx") for op in ops):
        # `\\frac{\\sqrt3}{3} \\approx 0.577`: an exact value with a true approximation is that value;
        # anything else (`17 \\approx 99`, `x \\approx 11`) equals only a gold answer of that shape
        if all(_is_expression(part) and not part.free_symbols for part in parts) and all(
            _values_equal(left, right) if op == "=" else _approximately(left, right)
            for left, op, right in zip(parts, ops, parts[1:], strict=False)
        ):
            return canonical(parts[0], percent)
        return node
    if all(op == "=" for op in ops):
        constant = all(_is_expression(part) and not part.free_symbols for part in parts)
        sides = parts[1:] if is_label(parts[0]) else parts
        # a claim (`5 = 17`, `1 = 2 = 17`, `x = 2 + 3 = 6`) must hold; `3x - y = 2` is an equation, not a claim
        for left, right in zip(sides, sides[1:], strict=False) if constant or len(parts) >= 3 else ():
            if not (_is_expression(left) and _is_expression(right) and _values_equal(left, right)):
                return Refused(f"states {_short(left)} = {_short(right)}, which is not shown to be true")
        if constant:
            return canonical(parts[-1], percent)
        if len(parts) >= 3:
            return canonical(Relation((parts[0], parts[-1]), ("=",)) if is_label(parts[0]) else parts[-1], percent)
        left, right = parts
        if is_label(left):
            return Assignment(left, canonical(right, percent))
        if _is_expression(left) and _is_expression(right):
            return Equation(left - right)
        return node
    if ops == ("in",) and is_label(parts[0]):
        try:
            return SetValue(as_set(parts[1]))
        except ParseError:
            return canonical(parts[1], percent)
    solved = _solution_set(node)
    return SetValue(solved) if solved is not None and solved is not sympy.S.EmptySet else node


def _approximately(left: Any, right: Any) -> bool:
    a, b = _evaluate(left, {}), _evaluate(right, {})
    if a is None or b is None or not _is_real(a) or not _is_real(b):
        return False
    return bool(abs(a - b) <= APPROXIMATION_TOLERANCE * max(abs(a), abs(b)))


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _is_expression(value: Any) -> bool:
    return isinstance(value, sympy.Expr) and not value.has(PLUS_MINUS)


def is_label(node: Any) -> bool:
    """A plain name on the left of `=`: `x`, `a_3`, `f(x)`, `|AB|`, `\\frac{NO}{BO}`, `(p, q)`, `A:B`."""
    if isinstance(node, Bracketed):
        return node.opening == "(" and all(is_label(item) for item in node.items)
    if isinstance(node, Ratio):
        return all(is_label(part) for part in node.parts)
    if isinstance(node, sympy.Symbol):
        return node != PLUS_MINUS
    if isinstance(node, sympy.Abs):
        return is_label(node.args[0])
    if isinstance(node, sympy.Mul):
        return all(
            is_label(factor) or (isinstance(factor, sympy.Pow) and factor.exp == -1 and is_label(factor.base))
            for factor in node.args
        )
    return False


# --------------------------------------------------------------------------------------------- inequalities

_RELATIONALS = {"<": sympy.Lt, ">": sympy.Gt, "<=": sympy.Le, ">=": sympy.Ge}


def _solution_set(node: Relation) -> Any:
    """The real solution set of an inequality (chain) in one unknown, or None."""
    parts, ops = node.parts, node.ops
    if not all(_is_expression(part) for part in parts):
        return None
    if ops == ("!=",):
        return _not_equal_set(parts[0], parts[1])
    if not all(op in _RELATIONALS for op in ops):
        return None
    if len(parts) == 3 and len(parts[1].free_symbols) != 1 and is_label(parts[1]):
        low, high = parts[0], parts[2]
        if low.free_symbols or high.free_symbols:
            return None
        if ops[0] in ("<", "<=") and ops[1] in ("<", "<="):
            return sympy.Interval(low, high, ops[0] == "<", ops[1] == "<")
        if ops[0] in (">", ">=") and ops[1] in (">", ">="):
            return sympy.Interval(high, low, ops[1] == ">", ops[0] == ">")
        return None
    result: Any = sympy.S.Reals
    for left, op, right in zip(parts, ops, parts[1:], strict=False):
        piece = _solve_one(left, op, right)
        if piece is None:
            return None
        result = sympy.Intersection(result, piece)
    return result


def _solve_one(left: Any, op: str, right: Any) -> Any:
    symbols = (left - right).free_symbols
    if len(symbols) != 1:
        return None
    symbol = next(iter(symbols))
    real = sympy.Dummy("t", real=True)
    relation = _RELATIONALS[op](left.subs(symbol, real), right.subs(symbol, real))
    if relation in (sympy.true, sympy.false):
        return None
    try:
        return sympy.solve_univariate_inequality(relation, real, relational=False)
    except (NotImplementedError, ValueError, TypeError):
        return None


def _not_equal_set(left: Any, right: Any) -> Any:
    symbols = (left - right).free_symbols
    if len(symbols) != 1:
        return None
    symbol = next(iter(symbols))
    real = sympy.Dummy("t", real=True)
    try:
        roots = sympy.solveset(sympy.Eq(left.subs(symbol, real), right.subs(symbol, real)), real, sympy.S.Reals)
    except (NotImplementedError, ValueError, TypeError):
        return None
    return sympy.Complement(sympy.S.Reals, roots) if isinstance(roots, sympy.FiniteSet) else None


# --------------------------------------------------------------------------------------------- comparison


def equivalent(gold: Any, predicted: Any) -> bool:
    """Whether a canonical predicted answer matches a canonical gold answer."""
    if isinstance(gold, Assignment):
        if isinstance(predicted, Assignment):
            if equivalent(gold.value, predicted.value):
                return True
            return _equations_equal(_as_equation(gold), _as_equation(predicted))
        if isinstance(predicted, Equation):
            return _equations_equal(_as_equation(gold), predicted)
        return equivalent(gold.value, predicted)
    if isinstance(predicted, Assignment):
        if isinstance(gold, Equation):
            return _equations_equal(gold, _as_equation(predicted))
        return equivalent(gold, predicted.value)
    if isinstance(gold, AnswerList):
        if isinstance(predicted, AnswerList):
            return _unordered_equal(gold.items, predicted.items)
        if isinstance(predicted, Bracketed) and predicted.opening == "(":
            return _unordered_equal(gold.items, predicted.items)
        if isinstance(predicted, SetValue) and all(isinstance(item, SetValue) for item in gold.items):
            return _sets_equal(_to_set(gold), predicted.value)  # `x < 0 or x > 1` is a union
        return False
    if isinstance(gold, Bracketed) and isinstance(predicted, Scalar) and _is_column(predicted.expr):
        return _column_equal(gold, predicted.expr)
    if isinstance(gold, Scalar) and _is_column(gold.expr) and isinstance(predicted, Bracketed):
        return _column_equal(predicted, gold.expr)
    if isinstance(gold, Bracketed):
        return _bracketed_equal(gold, predicted)
    if isinstance(gold, SetValue):
        return _sets_equal(gold.value, _to_set(predicted))
    if isinstance(gold, Equation):
        return isinstance(predicted, Equation) and _equations_equal(gold, predicted)
    if isinstance(gold, Ratio):
        return isinstance(predicted, Ratio) and _ordered_equal(gold.parts, predicted.parts)
    if isinstance(gold, Relation):
        return isinstance(predicted, Relation) and _relations_equal(gold, predicted)
    if isinstance(gold, Scalar):
        return isinstance(predicted, Scalar) and scalars_equal(gold, predicted)
    if isinstance(gold, Text):
        return isinstance(predicted, Text | Scalar) and text_key(gold) == text_key(predicted)
    return False


def _as_equation(assignment: Assignment) -> Equation | None:
    value = assignment.value
    if isinstance(value, Scalar) and _is_expression(value.expr) and _is_expression(assignment.label):
        return Equation(assignment.label - value.expr)
    return None


def _is_column(value: Any) -> bool:
    return _is_matrix(value) and value.cols == 1 and value.rows >= 2


def _column_equal(vector: Bracketed, column: Any) -> bool:
    """A column vector is the tuple of its entries, in order: `\\begin{pmatrix}1\\\\2\\end{pmatrix}` is `(1, 2)`
    and `\\langle 1, 2\\rangle`; not `[1, 2]`, an interval, nor a set."""
    if (vector.opening, vector.closing) != ("(", ")"):
        return False
    return _ordered_equal(vector.items, tuple(Scalar(entry) for entry in column))


def _bracketed_equal(gold: Bracketed, predicted: Any) -> bool:
    if isinstance(predicted, Bracketed):
        if len(gold.items) == 2 and (gold.opening, gold.closing) != (predicted.opening, predicted.closing):
            return False
        return _ordered_equal(gold.items, predicted.items)
    if isinstance(predicted, SetValue):
        return _sets_equal(_to_set(gold), predicted.value)
    if isinstance(predicted, AnswerList):
        return _ordered_equal(gold.items, predicted.items)
    return False


def _to_set(node: Any) -> Any:
    if isinstance(node, SetValue):
        return node.value
    if isinstance(node, Bracketed):
        try:
            return as_set(node)
        except ParseError:
            return None
    if isinstance(node, AnswerList) and all(isinstance(item, Scalar) for item in node.items):
        return sympy.FiniteSet(*[item.expr for item in node.items])
    if isinstance(node, AnswerList) and all(isinstance(item, SetValue) for item in node.items):
        return sympy.Union(*[item.value for item in node.items])  # `x < -1 or x > 1`
    if isinstance(node, Scalar) and isinstance(node.expr, sympy.Expr):
        return sympy.FiniteSet(node.expr)
    return None


def _ordered_equal(gold: tuple[Any, ...], predicted: tuple[Any, ...]) -> bool:
    return len(gold) == len(predicted) and all(equivalent(g, p) for g, p in zip(gold, predicted, strict=True))


def _unordered_equal(gold: tuple[Any, ...], predicted: tuple[Any, ...]) -> bool:
    """Same members, ignoring order and repeats: answers to "find all" are sets."""
    gold, predicted = _distinct(gold), _distinct(predicted)
    if len(gold) != len(predicted):
        return False
    remaining = list(predicted)
    for item in gold:
        for index, candidate in enumerate(remaining):
            if equivalent(item, candidate):
                del remaining[index]
                break
        else:
            return False
    return True


def _distinct(items: tuple[Any, ...]) -> tuple[Any, ...]:
    kept: list[Any] = []
    for item in items:
        if not any(item == seen or equivalent(seen, item) for seen in kept):
            kept.append(item)
    return tuple(kept)


def _relations_equal(gold: Relation, predicted: Relation) -> bool:
    flipped = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "!=": "!="}
    if gold.ops == predicted.ops:
        return _ordered_equal(_scalars(gold.parts), _scalars(predicted.parts))
    if all(op in flipped for op in predicted.ops) and gold.ops == tuple(flipped[op] for op in reversed(predicted.ops)):
        return _ordered_equal(_scalars(gold.parts), _scalars(tuple(reversed(predicted.parts))))
    return False


def _scalars(parts: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(canonical(part) for part in parts)


# --------------------------------------------------------------------------------------------- sets


def _sets_equal(gold: Any, predicted: Any) -> bool:
    if gold is None or predicted is None:
        return False
    if gold == predicted:
        return True
    gold_parts, predicted_parts = _components(gold), _components(predicted)
    if gold_parts is None or predicted_parts is None or len(gold_parts) != len(predicted_parts):
        return False
    for (g_low, g_high, g_open), (p_low, p_high, p_open) in zip(gold_parts, predicted_parts, strict=True):
        if g_open != p_open or not _values_equal(g_low, p_low) or not _values_equal(g_high, p_high):
            return False
    return True


def _components(value: Any) -> list[tuple[Any, Any, tuple[bool, bool]]] | None:
    pieces = value.args if isinstance(value, sympy.Union) else (value,)
    components: list[tuple[Any, Any, tuple[bool, bool]]] = []
    for piece in pieces:
        if isinstance(piece, sympy.Interval):
            components.append((piece.start, piece.end, (bool(piece.left_open), bool(piece.right_open))))
        elif isinstance(piece, sympy.FiniteSet):
            components.extend((point, point, (False, False)) for point in piece.args)
        elif piece is sympy.S.Reals:
            components.append((-sympy.oo, sympy.oo, (True, True)))
        else:
            return None
    try:
        components.sort(key=lambda part: (float(part[0]), float(part[1])))
    except (TypeError, ValueError):
        return None
    return components


# --------------------------------------------------------------------------------------------- scalars


def scalars_equal(gold: Scalar, predicted: Scalar) -> bool:
    pairs = [(gold.expr, predicted.expr)]
    if gold.percent != predicted.percent and not _is_matrix(gold.expr) and not _is_matrix(predicted.expr):
        pairs.append((gold.expr / 100, predicted.expr) if gold.percent else (gold.expr, predicted.expr / 100))
    places = predicted.decimal_places if predicted.decimal_places is not None else gold.decimal_places
    if gold.decimal_places is not None and predicted.decimal_places is not None:
        places = None  # two decimal literals must agree exactly
    if any(_values_equal(left, right, places) for left, right in pairs):
        return True
    rounded, exact = (gold, predicted) if gold.rounded else (predicted, gold)
    if not rounded.rounded or exact.rounded or exact.decimal_places is not None or gold.percent != predicted.percent:
        return False  # decimals on both sides must agree exactly, as two decimal literals do
    return _equal_within_rounding(rounded.expr, exact.expr, rounded.rounded)


def _equal_within_rounding(rounded: Any, exact: Any, moved: tuple[Any, ...]) -> bool:
    """An expression with rounded decimals (`1386.15(e^{0.013t} - 1)`) against an exact one
    (`\\frac{18.02}{0.013}(e^{0.013t} - 1)`): at every sampled point, the two differ by no more than moving each
    rounded decimal by half a unit of its last place changes the rounded side (`moved`, to first order)."""
    if not (isinstance(rounded, sympy.Expr) and isinstance(exact, sympy.Expr)):
        return False
    if not all(isinstance(expr, sympy.Expr) for expr in moved):
        return False
    symbols = sorted(rounded.free_symbols | exact.free_symbols, key=str)
    fixed = _points(symbols) if symbols else [{}]
    valid = 0
    for number, point in enumerate(fixed + (_random_points(symbols) if symbols else [])):
        if not (_in_real_domain(rounded, point) and _in_real_domain(exact, point)):
            continue
        a, b = _evaluate(rounded, point), _evaluate(exact, point)
        shifts = [_evaluate(expr, point) for expr in moved]
        if a is None or b is None or any(shift is None for shift in shifts):
            continue
        bound = sum(abs(shift - a) for shift in shifts) * sympy.Rational(101, 100)
        if abs(a - b) > bound + RELATIVE_TOLERANCE * max(abs(a), abs(b), 1):
            return False
        valid += number < len(fixed)
    return valid >= (MIN_VALID_POINTS if symbols else 1)


def _is_matrix(value: Any) -> bool:
    return isinstance(value, sympy.MatrixBase)


def _values_equal(left: Any, right: Any, decimal_places: int | None = None) -> bool:
    if _is_matrix(left) or _is_matrix(right):
        if not (_is_matrix(left) and _is_matrix(right)) or left.shape != right.shape:
            return False
        return all(_values_equal(a, b) for a, b in zip(left, right, strict=True))
    if left == right:
        return True
    if not isinstance(left, sympy.Expr) or not isinstance(right, sympy.Expr):
        return False
    if left.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan) or right.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
        return False
    if isinstance(left, sympy.Rational) and isinstance(right, sympy.Rational) and decimal_places is None:
        return False
    symbols = sorted(left.free_symbols | right.free_symbols, key=str)
    if not symbols:
        return _constants_equal(left, right, decimal_places)
    exact = _exactly_equal(left, right, symbols)
    if exact is not None:
        return exact
    return _agree_at_points(left, right, symbols)


def _exactly_equal(left: Any, right: Any, symbols: list[Any]) -> bool | None:
    """Decide rational functions exactly (`cancel` of their difference is 0 or not); None for the rest."""
    if len(symbols) > MAX_EXACT_SYMBOLS or any(
        isinstance(power.exp, sympy.Integer) and abs(power.exp) > MAX_EXACT_EXPONENT
        for power in (left - right).atoms(sympy.Pow)
    ):
        return None
    difference = left - right
    if difference.has(sympy.Float):
        return None  # decimals compare with a tolerance, at points
    try:
        if not difference.is_rational_function(*symbols):
            return None
        return bool(sympy.cancel(sympy.expand(difference)) == 0)
    except (TypeError, ValueError, ZeroDivisionError, RecursionError, sympy.PolynomialError):
        return None


def _constants_equal(left: Any, right: Any, decimal_places: int | None) -> bool:
    if decimal_places is None and not (left.has(sympy.Float) or right.has(sympy.Float)):
        differ = _exact_constants_differ(left, right)
        if differ:
            return False
    a, b = _evaluate(left, {}), _evaluate(right, {})
    if a is None or b is None:
        return False
    difference = abs(a - b)
    if difference <= RELATIVE_TOLERANCE * max(abs(a), abs(b), 1):
        return True
    if decimal_places is not None:
        return difference <= sympy.Rational(1, 2) * sympy.Integer(10) ** -decimal_places * (1 + sympy.Float("1e-9"))
    return False


def _exact_constants_differ(left: Any, right: Any) -> bool | None:
    """True when two exact constants differ, however little (`2^{2^{-1000}}` is not 1): their difference is
    evaluated to full relative precision, with working precision raised as far as `EXACT_WORKING_DIGITS`
    (sympy's adaptive `evalf`). None when no digit of the difference could be found (it is probably 0); then the
    tolerance comparison decides, as for decimals."""
    try:
        difference = (left - right).evalf(PRECISION, maxn=EXACT_WORKING_DIGITS)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, RecursionError, AttributeError):
        return None
    if difference == 0:
        return False
    if not isinstance(difference, sympy.Expr) or not difference.is_number:
        return None
    for part in difference.as_real_imag():
        # a Float carries the bits it could resolve: a cancelled difference comes back as `0.e-N`, 1 bit
        if isinstance(part, sympy.Float) and part != 0 and part._prec >= PRECISION:
            return True
    return None


def _agree_at_points(left: Any, right: Any, symbols: list[Any]) -> bool:
    """Equal at every sampled point where both are real, and at enough of the fixed ones. The fixed points
    decide whether there are enough; random points, drawn anew per call, can only find a difference, so an
    expression built to agree at the fixed points is caught and equal expressions never flip."""
    valid = 0
    fixed = _points(symbols)
    for number, point in enumerate(fixed + _random_points(symbols)):
        if not (_in_real_domain(left, point) and _in_real_domain(right, point)):
            continue
        a, b = _evaluate(left, point), _evaluate(right, point)
        if a is None or b is None:
            continue
        close = abs(a - b) <= RELATIVE_TOLERANCE * max(abs(a), abs(b), 1) * 10**10
        if not (_is_real(a) and _is_real(b)):
            # complex here (an odd root of a negative number, on the principal branch): agreeing values count
            # as evidence, a difference does not decide (either side may mean the real root)
            valid += close and number < len(fixed)
            continue
        if not close:
            return False
        valid += number < len(fixed)
    return valid >= MIN_VALID_POINTS


def _in_real_domain(expr: Any, point: dict[Any, Any]) -> bool:
    """Every even root and logarithm inside `expr` has a real, non-negative argument at `point`, and no
    binomial coefficient `\\binom{n}{k}` has a negative integer as n, k or n - k (there its value is a convention, by
    which `\\binom{n}{k} = \\binom{n}{n-k}` fails)."""
    for binomial in expr.atoms(sympy.binomial):
        top, bottom = binomial.args
        for argument in (top, bottom, top - bottom) if binomial.free_symbols else ():
            value = _evaluate(argument, point)
            if value is None or not _is_real(value):
                continue
            real = value.as_real_imag()[0]
            if real < 0 and float(real).is_integer():
                return False
    for part in expr.atoms(sympy.Pow, sympy.log):
        if isinstance(part, sympy.Pow):
            exponent = part.exp
            if not (isinstance(exponent, sympy.Rational) and exponent.q % 2 == 0):
                continue
            argument, strict = part.base, False
        else:
            argument, strict = part.args[0], True
        if not argument.free_symbols:
            continue
        value = _evaluate(argument, point)
        if value is None or not _is_real(value):
            return False
        real = value.as_real_imag()[0]
        if real < 0 or (strict and real == 0):
            return False
    return True


def _points(symbols: list[Any]) -> list[dict[Any, Any]]:
    points = []
    for k in range(6):
        pool = _POSITIVE_VALUES if k < 3 else _MIXED_VALUES
        points.append({symbol: pool[(k * 5 + j * 7) % len(pool)] for j, symbol in enumerate(symbols)})
    return points


def _random_points(symbols: list[Any]) -> list[dict[Any, Any]]:
    draw = random.SystemRandom()
    points = []
    for k in range(RANDOM_POINTS):
        low = 1 if k % 2 == 0 else -40  # half all-positive, half mixed, as the fixed points
        points.append({symbol: sympy.Rational(draw.randint(low, 40) or 1, draw.randint(1, 23)) for symbol in symbols})
    return points


def _evaluate(expr: Any, point: dict[Any, Any]) -> Any:
    try:
        value = expr.evalf(PRECISION, subs=point) if point else expr.evalf(PRECISION)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, RecursionError, AttributeError):
        return None
    if not isinstance(value, sympy.Expr) or value.free_symbols or value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return None
    if not value.is_number or value.is_finite is False:
        return None
    return value


def _is_real(value: Any) -> bool:
    real, imaginary = value.as_real_imag()
    return abs(imaginary) <= RELATIVE_TOLERANCE * max(abs(real), 1) * 10**10


def _equations_equal(gold: Equation | None, predicted: Equation | None) -> bool:
    """Same equation up to a non-zero constant factor: `x + y = 1` and `2x + 2y = 2`."""
    if gold is None or predicted is None:
        return False
    left, right = gold.difference, predicted.difference
    symbols = sorted(left.free_symbols | right.free_symbols, key=str)
    if not symbols:
        return False
    ratio = None
    valid = 0
    fixed = _points(symbols)
    for number, point in enumerate(fixed + _random_points(symbols)):
        a, b = _evaluate(left, point), _evaluate(right, point)
        if a is None or b is None or not _is_real(a) or not _is_real(b) or abs(b) < sympy.Float("1e-20"):
            continue
        current = a / b
        if ratio is None:
            if abs(current) < sympy.Float("1e-20"):
                return False
            ratio = current
        elif abs(current - ratio) > RELATIVE_TOLERANCE * max(abs(ratio), 1) * 10**10:
            return False
        valid += number < len(fixed)
    return valid >= MIN_VALID_POINTS


# --------------------------------------------------------------------------------------------- text


def text_key(node: Any) -> str:
    text = node.text if isinstance(node, Text) else str(node.expr)
    text = re.sub(r"\\(?:text|mathrm|textbf|mathbf)", "", text)
    text = re.sub(r"[\s{}\\$]", "", text).lower().rstrip(".")
    return re.sub(r"^\(([a-z])\)$", r"\1", text)


__all__ = ["Assignment", "Equation", "canonical", "equivalent", "is_label", "scalars_equal", "text_key"]
