from __future__ import annotations

import json
from collections import Counter

import pytest
from pydantic import ValidationError

from configs import CountdownConfig, ProblemsConfig, ReasoningGymConfig
from stages.problems import PROBLEMS_SCHEMA, ProblemsError, validate_problems
from stages.puzzles import generate_countdown, reasoning_gym_problems
from verifiers import VERIFIERS


def test_countdown_pool_is_solvable_distinct_and_split() -> None:
    config = CountdownConfig(n_seed=20, n_train=100, n_test=30)
    table = generate_countdown(config, seed=3)
    assert table.schema == PROBLEMS_SCHEMA
    validate_problems(table, list(VERIFIERS), "countdown")
    rows = table.to_pylist()
    assert Counter(row["split"] for row in rows) == {"seed": 20, "train": 100, "test": 30}
    keys = [(tuple(sorted(json.loads(r["metadata"])["numbers"])), json.loads(r["metadata"])["target"]) for r in rows]
    assert len(set(keys)) == len(keys)
    for row in rows:
        metadata = json.loads(row["metadata"])
        assert len(metadata["numbers"]) == 4 and all(1 <= n <= 99 for n in metadata["numbers"])
        assert 10 <= metadata["target"] <= 100
        assert str(metadata["numbers"]) in row["prompt"] and str(metadata["target"]) in row["prompt"]
        verdict = VERIFIERS["countdown"](row["solution"], row)
        assert verdict.correct is True, (row, verdict.reason)
    assert generate_countdown(config, seed=3) == table
    assert generate_countdown(config, seed=4) != table


def test_countdown_use_all_solutions_use_every_number() -> None:
    table = generate_countdown(CountdownConfig(n_seed=0, n_train=30, n_test=5, use_all=True, n_numbers=3), seed=0)
    for row in table.to_pylist():
        assert json.loads(row["metadata"])["use_all"] is True
        assert VERIFIERS["countdown"](row["solution"], row).correct is True


def test_countdown_impossible_request_is_a_clear_error() -> None:
    config = CountdownConfig(n_numbers=2, max_number=3, min_target=1, max_target=2, n_seed=0, n_train=50, n_test=1)
    with pytest.raises(ProblemsError, match="only .* distinct puzzles for split 'train'"):
        generate_countdown(config, seed=0)


def test_countdown_config_checks_target_range() -> None:
    with pytest.raises(ValidationError, match="min_target"):
        CountdownConfig(min_target=50, max_target=10)


def test_reasoning_gym_source() -> None:
    config = ReasoningGymConfig(tasks=["leg_counting", "spell_backward"], n_seed=3, n_train=12, n_test=5)
    table = reasoning_gym_problems(config, seed=1)
    assert table.schema == PROBLEMS_SCHEMA
    validate_problems(table, list(VERIFIERS), "reasoning_gym")
    rows = table.to_pylist()
    assert Counter((row["source"], row["split"]) for row in rows) == {
        (f"reasoning_gym/{task}", split): n
        for task in ("leg_counting", "spell_backward")
        for split, n in (("seed", 3), ("train", 12), ("test", 5))
    }
    prompts = [row["prompt"] for row in rows]
    assert len(set(prompts)) == len(prompts)
    assert all(prompt.endswith("inside <answer> </answer> tags.") for prompt in prompts)
    for row in rows:
        verdict = VERIFIERS["reasoning_gym"](row["solution"], row)
        assert verdict.correct is True, verdict.reason
    assert reasoning_gym_problems(config, seed=1) == table


def test_reasoning_gym_task_config_is_passed_through() -> None:
    config = ReasoningGymConfig(
        tasks=["spell_backward"],
        task_config={"spell_backward": {"min_word_len": 9, "max_word_len": 9}},
        n_train=5,
        n_test=2,
        answer_instruction=None,
    )
    rows = reasoning_gym_problems(config, seed=0).to_pylist()
    assert all(len(row["answer"]) == 9 for row in rows)
    assert all("<answer>" not in row["prompt"] for row in rows)


def test_reasoning_gym_errors_name_the_field() -> None:
    with pytest.raises(ProblemsError, match="unknown task\\(s\\) no_such_task; known: .*leg_counting"):
        reasoning_gym_problems(ReasoningGymConfig(tasks=["no_such_task"]), seed=0)
    bad_knob = ReasoningGymConfig(tasks=["spell_backward"], task_config={"spell_backward": {"colour": 1}})
    with pytest.raises(ProblemsError, match="problems.reasoning_gym.task_config.spell_backward"):
        reasoning_gym_problems(bad_knob, seed=0)
    with pytest.raises(ValidationError, match="task_config names tasks not in `tasks`: other"):
        ReasoningGymConfig(tasks=["spell_backward"], task_config={"other": {}})
    with pytest.raises(ValidationError, match="`reasoning_gym` section is missing"):
        ProblemsConfig(source="reasoning_gym")
    assert ProblemsConfig(source="countdown").countdown == CountdownConfig()
