"""Numbers written in English words, found in text with their positions.

What it does: reads runs of number words as one value each: integers (`seventeen`, `twenty-one`, `one hundred
and five`, `two million`), signed ones (`negative four`, `minus four`), fractions (`two thirds`, `a half`,
`seven-eighths`) and mixed numbers (`one and a half`, `two and three quarters`). Values come back as text the
math parser reads (`17`, `-4`, `\\frac{11}{4}`). The words of one number are separated by spaces or hyphens
only, so `seventeen, eighteen` are two numbers. `one` in "one of them" or "the one" is the pronoun, no number.

What it does not do: decide which number in a response is its answer (`verifiers.math_extract` does), read
ordinals (`the third`) or decimals in words (`zero point five`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

NUMBER_WORDS = {
    word: value
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
        " seventeen eighteen nineteen".split()
    )
} | {word: 10 * tens for tens, word in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
SCALE_WORDS = {"thousand": 1000, "million": 10**6, "billion": 10**9}
# "two thirds": the word after a number that makes it a fraction, singular or plural
DENOMINATOR_WORDS = {
    word + ending: value
    for value, word in [
        (2, "half"),
        (3, "third"),
        (4, "quarter"),
        (4, "fourth"),
        (5, "fifth"),
        (6, "sixth"),
        (7, "seventh"),
        (8, "eighth"),
        (9, "ninth"),
        (10, "tenth"),
    ]  # fmt: skip
    for ending in ("", "s")
} | {"halves": 2}
_SIGN_WORDS = {"negative", "minus"}
_ARTICLES = {"a", "an"}
_WORD = re.compile(r"[A-Za-z]+")
_JOINER = re.compile(r"[\s-]*")  # what may stand between two words of one number


@dataclass(frozen=True)
class WordNumber:
    start: int  # position in the text of its first word
    end: int  # position after its last word
    value: str  # as the parser reads it: `17`, `-4`, `\\frac{2}{3}`
    lone_one: bool  # the bare word `one`, which is as often a pronoun ("one of them") as a number


def word_numbers(text: str) -> list[WordNumber]:
    """Every number written in words in `text`, in order."""
    reader = _Reader(text)
    found: list[WordNumber] = []
    index = 0
    while index < len(reader.words):
        parsed = reader.number_at(index)
        if parsed is None:
            index += 1
            continue
        value, after = parsed
        lone_one = after == index + 1 and reader.words[index] == "one"
        if lone_one and (reader.words[index - 1 : index] in (["the"], ["each"], ["every"], ["any"], ["no"])
                         or reader.words[after : after + 1] == ["of"]):  # fmt: skip
            index = after
            continue  # "one of them", "the one": the pronoun
        start, end = reader.tokens[index].start(), reader.tokens[after - 1].end()
        found.append(WordNumber(start, end, _as_text(value), lone_one))
        index = after
    return found


def number_in_words(text: str) -> str | None:
    """The first number written in words in `text`, or None."""
    numbers = word_numbers(text)
    return numbers[0].value if numbers else None


def whole_number_in_words(text: str) -> str | None:
    """The value of `text` when all of it is one number in words (`Four`, `two thirds`), else None."""
    numbers = word_numbers(text)
    if len(numbers) != 1 or text[: numbers[0].start].strip() or text[numbers[0].end :].strip(" .!"):
        return None
    return numbers[0].value


class _Reader:
    """The words of a text, and the numbers that start at each."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = list(_WORD.finditer(text))
        self.words = [token.group().lower() for token in self.tokens]

    def joined(self, at: int) -> bool:
        """Whether word `at` exists and directly follows word `at - 1` (only spaces or hyphens between)."""
        if not 0 < at < len(self.words):
            return False
        return _JOINER.fullmatch(self.text[self.tokens[at - 1].end() : self.tokens[at].start()]) is not None

    def number_at(self, index: int) -> tuple[Fraction, int] | None:
        """The number whose words start at word `index` and the index after its last word, or None."""
        if self.words[index] in _SIGN_WORDS:
            parsed = self.unsigned_at(index + 1) if self.joined(index + 1) else None
            return None if parsed is None else (-parsed[0], parsed[1])
        return self.unsigned_at(index)

    def unsigned_at(self, index: int) -> tuple[Fraction, int] | None:
        words = self.words
        if words[index] == "half" and words[index + 1 : index + 3] in (["a", "dozen"], ["dozen"]):
            if self.joined(index + 1) and self.joined(index + 2 if words[index + 1] == "a" else index + 1):
                return Fraction(6), index + (3 if words[index + 1] == "a" else 2)  # "half a dozen"
        if words[index] in _ARTICLES:
            if self.joined(index + 1) and words[index + 1] == "dozen":
                return Fraction(12), index + 2  # "a dozen"
            if self.joined(index + 1) and words[index + 1] in DENOMINATOR_WORDS:
                return Fraction(1, DENOMINATOR_WORDS[words[index + 1]]), index + 2  # "a third"
            return None
        whole = self.whole_at(index)
        if whole is None:
            return None
        value, at = whole
        if self.joined(at) and words[at] in DENOMINATOR_WORDS and value:
            return Fraction(value, DENOMINATOR_WORDS[words[at]]), at + 1  # "two thirds"
        if self.joined(at) and words[at] == "and" and self.joined(at + 1):
            part = self.unsigned_at(at + 1)
            if part is not None and 0 < part[0] < 1:
                return value + part[0], part[1]  # "one and a half", "two and three quarters"
        return Fraction(value), at

    def whole_at(self, index: int) -> tuple[int, int] | None:
        words = self.words
        if words[index] not in NUMBER_WORDS:
            return None
        total, current, at = 0, 0, index
        while at < len(words) and (at == index or self.joined(at)):
            word = words[at]
            if word in NUMBER_WORDS:
                current += NUMBER_WORDS[word]
            elif word == "hundred":
                current = max(current, 1) * 100
            elif word == "dozen":
                current = max(current, 1) * 12  # "two dozen"
            elif word in SCALE_WORDS:
                total, current = total + max(current, 1) * SCALE_WORDS[word], 0
            elif word == "and" and words[at - 1] in {"hundred", *SCALE_WORDS} and self.joined(at + 1) and (
                words[at + 1] in NUMBER_WORDS
            ):
                pass  # "one hundred and five"; "two and three quarters" is a mixed number, not 5/4
            else:
                break
            at += 1
        return total + current, at


def _as_text(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


__all__ = [
    "DENOMINATOR_WORDS", "NUMBER_WORDS", "WordNumber", "number_in_words", "whole_number_in_words", "word_numbers",
]  # fmt: skip
