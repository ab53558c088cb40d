"""A restricted parser for math answers written in LaTeX or plain notation, building sympy objects.

What it does: tokenises one answer (`\\frac{1}{2}`, `2\\sqrt{3}`, `x^2+2x+1`, `(1, 2]`, `\\{1, 2\\}`, `x \\le 3`,
`a = 4, b = 5`, `\\begin{pmatrix}...\\end{pmatrix}`) and parses it with a small recursive-descent grammar into
the answer nodes below, whose scalars are sympy expressions built by calling sympy constructors directly.

What it does not do: it never calls `eval`, `exec`, `sympify` or `parse_expr`, so model text cannot run code.
Anything outside the grammar raises `ParseError`. Work is bounded before sympy sees it: the input length, the
nesting depth, literal digits, the size of an integer power (`2^{2^{2^{2^2}}}`), factorials, sums, limits and matrices;
a value past a bound raises `TooLarge` rather than being computed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sympy

MAX_INPUT_CHARS = 2000
MAX_DEPTH = 60
MAX_LITERAL_DIGITS = 400
MAX_EXPONENT_BITS = 64
MAX_RESULT_DIGITS = 4000  # an exact integer power or factorial larger than this is refused, not computed
MAX_FACTORIAL = 1000
MAX_SUM_TERMS = 1000
MAX_MATRIX_ENTRIES = 400
MAX_LIMIT_OPS = 40  # a limit is evaluated only when its expression is at most this many operations

PLUS_MINUS = sympy.Symbol("plusminus__")  # placeholder for ±; expanded into two answers by the comparer


class ParseError(ValueError):
    """The text is outside the grammar."""


class TooLarge(ParseError):
    """The text is inside the grammar but denotes a value too large or too deep to build."""


# ---------------------------------------------------------------------------------------------- answer nodes


@dataclass(frozen=True)
class Scalar:
    expr: Any  # sympy.Expr or sympy.ImmutableMatrix
    percent: bool = False
    decimal_places: int | None = None  # set when the text was a plain decimal literal such as 0.0833
    # a longer answer with long decimals (`1386.15(e^{0.013t} - 1)`): the answer again with each of them moved up
    # by half a unit of its last place, which bounds what their rounding can change
    rounded: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Bracketed:
    """`(a, b)`, `[a, b)`, `\\{a, b\\}`: a tuple, an interval or a set, decided when compared."""

    opening: str
    closing: str
    items: tuple[Any, ...]


@dataclass(frozen=True)
class AnswerList:
    """Top-level answers separated by commas, `and`, `or` (unordered); `;` separates groups."""

    items: tuple[Any, ...]


@dataclass(frozen=True)
class Relation:
    """`a = b`, `a < b \\le c`, `x \\in S`, `a \\approx b`: parts joined by operators."""

    parts: tuple[Any, ...]
    ops: tuple[str, ...]


@dataclass(frozen=True)
class Ratio:
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class SetValue:
    value: Any  # a sympy Set


@dataclass(frozen=True)
class Text:
    text: str


# ---------------------------------------------------------------------------------------------- tokens

_FUNCTIONS: dict[str, Any] = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "sec": sympy.sec, "csc": sympy.csc, "cot": sympy.cot,
    "arcsin": sympy.asin, "arccos": sympy.acos, "arctan": sympy.atan, "sinh": sympy.sinh, "cosh": sympy.cosh,
    "tanh": sympy.tanh, "exp": sympy.exp, "ln": sympy.log, "log": sympy.log, "lg": None,
    "cis": lambda angle: sympy.exp(sympy.I * angle),  # the polar form `r \\operatorname{cis} \\theta`
}  # fmt: skip
_INVERSE = {"sin": sympy.asin, "cos": sympy.acos, "tan": sympy.atan}
_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi", "omega",
    "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega",
}  # fmt: skip
_COMMAND_OPS = {
    "cdot": "*", "times": "*", "ast": "*", "div": "/", "pm": "±", "mp": "±",
    "le": "<=", "leq": "<=", "leqslant": "<=", "ge": ">=", "geq": ">=", "geqslant": ">=", "lt": "<", "gt": ">",
    "ne": "!=", "neq": "!=", "approx": "approx", "simeq": "approx", "in": "in", "cup": "cup", "cap": "cap",
    "setminus": "setminus", "colon": ":", "mid": "|", "vert": "|", "lvert": "|", "rvert": "|",
}  # fmt: skip
_PLAIN_WORD_COMMANDS = {"sqrt", "pi", "infty", "inf"}
_SEPARATOR_WORDS = {"and", "or"}
_TOKEN = re.compile(
    r"(?P<space>\s+)|(?P<num>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)|(?P<cmd>\\[A-Za-z]+)|(?P<esc>\\[{}|\\])"
    r"|(?P<letters>[A-Za-z]+)|(?P<op>\*\*|<=|>=|!=|=<|=>|[-+*/^_()\[\]{},;=<>!|:&'])"
)
_UNICODE_OPS = {
    "≤": "<=", "≥": ">=", "≠": "!=", "±": "±", "∓": "±", "×": "*", "·": "*", "÷": "/", "∪": "cup", "∩": "cap",
    "∈": "in", "≈": "approx", "∞": "infty", "π": "pi", "√": "sqrt",
}  # fmt: skip


@dataclass
class Token:
    kind: str  # num, id, cmd, op, word, end
    text: str


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_INPUT_CHARS:
        raise TooLarge(f"answer longer than {MAX_INPUT_CHARS} characters")
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char in _UNICODE_OPS:
            name = _UNICODE_OPS[char]
            kind = "cmd" if name in ("infty", "pi", "sqrt") else "op"
            tokens.append(Token(kind, name))
            position += 1
            continue
        match = _TOKEN.match(text, position)
        if match is None:
            raise ParseError(f"unexpected character {char!r}")
        position = match.end()
        kind = match.lastgroup
        value = match.group()
        if kind == "space":
            continue
        if kind == "num":
            if len(value) > MAX_LITERAL_DIGITS:
                raise TooLarge("number literal too long")
            tokens.append(Token("num", value))
        elif kind == "cmd":
            name = value[1:]
            tokens.append(Token("op", _COMMAND_OPS[name]) if name in _COMMAND_OPS else Token("cmd", name))
        elif kind == "esc":
            tokens.append(Token("op", {"\\{": "\\{", "\\}": "\\}", "\\|": "|", "\\\\": "rowsep"}[value]))
        elif kind == "letters":
            tokens.extend(_letter_tokens(value))
        else:
            tokens.append(Token("op", {"=<": "<=", "=>": ">=", "**": "^"}.get(value, value)))  # `**`: Python's power
    tokens.append(Token("end", ""))
    return tokens


def _letter_tokens(run: str) -> list[Token]:
    if run in _FUNCTIONS or run in _PLAIN_WORD_COMMANDS:
        return [Token("cmd", run)]
    if run.lower() == "infinity":
        return [Token("cmd", "infty")]
    if run.lower() in _SEPARATOR_WORDS:
        return [Token("op", "sep")]
    if len(run) >= 3:
        return [Token("word", run)]
    return [Token("id", letter) for letter in run]


# ---------------------------------------------------------------------------------------------- bounded arithmetic


def _digits(value: Any) -> float:
    """log10 of an exact number's size, cheap: by bit length."""
    if isinstance(value, sympy.Integer):
        return abs(int(value)).bit_length() * 0.30103
    if isinstance(value, sympy.Rational):
        return max(abs(int(value.p)).bit_length(), int(value.q).bit_length()) * 0.30103
    return 0.0


def bounded_pow(base: Any, exponent: Any) -> Any:
    if isinstance(base, sympy.MatrixBase):
        if not (isinstance(exponent, sympy.Integer) and 0 <= int(exponent) <= 64):
            raise TooLarge("matrix power outside 0..64")
        return base**exponent
    if isinstance(exponent, sympy.Rational) and isinstance(base, sympy.Number):
        if base in (0, 1, -1) and isinstance(exponent, sympy.Integer):
            return base**exponent
        if abs(int(exponent.p)).bit_length() > MAX_EXPONENT_BITS:
            raise TooLarge("exponent too large")  # also keeps the size estimate below within a float
        size = _digits(base) * abs(int(exponent.p))
        if isinstance(base, sympy.Rational) and size > MAX_RESULT_DIGITS:
            raise TooLarge("power too large to evaluate exactly")
    elif isinstance(exponent, sympy.Rational) and abs(int(exponent.p)) > 100_000:
        raise TooLarge("exponent too large")
    elif isinstance(exponent, sympy.Number) and not exponent.is_finite:
        raise ParseError("infinite exponent")
    return sympy.Pow(base, exponent)


def bounded_factorial(value: Any) -> Any:
    if isinstance(value, sympy.Integer):
        if int(value) > MAX_FACTORIAL:
            raise TooLarge("factorial too large")
        if int(value) < 0:
            raise ParseError("factorial of a negative integer")
    elif isinstance(value, sympy.Number):
        raise ParseError("factorial of a non-integer number")
    return sympy.factorial(value)


def _multiply(left: Any, right: Any) -> Any:
    if isinstance(left, sympy.MatrixBase) or isinstance(right, sympy.MatrixBase):
        if isinstance(left, sympy.MatrixBase) and isinstance(right, sympy.MatrixBase) and left.cols != right.rows:
            raise ParseError("matrix shapes do not match")
    return left * right


def _scales(left: Any, right: Any) -> bool:
    """A constant times a tuple of scalars: `2(1, 3)`, `\\frac{1}{5}\\langle 3, 4\\rangle`. Only a number (no
    variable: `f(x, y)` may be a function's value) and only round brackets (a tuple, a vector or an open interval,
    each scaled member by member)."""
    return (
        isinstance(left, sympy.Expr)
        and bool(left.is_number)
        and left.is_finite is not False
        and left != 0
        and isinstance(right, Bracketed)
        and (right.opening, right.closing) == ("(", ")")
        and all(isinstance(item, sympy.Expr) and not isinstance(item, sympy.MatrixBase) for item in right.items)
    )


def _scaled_tuple(factor: Any, vector: Bracketed) -> Bracketed:
    return Bracketed("(", ")", tuple(_multiply(factor, item) for item in vector.items))


def _add(left: Any, right: Any) -> Any:
    left_matrix, right_matrix = isinstance(left, sympy.MatrixBase), isinstance(right, sympy.MatrixBase)
    if left_matrix != right_matrix or (left_matrix and left.shape != right.shape):
        raise ParseError("cannot add a matrix and a scalar or matrices of different shapes")
    return left + right


def _divide(left: Any, right: Any) -> Any:
    if isinstance(right, sympy.MatrixBase):
        raise ParseError("division by a matrix")
    if right == 0:
        raise ParseError("division by zero")
    return left / right


# ---------------------------------------------------------------------------------------------- parser

_STARTS_PRIMARY_CMD = {"frac", "dfrac", "tfrac", "cfrac", "sqrt", "overline", "pi", "infty", "inf", "binom",
                       "dbinom", "tbinom", "sum", "prod", "lim", "begin", "emptyset", "varnothing", "log",
                       "ln", "exp"}  # fmt: skip
_RELATION_OPS = {"=", "<", ">", "<=", ">=", "!=", "approx", "in"}
_CLOSERS = {")", "]", "\\}", "}"}


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0
        self.abs_depth = 0
        self.bound_symbols: dict[str, Any] = {}

    # -- helpers
    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def at_op(self, *values: str) -> bool:
        return self.current.kind == "op" and self.current.text in values

    def expect_op(self, value: str) -> None:
        if not self.at_op(value):
            raise ParseError(f"expected {value!r}, found {self.current.text!r}")
        self.advance()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise TooLarge("expression nested too deeply")

    # -- top level
    def parse_answer(self) -> Any:
        groups = [self.parse_group()]
        while self.at_op(";"):
            self.advance()
            if self.current.kind == "end":
                break
            groups.append(self.parse_group())
        if self.current.kind != "end":
            raise ParseError(f"unexpected {self.current.text!r}")
        if len(groups) == 1:
            return groups[0]
        return AnswerList(tuple(Bracketed("(", ")", g.items) if isinstance(g, AnswerList) else g for g in groups))

    def parse_group(self) -> Any:
        items = [self.parse_relation()]
        while self.at_op(",", "sep"):
            while self.at_op(",", "sep"):
                self.advance()
            if self.current.kind == "end" or self.at_op(";"):
                break
            items.append(self.parse_relation())
        return items[0] if len(items) == 1 else AnswerList(tuple(items))

    def parse_relation(self) -> Any:
        parts = [self.parse_ratio()]
        ops: list[str] = []
        while self.current.kind == "op" and self.current.text in _RELATION_OPS:
            ops.append(self.advance().text)
            parts.append(self.parse_ratio())
        return parts[0] if not ops else Relation(tuple(parts), tuple(ops))

    def parse_ratio(self) -> Any:
        parts = [self.parse_set_expression()]
        while self.at_op(":"):
            self.advance()
            parts.append(self.parse_set_expression())
        return parts[0] if len(parts) == 1 else Ratio(tuple(parts))

    def parse_set_expression(self) -> Any:
        left = self.parse_expression()
        while self.at_op("cup", "cap", "setminus"):
            operator = self.advance().text
            right = self.parse_expression()
            left = SetValue(_combine_sets(operator, as_set(left), as_set(right)))
        return left

    # -- expressions: return a sympy object, or a Bracketed/SetValue when the text is a bracket list
    def parse_expression(self) -> Any:
        self.enter()
        try:
            if self.at_op("±"):
                self.advance()
                left: Any = PLUS_MINUS * self._scalar(self.parse_term())
            else:
                left = self.parse_term()
            while self.at_op("+", "-", "±"):
                operator = self.advance().text
                right = self._scalar(self.parse_term())
                left = self._scalar(left)
                if operator == "+":
                    left = _add(left, right)
                elif operator == "-":
                    left = _add(left, -right)
                else:
                    left = left + PLUS_MINUS * right
            return left
        finally:
            self.depth -= 1

    def _scalar(self, value: Any) -> Any:
        if isinstance(value, Bracketed | SetValue | AnswerList):
            raise ParseError("arithmetic on a list, tuple or set")
        return value

    def parse_term(self) -> Any:
        left = self.parse_unary()
        while True:
            if self.at_op("*", "/"):
                operator = self.advance().text
                right = self.parse_unary()
                if operator == "*" and _scales(left, right):
                    left = _scaled_tuple(left, right)
                    continue
                left, right = self._scalar(left), self._scalar(right)
                left = _multiply(left, right) if operator == "*" else _divide(left, right)
            elif self.starts_primary():
                if self.current.kind == "num" and self.tokens[self.index - 1].kind == "num":
                    raise ParseError("two numbers side by side")
                right = self.parse_power()
                if _scales(left, right):
                    left = _scaled_tuple(left, right)  # `\frac{1}{5}\langle 3, 4 \rangle` is `(3/5, 4/5)`
                    continue
                left = _multiply(self._scalar(left), self._scalar(right))
            else:
                return left

    def starts_primary(self) -> bool:
        token = self.current
        if token.kind in ("num", "id"):
            return True
        if token.kind == "cmd":
            return token.text in _STARTS_PRIMARY_CMD or token.text in _FUNCTIONS or token.text in _GREEK
        if token.kind == "op":
            if token.text in ("(", "{", "\\{"):
                return True
            if token.text == "|":
                return self.abs_depth == 0
        return False

    def parse_unary(self) -> Any:
        if self.at_op("-"):
            self.advance()
            return -self._scalar(self.parse_unary())
        if self.at_op("+"):
            self.advance()
            return self._scalar(self.parse_unary())
        return self.parse_power()

    def parse_power(self) -> Any:
        self.enter()
        try:
            base = self.parse_postfix()
            if self.at_op("^"):
                self.advance()
                exponent = self.parse_exponent()
                base = bounded_pow(self._scalar(base), exponent)
                while self.at_op("!"):
                    self.advance()
                    base = bounded_factorial(base)
            return base
        finally:
            self.depth -= 1

    def parse_exponent(self) -> Any:
        if self.at_op("{"):
            return self._scalar(self.parse_group_braces())
        if self.at_op("-", "+"):
            sign = self.advance().text
            value = self.parse_exponent()
            return -value if sign == "-" else value
        return self._scalar(self.parse_power())

    def parse_postfix(self) -> Any:
        value = self.parse_primary()
        while self.at_op("!") or (self.at_op("'")):
            if self.at_op("'"):
                raise ParseError("prime notation")
            self.advance()
            value = bounded_factorial(self._scalar(value))
        return value

    def parse_group_braces(self) -> Any:
        self.expect_op("{")
        value = self.parse_relation_list(closing="}")
        self.expect_op("}")
        return value

    def parse_relation_list(self, closing: str) -> Any:
        items = [self.parse_relation()]
        while self.at_op(",", ";", "sep"):
            self.advance()
            items.append(self.parse_relation())
        if len(items) == 1:
            return items[0]
        return Bracketed("{", "}", tuple(items)) if closing == "}" else AnswerList(tuple(items))

    def parse_primary(self) -> Any:
        token = self.current
        if token.kind == "num":
            self.advance()
            value = sympy.Rational(token.text) if "." in token.text else sympy.Integer(token.text)
            if self.at_op("_"):
                return self.parse_base_subscript(token.text)
            if isinstance(value, sympy.Integer) and self.current.kind == "cmd" and self.current.text == "frac":
                return self.parse_mixed_number(value)
            return value
        if token.kind == "id":
            self.advance()
            return self.parse_identifier(token.text)
        if token.kind == "cmd":
            return self.parse_command()
        if token.kind == "op":
            if token.text in ("(", "["):
                return self.parse_bracket()
            if token.text == "\\{":
                return self.parse_set_literal()
            if token.text == "{":
                value = self.parse_group_braces()
                return value
            if token.text == "|":
                self.advance()
                self.abs_depth += 1
                inner = self._scalar(self.parse_expression())
                self.abs_depth -= 1
                self.expect_op("|")
                return sympy.Abs(inner)
        if token.kind == "word":
            raise ParseError(f"word {token.text!r} in a math answer")
        raise ParseError(f"unexpected {token.text!r}")

    def parse_mixed_number(self, whole: Any) -> Any:
        """`918\\frac{1}{2}` is the mixed number 918 1/2 (a proper fraction right after an integer)."""
        self.advance()
        numerator = self.parse_argument()
        fraction = _divide(numerator, self.parse_argument())
        if isinstance(fraction, sympy.Rational) and 0 < fraction < 1 and isinstance(numerator, sympy.Integer):
            return whole + fraction
        return _multiply(whole, fraction)

    def parse_identifier(self, letter: str) -> Any:
        name = letter
        if self.at_op("_"):
            self.advance()
            name = f"{letter}_{self.raw_argument()}"
        if name == "e":
            return sympy.E
        if name == "i":
            return sympy.I
        if name in self.bound_symbols:
            return self.bound_symbols[name]
        return sympy.Symbol(name)

    def raw_argument(self) -> str:
        """The text of one LaTeX argument (`{...}` or one token), for subscripts and environment names."""
        if self.at_op("{"):
            self.advance()
            parts: list[str] = []
            level = 1
            while True:
                token = self.advance()
                if token.kind == "end":
                    raise ParseError("unclosed brace")
                if token.kind == "op" and token.text == "{":
                    level += 1
                elif token.kind == "op" and token.text == "}":
                    level -= 1
                    if level == 0:
                        return "".join(parts)
                parts.append(token.text)
        token = self.advance()
        if token.kind == "num":
            return self.split_first_char(token)
        if token.kind in ("id", "word", "cmd"):
            return token.text
        raise ParseError("missing subscript")

    def split_first_char(self, token: Token) -> str:
        """LaTeX reads one character as an argument: `\\frac12` is 1/2. Put the rest back as a number."""
        if len(token.text) > 1 and token.text[1] != ".":
            self.index -= 1
            self.tokens[self.index] = Token("num", token.text[1:])
            return token.text[0]
        return token.text

    def parse_base_subscript(self, digits: str) -> Any:
        self.advance()
        base_text = self.raw_argument()
        if not base_text.isdigit() or not 2 <= int(base_text) <= 36 or "." in digits:
            raise ParseError(f"unsupported number base {base_text!r}")
        try:
            return sympy.Integer(int(digits, int(base_text)))
        except ValueError as error:
            raise ParseError(f"{digits} is not a base-{base_text} number") from error

    def parse_argument(self) -> Any:
        """One LaTeX argument as a value: `{...}`, a group in parentheses (`sqrt(2)`, as plain text writes a
        function's argument), or a single token (one digit of a number)."""
        if self.at_op("{"):
            return self._scalar(self.parse_group_braces())
        if self.at_op("("):
            return self._scalar(self.parse_bracket())
        token = self.current
        if token.kind == "num":
            self.advance()
            text = self.split_first_char(token)
            return sympy.Rational(text) if "." in text else sympy.Integer(text)
        if token.kind == "id":
            self.advance()
            return self.parse_identifier(token.text)
        if token.kind == "cmd":
            return self._scalar(self.parse_command())
        raise ParseError("missing argument")

    def parse_command(self) -> Any:
        name = self.advance().text
        if name in ("frac", "dfrac", "tfrac", "cfrac"):
            numerator = self.parse_argument()
            return _divide(numerator, self.parse_argument())
        if name in ("binom", "dbinom", "tbinom"):
            top = self.parse_argument()
            bottom = self.parse_argument()
            if isinstance(top, sympy.Integer) and int(top) > MAX_FACTORIAL:
                raise TooLarge("binomial too large")
            return sympy.binomial(top, bottom)
        if name == "sqrt":
            return self.parse_sqrt()
        if name == "overline":  # a repeating decimal was read before parsing: what is left is a conjugate
            return sympy.conjugate(self._scalar(self.parse_argument()))
        if name == "pi":
            return sympy.pi
        if name in ("infty", "inf"):
            return sympy.oo
        if name in ("emptyset", "varnothing"):
            return SetValue(sympy.EmptySet)
        if name in _GREEK:
            return self.parse_identifier_named(name)
        if name in _FUNCTIONS:
            return self.parse_function(name)
        if name in ("sum", "prod"):
            return self.parse_big_operator(name)
        if name == "lim":
            return self.parse_limit()
        if name == "begin":
            return self.parse_environment()
        raise ParseError(f"unsupported command \\{name}")

    def parse_identifier_named(self, name: str) -> Any:
        if self.at_op("_"):
            self.advance()
            name = f"{name}_{self.raw_argument()}"
        return self.bound_symbols.get(name, sympy.Symbol(name))

    def parse_sqrt(self) -> Any:
        index: Any = sympy.Integer(2)
        if self.at_op("["):
            self.advance()
            index = self._scalar(self.parse_expression())
            self.expect_op("]")
            if not isinstance(index, sympy.Integer) or not 2 <= int(index) <= 1000:
                raise ParseError("root index must be an integer from 2 to 1000")
        radicand = self.parse_argument()
        if isinstance(radicand, sympy.MatrixBase):
            raise ParseError("root of a matrix")
        if int(index) % 2 == 1 and radicand.is_number and radicand.is_negative:
            return -bounded_pow(-radicand, sympy.Rational(1, int(index)))  # real odd root of a negative number
        return bounded_pow(radicand, sympy.Rational(1, int(index)))

    def parse_function(self, name: str) -> Any:
        power: Any = None
        base: Any = None
        if name in ("log", "lg") and self.at_op("_"):
            self.advance()
            base = self.parse_argument()
        if self.at_op("^"):
            self.advance()
            power = self.parse_exponent()
        if power == -1 and name in _INVERSE:
            function, power = _INVERSE[name], None
        else:
            function = _FUNCTIONS[name]
        if name == "lg":
            base = sympy.Integer(10)
        argument = self.parse_function_argument()
        if base is not None:
            value = sympy.log(argument, base)
        else:
            value = function(argument)
        return value if power is None else bounded_pow(value, power)

    def parse_function_argument(self) -> Any:
        if self.at_op("("):
            self.advance()
            value = self._scalar(self.parse_expression())
            self.expect_op(")")
            return value
        if self.at_op("{"):
            return self._scalar(self.parse_group_braces())
        value = self._scalar(self.parse_power())
        while self.current.kind in ("num", "id") or (self.current.kind == "cmd" and self.current.text in _GREEK):
            value = _multiply(value, self._scalar(self.parse_power()))
        return value

    def parse_big_operator(self, name: str) -> Any:
        if not self.at_op("_"):
            raise ParseError(f"\\{name} without limits")
        self.advance()
        self.expect_op("{")
        if self.current.kind != "id":
            raise ParseError(f"\\{name} needs an index variable")
        variable = sympy.Symbol(self.advance().text)
        self.expect_op("=")
        lower = self._scalar(self.parse_expression())
        self.expect_op("}")
        self.expect_op("^")
        upper = self.parse_exponent()
        body = self._scalar(self.parse_term())
        limits = (variable, lower, upper)
        if (
            all(isinstance(bound, sympy.Integer) for bound in (lower, upper))
            and int(upper) - int(lower) > MAX_SUM_TERMS
        ):
            raise TooLarge(f"\\{name} over too many terms")
        operator = sympy.Sum if name == "sum" else sympy.Product
        return operator(body, limits).doit()

    def parse_limit(self) -> Any:
        """`\\lim_{x \\to a} f(x)`, evaluated exactly (two-sided at a finite point), so that a worked limit
        `\\lim_{x \\to 0} \\frac{\\sin x}{x} = 1` is a relation whose sides can be checked; a limit sympy cannot
        evaluate to a value is outside the grammar."""
        self.expect_op("_")
        self.expect_op("{")
        if self.current.kind != "id":
            raise ParseError("\\lim needs a variable")
        variable = sympy.Symbol(self.advance().text)
        if not (self.current.kind == "cmd" and self.current.text in ("to", "rightarrow")):
            raise ParseError("\\lim needs `\\to`")
        self.advance()
        point = self._scalar(self.parse_expression())
        self.expect_op("}")
        body = self._scalar(self.parse_term())
        if not isinstance(point, sympy.Expr) or point.free_symbols or not isinstance(body, sympy.Expr):
            raise ParseError("\\lim needs a constant point and an expression")
        if sympy.count_ops(body) > MAX_LIMIT_OPS:
            raise TooLarge("limit of too large an expression")
        direction = "+" if point in (sympy.oo, -sympy.oo) else "+-"
        try:
            value = sympy.limit(body, variable, point, dir=direction)
        except (ValueError, TypeError, NotImplementedError, ArithmeticError, sympy.PoleError) as error:
            raise ParseError(f"limit not evaluated: {type(error).__name__}") from error
        if not isinstance(value, sympy.Expr) or value.has(sympy.Limit, sympy.AccumBounds, sympy.nan, sympy.zoo):
            raise ParseError("limit not evaluated to a value")
        return value

    def parse_environment(self) -> Any:
        environment = self.raw_argument()
        if environment not in ("pmatrix", "bmatrix", "matrix", "array", "smallmatrix", "Bmatrix", "vmatrix"):
            raise ParseError(f"unsupported environment {environment!r}")
        if environment == "array":
            self.raw_argument()  # column specification
        rows: list[list[Any]] = [[]]
        while True:
            if self.current.kind == "cmd" and self.current.text == "end":
                self.advance()
                self.raw_argument()
                break
            if self.current.kind == "end":
                raise ParseError("unclosed matrix")
            rows[-1].append(self._scalar(self.parse_expression()))
            if sum(len(row) for row in rows) > MAX_MATRIX_ENTRIES:
                raise TooLarge("matrix too large")
            if self.at_op("&"):
                self.advance()
            elif self.at_op("rowsep"):
                self.advance()
                rows.append([])
        rows = [row for row in rows if row]
        if not rows or any(len(row) != len(rows[0]) for row in rows):
            raise ParseError("ragged matrix")
        matrix = sympy.ImmutableMatrix(rows)
        return matrix.det() if environment == "vmatrix" else matrix

    def parse_bracket(self) -> Any:
        opening = self.advance().text
        self.enter()
        try:
            items = [self.parse_relation()]
            while self.at_op(",", ";"):
                self.advance()
                items.append(self.parse_relation())
        finally:
            self.depth -= 1
        if not self.at_op(")", "]"):
            raise ParseError(f"unclosed {opening!r}")
        closing = self.advance().text
        if len(items) == 1 and closing == {"(": ")", "[": "]"}[opening]:
            return items[0]
        return Bracketed(opening, closing, tuple(items))

    def parse_set_literal(self) -> Any:
        self.advance()
        if self.at_op("\\}"):
            self.advance()
            return SetValue(sympy.EmptySet)
        items = [self.parse_relation()]
        while self.at_op(",", ";"):
            self.advance()
            items.append(self.parse_relation())
        self.expect_op("\\}")
        return Bracketed("{", "}", tuple(items))


def parse_answer(text: str) -> Any:
    """Parse one normalised answer into nodes; raises ParseError (or TooLarge) outside the grammar."""
    tokens = tokenize(text)
    if len(tokens) == 1:
        raise ParseError("empty answer")
    return _Parser(tokens).parse_answer()


# ---------------------------------------------------------------------------------------------- sets


def as_set(node: Any) -> Any:
    """A node read as a sympy Set: intervals from brackets, finite sets from set literals."""
    if isinstance(node, SetValue):
        return node.value
    if isinstance(node, Bracketed):
        if node.opening == "{":
            return sympy.FiniteSet(*[_plain(item) for item in node.items])
        if len(node.items) == 2:
            low, high = (_plain(item) for item in node.items)
            if _comparable(low) and _comparable(high) and bool(low < high):
                return sympy.Interval(low, high, node.opening == "(", node.closing == ")")
    raise ParseError("not a set or an interval")


def _plain(node: Any) -> Any:
    if isinstance(node, Scalar):
        return node.expr
    if isinstance(node, Bracketed | SetValue | AnswerList | Relation | Ratio | Text):
        raise ParseError("nested structure where a number was expected")
    return node


def _comparable(value: Any) -> bool:
    return bool(getattr(value, "is_number", False)) and value.is_extended_real is True


def _combine_sets(operator: str, left: Any, right: Any) -> Any:
    if operator == "cup":
        return sympy.Union(left, right)
    if operator == "cap":
        return sympy.Intersection(left, right)
    return sympy.Complement(left, right)


__all__ = [
    "PLUS_MINUS", "AnswerList", "Bracketed", "ParseError", "Ratio", "Relation", "Scalar", "SetValue", "Text",
    "TooLarge", "as_set", "bounded_pow", "parse_answer", "tokenize",
]  # fmt: skip
