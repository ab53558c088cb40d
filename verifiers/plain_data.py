"""Plain data across a process boundary: exact builtin values as JSON text, and back, nothing else.

`encode` accepts only None, bool, int, float, complex, str, bytes, list, tuple, dict, set and frozenset
(exact types: a subclass of int, a custom `__eq__` or any other object is refused with `NotPlainData`),
bounded in depth and size. `decode` rebuilds exact builtin values from that text and refuses anything
else, so a decoded value carries no behaviour of the process that produced it: comparing it runs only
the builtins' own `__eq__`.

Encoding: None, booleans, ints, floats (NaN and infinities as JSON's extensions) and strings are JSON's
own; a list is a JSON array; every other type is a one-key object: {"tuple": [...]}, {"set": [...]},
{"frozenset": [...]}, {"dict": [[key, value], ...]}, {"bytes": "<hex>"}, {"complex": [re, im]}.

This module is self-contained (standard library only): the code verifier sends its source into the
sandbox as part of a harness, so it must not import anything of the project.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64
MAX_ITEMS = 100_000


class NotPlainData(ValueError):
    """A value (or text) that is not plain data of the accepted types and sizes."""


def encode(value: Any) -> str:
    """The JSON text of `value`; raises NotPlainData for any other type, deeper nesting or more items."""
    budget = [MAX_ITEMS]
    return json.dumps(_to_json(value, 0, budget), allow_nan=True)


def decode(text: str) -> Any:
    """The value encoded in `text`, with exact builtin types; raises NotPlainData for anything else."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError, MemoryError) as error:
        raise NotPlainData(f"not readable as data ({type(error).__name__})") from None
    return _from_json(raw, 0, [MAX_ITEMS])


def _spend(depth: int, budget: list[int]) -> None:
    """One more item at `depth`: refuse values past the item budget or the nesting limit."""
    budget[0] -= 1
    if budget[0] < 0:
        raise NotPlainData(f"more than {MAX_ITEMS} items")
    if depth > MAX_DEPTH:
        raise NotPlainData(f"nested deeper than {MAX_DEPTH}")


def _to_json(value: Any, depth: int, budget: list[int]) -> Any:
    _spend(depth, budget)
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is float:
        return value
    if kind is int:
        try:
            str(value)  # ints past the interpreter's digit limit cannot cross
        except ValueError:
            raise NotPlainData("an integer too large to write out") from None
        return value
    if kind is list:
        return [_to_json(item, depth + 1, budget) for item in value]
    if kind is tuple:
        return {"tuple": [_to_json(item, depth + 1, budget) for item in value]}
    if kind is set or kind is frozenset:
        return {kind.__name__: [_to_json(item, depth + 1, budget) for item in value]}
    if kind is dict:
        return {"dict": [[_to_json(k, depth + 1, budget), _to_json(v, depth + 1, budget)] for k, v in value.items()]}
    if kind is bytes:
        return {"bytes": value.hex()}
    if kind is complex:
        return {"complex": [value.real, value.imag]}
    raise NotPlainData(f"a value of type {kind.__name__!r}, not plain data")


def _from_json(raw: Any, depth: int, budget: list[int]) -> Any:
    _spend(depth, budget)
    kind = type(raw)
    if raw is None or kind is bool or kind is str or kind is float or kind is int:
        return raw
    if kind is list:
        return [_from_json(item, depth + 1, budget) for item in raw]
    if kind is not dict or len(raw) != 1:
        raise NotPlainData("an object that is not a tagged value")
    ((tag, body),) = raw.items()
    if tag == "bytes" and type(body) is str:
        try:
            return bytes.fromhex(body)
        except ValueError:
            raise NotPlainData("bytes that are not hex") from None
    if type(body) is not list:
        raise NotPlainData(f"tag {tag!r} without a list")
    if tag == "complex" and len(body) == 2 and all(type(part) in (int, float) for part in body):
        return complex(body[0], body[1])
    items = [_from_json(item, depth + 1, budget) for item in body]
    try:
        if tag == "tuple":
            return tuple(items)
        if tag == "set":
            return set(items)
        if tag == "frozenset":
            return frozenset(items)
        if tag == "dict" and all(type(pair) is list and len(pair) == 2 for pair in items):
            return {key: value for key, value in items}
    except TypeError:  # an unhashable element or key
        raise NotPlainData(f"unhashable item in a {tag}") from None
    raise NotPlainData(f"unknown tag {tag!r}")
