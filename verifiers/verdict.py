"""The result of judging one trace. Expected failures are data, never exceptions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """`correct` is None when the verifier cannot judge (e.g. the gold answer does not parse).

    `reward` is the scalar used for training: 1.0/0.0 for binary verifiers, None when `correct` is None,
    which is also what TRL reward functions return for "cannot judge".
    """

    correct: bool | None
    reward: float | None
    extracted: str | None
    reason: str
    verifier: str
    verifier_version: str
    timed_out: bool = False
