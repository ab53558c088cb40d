"""Verifiers: pure functions `verify(completion, problem) -> Verdict`, one module each, and a registry.

This package imports nothing else of the project.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from verifiers import code as code_verifier
from verifiers import countdown as countdown_verifier
from verifiers import format as format_verifier
from verifiers import math as math_verifier
from verifiers import reasoning_gym as reasoning_gym_verifier
from verifiers.verdict import Verdict

VerifyFn = Callable[[str, Mapping[str, Any]], Verdict]

VERIFIERS: dict[str, VerifyFn] = {
    "math": math_verifier.verify,
    "math_expressions": math_verifier.verify_expressions_accepted,
    "code": code_verifier.verify,
    "countdown": countdown_verifier.verify,
    "reasoning_gym": reasoning_gym_verifier.verify,
    "format": format_verifier.verify,
}
VERSIONS: dict[str, str] = {
    "math": math_verifier.VERSION,
    "math_expressions": math_verifier.VERSION,
    "code": code_verifier.VERSION,
    "countdown": countdown_verifier.VERSION,
    "reasoning_gym": reasoning_gym_verifier.VERSION,
    "format": format_verifier.VERSION,
}


class UnknownVerifierError(KeyError):
    def __init__(self, name: str, where: str = "") -> None:
        known = ", ".join(sorted(VERIFIERS))
        location = f" ({where})" if where else ""
        super().__init__(f"unknown verifier {name!r}{location}; known verifiers: {known}")

    def __str__(self) -> str:
        return str(self.args[0])


def get_verifier(name: str, where: str = "") -> VerifyFn:
    try:
        return VERIFIERS[name]
    except KeyError:
        raise UnknownVerifierError(name, where) from None


__all__ = ["VERIFIERS", "VERSIONS", "UnknownVerifierError", "Verdict", "VerifyFn", "get_verifier"]
