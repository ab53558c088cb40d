"""Misbehaving verifiers for the pool tests; a module, so worker processes can import them by reference."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from typing import Any

from verifiers.verdict import Verdict


def echo(completion: str, problem: Mapping[str, Any]) -> Verdict:
    correct = completion == str(problem.get("answer"))
    return Verdict(correct, float(correct), completion, f"pid {os.getpid()}", "echo", "1")


def sleepy(completion: str, problem: Mapping[str, Any]) -> Verdict:
    time.sleep(float(completion))
    return Verdict(True, 1.0, completion, f"slept {completion}s", "sleepy", "1")


def suicidal(completion: str, problem: Mapping[str, Any]) -> Verdict:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def greedy(completion: str, problem: Mapping[str, Any]) -> Verdict:
    hoard = bytearray(4 * 1024**3)  # past the pool's address-space limit
    return Verdict(True, 1.0, str(len(hoard)), "allocated", "greedy", "1")


def broken(completion: str, problem: Mapping[str, Any]) -> Verdict:
    raise ZeroDivisionError("bug in a verifier")
