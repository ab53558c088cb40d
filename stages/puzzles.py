"""Puzzle problem sources: the countdown generator and reasoning-gym tasks, as problems tables.

Both return tables with `stages.problems.PROBLEMS_SCHEMA`, split into `seed` (labelled: `solution` is
the answer in `<answer>` tags), `train` and `test`, with no question in two splits. Countdown problems
have domain `countdown` (metadata: numbers, target, use_all); reasoning-gym problems have domain
`reasoning_gym` (metadata: task, config, seed, size, index and the question's SHA-1, which is what
`verifiers.reasoning_gym` needs to regenerate and score the entry).

What it does not do: load anything from disk or the network; reasoning-gym generates offline.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import pyarrow as pa

from configs import CountdownConfig, ProblemsConfig, ReasoningGymConfig
from stages.problems import PROBLEMS_SCHEMA, ProblemsError

COUNTDOWN_ATTEMPTS_PER_PROBLEM = 200  # draws before concluding the config cannot give enough puzzles
_SPLIT_ORDER = ("test", "train", "seed")  # held-out first, so a collision always costs a training split


def generate_countdown(config: CountdownConfig, seed: int) -> pa.Table:
    """Distinct countdown puzzles, each with one known solution; no (numbers, target) in two splits."""
    rng = random.Random(seed)
    wanted = {"test": config.n_test, "train": config.n_train, "seed": config.n_seed}
    seen: set[tuple[tuple[int, ...], int]] = set()
    rows: list[dict[str, Any]] = []
    for split in _SPLIT_ORDER:
        made = 0
        attempts = 0
        while made < wanted[split]:
            attempts += 1
            if attempts > COUNTDOWN_ATTEMPTS_PER_PROBLEM * max(wanted[split], 1):
                raise ProblemsError(
                    f"problems.countdown: only {made} distinct puzzles for split {split!r} (wanted "
                    f"{wanted[split]}); widen the target range, raise max_number or n_numbers, or ask for fewer"
                )
            numbers = [rng.randint(1, config.max_number) for _ in range(config.n_numbers)]
            found = _random_solution(numbers, config, rng)
            if found is None:
                continue
            expression, target = found
            key = (tuple(sorted(numbers)), target)
            if key in seen:
                continue
            seen.add(key)
            made += 1
            rows.append(_countdown_row(numbers, target, expression, config.use_all, split))
    return pa.Table.from_pylist(rows, schema=PROBLEMS_SCHEMA)


COUNTDOWN_ANSWER_INSTRUCTION = (
    "Think step by step inside <think> </think> tags, then give only the expression inside "
    "<answer> </answer> tags, for example <answer>(1 + 2) * 3</answer>."
)


def countdown_prompt(numbers: list[int], target: int, use_all: bool) -> str:
    rule = "each number exactly once" if use_all else "each number at most once"
    return (
        f"Using the numbers {numbers}, write an arithmetic expression that equals {target}. "
        f"You may use +, -, *, / and parentheses, and {rule}. {COUNTDOWN_ANSWER_INSTRUCTION}"
    )


def answer_instructions(config: ProblemsConfig) -> dict[str, str | None]:
    """The run's source -> the instruction on how to answer that its prompts end with; None when the source
    adds none (arithmetic prompts are bare expressions, a dataset's prompts are used as they are)."""
    if config.source == "countdown":
        return {"countdown": COUNTDOWN_ANSWER_INSTRUCTION}
    if config.source == "reasoning_gym":
        assert config.reasoning_gym is not None  # ProblemsConfig requires the section for this source
        return {"reasoning_gym": config.reasoning_gym.answer_instruction or None}
    return {config.source: None}


def reasoning_gym_problems(config: ReasoningGymConfig, seed: int) -> pa.Table:
    """`n_seed`/`n_train`/`n_test` problems per task; an unknown task name is an error listing the known ones."""
    import reasoning_gym
    from reasoning_gym.factory import DATASETS

    unknown = [task for task in config.tasks if task not in DATASETS]
    if unknown:
        raise ProblemsError(
            f"problems.reasoning_gym.tasks: unknown task(s) {', '.join(unknown)}; known: {', '.join(sorted(DATASETS))}"
        )
    wanted = {"test": config.n_test, "train": config.n_train, "seed": config.n_seed}
    rows: list[dict[str, Any]] = []
    for task in config.tasks:
        task_config = dict(config.task_config.get(task, {}))
        seen: set[str] = set()
        for split in _SPLIT_ORDER:
            if wanted[split] == 0:
                continue
            split_seed = _derived_seed(seed, task, split)
            size = 2 * wanted[split] + 10  # headroom for questions already taken by another split
            try:
                dataset = reasoning_gym.create_dataset(task, seed=split_seed, size=size, **task_config)
            except (TypeError, ValueError, AssertionError) as error:
                raise ProblemsError(f"problems.reasoning_gym.task_config.{task}: {error}") from error
            made = 0
            for index, entry in _entries(dataset, size):
                if made == wanted[split]:
                    break
                question = entry["question"]
                if question in seen:
                    continue
                seen.add(question)
                made += 1
                rows.append(_reasoning_gym_row(task, task_config, split_seed, size, index, entry, split, config))
            if made < wanted[split]:
                raise ProblemsError(
                    f"problems.reasoning_gym: task {task!r} gave only {made} distinct questions for split "
                    f"{split!r} (wanted {wanted[split]}); ask for fewer or widen its task_config"
                )
    return pa.Table.from_pylist(rows, schema=PROBLEMS_SCHEMA)


def _entries(dataset: Any, size: int) -> Iterator[tuple[int, dict[str, Any]]]:
    for index in range(size):
        yield index, dataset[index]


def _reasoning_gym_row(
    task: str,
    task_config: dict[str, Any],
    split_seed: int,
    size: int,
    index: int,
    entry: dict[str, Any],
    split: str,
    config: ReasoningGymConfig,
) -> dict[str, Any]:
    question = entry["question"]
    answer = None if entry.get("answer") is None else str(entry["answer"])
    prompt = question if not config.answer_instruction else f"{question}\n\n{config.answer_instruction}"
    metadata = {
        "task": task,
        "config": task_config,
        "seed": split_seed,
        "size": size,
        "index": index,
        "question_sha1": hashlib.sha1(question.encode()).hexdigest(),
    }
    return {
        "problem_id": "rg-" + hashlib.sha1(f"{task}\n{question}".encode()).hexdigest()[:16],
        "source": f"reasoning_gym/{task}",
        "domain": "reasoning_gym",
        "prompt": prompt,
        "answer": answer,
        "solution": None if answer is None else f"<answer>{answer}</answer>",
        "tests": None,
        "metadata": json.dumps(metadata),
        "split": split,
    }


def _countdown_row(numbers: list[int], target: int, expression: str, use_all: bool, split: str) -> dict[str, Any]:
    identity = f"{sorted(numbers)}->{target}:{use_all}"
    return {
        "problem_id": "countdown-" + hashlib.sha1(identity.encode()).hexdigest()[:12],
        "source": "countdown",
        "domain": "countdown",
        "prompt": countdown_prompt(numbers, target, use_all),
        "answer": expression,
        "solution": f"<answer>{expression}</answer>",
        "tests": None,
        "metadata": json.dumps({"numbers": numbers, "target": target, "use_all": use_all}),
        "split": split,
    }


def _random_solution(numbers: list[int], config: CountdownConfig, rng: random.Random) -> tuple[str, int] | None:
    """Combine the numbers (all, or a random subset of at least two) with random operators; keep the
    expression when its value is a whole number in the target range."""
    count = len(numbers) if config.use_all else rng.randint(2, len(numbers))
    pool: list[tuple[str, Fraction]] = [(str(number), Fraction(number)) for number in rng.sample(numbers, count)]
    while len(pool) > 1:
        (left, left_value), (right, right_value) = (
            pool.pop(rng.randrange(len(pool))),
            pool.pop(rng.randrange(len(pool))),
        )
        operator = rng.choice("+-*/")
        if operator == "/" and right_value == 0:
            return None
        value = {
            "+": left_value + right_value,
            "-": left_value - right_value,
            "*": left_value * right_value,
            "/": left_value / right_value if right_value else left_value,
        }[operator]
        pool.append((f"({left} {operator} {right})", value))
    expression, value = pool[0]
    if value.denominator != 1 or not config.min_target <= value <= config.max_target:
        return None
    return expression[1:-1] if expression.startswith("(") else expression, int(value)


def _derived_seed(seed: int, task: str, split: str) -> int:
    return int(hashlib.sha1(f"{seed}/{task}/{split}".encode()).hexdigest()[:8], 16)
