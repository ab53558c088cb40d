"""Adapter for the `reasoning-gym` package: any of its procedural tasks, scored by its own checker.

A problem made by `stages.puzzles.reasoning_gym_problems` has domain `reasoning_gym` and `metadata`
(JSON) naming its task, dataset config, seed, size and index, plus the SHA-1 of its question. The verifier
regenerates that entry (datasets are cached per process), checks the question is the same (a different
package version may generate different items: then it cannot judge), extracts the last
`<answer>...</answer>` of the completion and calls the task's `score_answer`. `reward` is that score in
[0, 1] (some tasks give partial credit); `correct` means a full score.

Some tasks' checkers `eval` the answer text or parse it with sympy (which evaluates it). A task whose
checker source mentions eval/exec/sympy is scored in the sandbox (`verifiers.sandbox`), in a fresh
process that imports reasoning-gym (about a second per call); every other task is scored in-process.
The sandboxed score is read from a marker line with a per-call nonce, so printed text cannot pose as
it, though an answer that inspects the scoring process's memory could.

What it does not do: reasoning-gym's curricula or composite weighting; the package is imported on first
use only, so importing `verifiers` stays fast.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import re
import secrets
import sys
from collections.abc import Mapping
from typing import Any

from verifiers.sandbox import SandboxLimits, SandboxUnavailableError, run_python
from verifiers.verdict import Verdict

NAME = "reasoning_gym"
VERSION = "0.1.0"

FULL_SCORE = 1.0 - 1e-9
_UNSAFE_CHECKER = re.compile(r"\beval\(|\bexec\(|\bsympy\b")
ALWAYS_SANDBOXED = frozenset({"composite"})  # delegates scoring to other tasks' checkers
SANDBOX_LIMITS = SandboxLimits(wall_s=15.0, cpu_s=15.0, memory_mb=1024, max_output_bytes=1 << 16)  # import: ~1 s

_SANDBOX_SCORER = r"""
import json, sys
request = json.loads(sys.stdin.read())
import reasoning_gym
dataset = reasoning_gym.create_dataset(request["task"], seed=request["seed"], size=request["size"], **request["config"])
entry = dataset[request["index"]]
score = float(dataset.score_answer(request["answer"], entry))
sys.stdout.flush()
print("\n" + request["nonce"] + " " + json.dumps(score))
"""


class MetadataError(ValueError):
    """A problem's metadata that does not describe a reasoning-gym entry."""


def verify(completion: str, problem: Mapping[str, Any]) -> Verdict:
    try:
        spec = entry_spec(problem)
        dataset = dataset_for(spec["task"], json.dumps(spec["config"], sort_keys=True), spec["seed"], spec["size"])
        entry = dataset[spec["index"]]
    except MetadataError as error:
        return _verdict(None, None, None, f"cannot judge: field 'metadata': {error}")
    except Exception as error:  # reasoning-gym raises assorted types for bad configs
        return _verdict(None, None, None, f"cannot judge: reasoning-gym could not regenerate the entry: {error!r}")
    if hashlib.sha1(entry["question"].encode()).hexdigest() != spec["question_sha1"]:
        return _verdict(None, None, None, "cannot judge: reasoning-gym generated a different question (version?)")
    answer = extract_answer(completion)
    if answer is None:
        return _verdict(False, 0.0, None, "no <answer>...</answer> in completion")
    if checker_is_unsafe(spec["task"]):
        try:
            score, problem_text = _score_in_sandbox(spec, answer)
        except SandboxUnavailableError as error:
            return _verdict(None, None, answer, f"cannot judge: {error}")
    else:
        score, problem_text = _score_in_process(dataset, entry, answer)
    if score is None:
        return _verdict(False, 0.0, answer, problem_text)
    score = min(1.0, max(0.0, score))
    if score >= FULL_SCORE:
        return _verdict(True, 1.0, answer, f"{spec['task']}: full score")
    return _verdict(False, score, answer, f"{spec['task']}: score {score:.3g} (expected {_preview(entry['answer'])})")


def entry_spec(problem: Mapping[str, Any]) -> dict[str, Any]:
    raw = problem.get("metadata")
    try:
        spec = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as error:
        raise MetadataError(f"not valid JSON ({error})") from None
    if not isinstance(spec, Mapping):
        raise MetadataError("missing, or not a JSON object")
    for key, kind in (("task", str), ("seed", int), ("size", int), ("index", int), ("question_sha1", str)):
        if not isinstance(spec.get(key), kind):
            raise MetadataError(f"'{key}' must be a {kind.__name__}, got {spec.get(key)!r}")
    if not isinstance(spec.get("config", {}), Mapping):
        raise MetadataError("'config' must be an object")
    if not 0 <= spec["index"] < spec["size"]:
        raise MetadataError(f"'index' {spec['index']} is outside 0..{spec['size'] - 1}")
    return {**spec, "config": dict(spec.get("config", {}))}


def extract_answer(completion: str) -> str | None:
    from reasoning_gym.utils import extract_answer as extract_tagged

    return extract_tagged(completion)


def task_names() -> list[str]:
    from reasoning_gym.factory import DATASETS

    return sorted(DATASETS)


@functools.lru_cache(maxsize=256)
def dataset_for(task: str, config_json: str, seed: int, size: int) -> Any:
    import reasoning_gym

    if task not in task_names():
        raise MetadataError(f"unknown reasoning-gym task {task!r}; known: {', '.join(task_names())}")
    return reasoning_gym.create_dataset(task, seed=seed, size=size, **json.loads(config_json))


@functools.cache
def checker_is_unsafe(task: str) -> bool:
    """True when the task's dataset classes' source mentions eval, exec or sympy (conservative)."""
    if task in ALWAYS_SANDBOXED:
        return True
    from reasoning_gym.dataset import ProceduralDataset
    from reasoning_gym.factory import DATASETS

    dataset_class = DATASETS[task][0]
    for cls in dataset_class.__mro__:
        if cls is ProceduralDataset or not issubclass(cls, ProceduralDataset):
            continue
        if _UNSAFE_CHECKER.search(inspect.getsource(sys.modules[cls.__module__])):
            return True
    return False


def _score_in_process(dataset: Any, entry: Mapping[str, Any], answer: str) -> tuple[float | None, str]:
    try:
        return float(dataset.score_answer(answer, entry)), ""
    except Exception as error:  # a checker failing on odd text means the answer is not acceptable
        return None, f"checker raised {type(error).__name__}: {str(error)[:200]}"


def _score_in_sandbox(spec: Mapping[str, Any], answer: str) -> tuple[float | None, str]:
    nonce = secrets.token_hex(16)
    request = {key: spec[key] for key in ("task", "seed", "size", "index", "config")}
    request.update(answer=answer, nonce=nonce)
    result = run_python(_SANDBOX_SCORER, json.dumps(request), SANDBOX_LIMITS)
    match = re.search(re.escape(nonce) + r" (\S+)", result.stdout)
    if result.success and match is not None:
        try:
            return float(json.loads(match.group(1))), ""
        except (ValueError, TypeError):
            pass
    return None, f"sandboxed checker failed: {result.error or 'no score printed'}"


def _preview(text: Any, limit: int = 60) -> str:
    shown = str(text)
    return repr(shown if len(shown) <= limit else shown[:limit] + "...")


def _verdict(correct: bool | None, reward: float | None, extracted: str | None, reason: str) -> Verdict:
    return Verdict(correct, reward, extracted, reason, NAME, VERSION)
