"""Format reward: reasoning in one `<think>...</think>` block at the start, then a non-empty answer.

`format_reward(completion)` is the reward component a config can weight (1.0 when the structure holds,
else 0.0); `verify` returns the same judgement as a `Verdict` with the reason. Accepted:

    <think>reasoning</think> answer text
    <think>reasoning</think><answer>42</answer>

Leading whitespace is allowed; the reasoning and the answer must not be empty; a second `<think>` or
`</think>`, or more than one `<answer>` block (or an unclosed one), is a format error.

What it does not do: judge whether the answer is right; that is the domain verifier's job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from verifiers.verdict import Verdict

NAME = "format"
VERSION = "0.1.0"

_STRUCTURE = re.compile(r"\A\s*<think>(?P<reasoning>.*?)</think>(?P<answer>.*)\Z", re.DOTALL)
_ANSWER_BLOCK = re.compile(r"\A\s*<answer>(?P<inner>.*?)</answer>\s*\Z", re.DOTALL)


def format_problem(completion: str) -> str | None:
    """None when the completion has the expected structure, else what is wrong with it."""
    match = _STRUCTURE.match(completion)
    if match is None:
        return "does not start with a <think>...</think> block"
    reasoning, answer = match.group("reasoning"), match.group("answer")
    if "<think>" in reasoning:
        return "nested <think> tag"
    if not reasoning.strip():
        return "empty <think> block"
    if "<think>" in answer or "</think>" in answer:
        return "more than one <think> block"
    if not answer.strip():
        return "no answer after </think>"
    if answer.count("<answer>") > 1 or answer.count("</answer>") > 1:
        return "more than one <answer> block"
    if "<answer>" in answer or "</answer>" in answer:
        block = _ANSWER_BLOCK.match(answer)
        if block is None:
            return "text outside the <answer> block, or an unclosed <answer> tag"
        if not block.group("inner").strip():
            return "empty <answer> block"
    return None


def format_reward(completion: str) -> float:
    return 1.0 if format_problem(completion) is None else 0.0


def verify(completion: str, problem: Mapping[str, Any]) -> Verdict:
    problem_text = format_problem(completion)
    if problem_text is None:
        return Verdict(True, 1.0, None, "<think> block followed by an answer", NAME, VERSION)
    return Verdict(False, 0.0, None, problem_text, NAME, VERSION)
