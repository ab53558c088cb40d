from __future__ import annotations

import random

import pyarrow as pa
import pytest

from bench.decontaminate import instructed_arithmetic, with_leaks
from configs import ArithmeticConfig, SelectConfig
from configs.schema import DecontaminateConfig, ReasoningGymConfig
from stages.problems import PROBLEMS_SCHEMA, generate_arithmetic, split_of
from stages.puzzles import reasoning_gym_problems
from stages.select import SelectionError, eligible_problems, select_problems
from tests.stages.helpers import difficulty


def test_selection_is_seeded_per_round_and_draws_from_the_train_split() -> None:
    pool = generate_arithmetic(ArithmeticConfig(n_seed=10, n_test=10, n_train=100), seed=0)
    config = SelectConfig(problems_per_round=30)
    first = select_problems(pool, config, seed=1, round_id=1)
    assert first.num_rows == 30
    assert set(first.column("split").to_pylist()) == {"train"}
    assert select_problems(pool, config, seed=1, round_id=1).equals(first)
    assert not select_problems(pool, config, seed=1, round_id=2).equals(first)


def test_problems_whose_prompt_is_held_out_are_never_selected() -> None:
    pool = generate_arithmetic(ArithmeticConfig(n_seed=0, n_test=5, n_train=20), seed=0)
    leaked = split_of(pool, "test").to_pylist()[0]
    leaked_copy = {**leaked, "problem_id": "copy", "split": "train", "prompt": "  " + leaked["prompt"].upper()}
    pool = pa.concat_tables([pool, pa.Table.from_pylist([leaked_copy], schema=PROBLEMS_SCHEMA)])
    selected = select_problems(pool, SelectConfig(problems_per_round=1000), seed=0, round_id=1)
    assert selected.num_rows == 20
    assert "copy" not in selected.column("problem_id").to_pylist()


def _pool(n_train: int) -> pa.Table:
    return generate_arithmetic(ArithmeticConfig(n_seed=0, n_test=5, n_train=n_train), seed=0)


def _train_ids(pool: pa.Table) -> list[str]:
    return split_of(pool, "train").column("problem_id").to_pylist()


def test_default_selection_is_the_plain_seeded_uniform_draw_with_or_without_history() -> None:
    pool = _pool(50)
    train = split_of(pool, "train")
    expected = train.take(sorted(random.Random("3/select/2").sample(range(train.num_rows), 20)))
    history = difficulty(1, dict.fromkeys(_train_ids(pool)[:10], "solved"))
    assert select_problems(pool, SelectConfig(problems_per_round=20), seed=3, round_id=2).equals(expected)
    assert select_problems(pool, SelectConfig(problems_per_round=20), 3, 2, history=history).equals(expected)


def test_problems_solved_in_the_last_m_rounds_are_skipped() -> None:
    pool = _pool(20)
    solved = _train_ids(pool)[:5]
    history = difficulty(2, dict.fromkeys(solved, "solved"))
    skip_two = select_problems(pool, SelectConfig(problems_per_round=100, skip_solved_rounds=2), 0, 4, history=history)
    assert set(skip_two.column("problem_id").to_pylist()) == set(_train_ids(pool)) - set(solved)
    skip_one = select_problems(pool, SelectConfig(problems_per_round=100, skip_solved_rounds=1), 0, 4, history=history)
    assert skip_one.num_rows == 20


def test_unsolved_problems_have_a_retry_budget() -> None:
    pool = _pool(20)
    stuck = _train_ids(pool)[0]
    history = pa.concat_tables([difficulty(1, {stuck: "unsolved"}), difficulty(2, {stuck: "unsolved"})])
    spent = select_problems(pool, SelectConfig(problems_per_round=100, max_unsolved_rounds=2), 0, 3, history=history)
    assert stuck not in spent.column("problem_id").to_pylist() and spent.num_rows == 19
    left = select_problems(pool, SelectConfig(problems_per_round=100, max_unsolved_rounds=3), 0, 3, history=history)
    assert stuck in left.column("problem_id").to_pylist()


def test_informative_only_drops_problems_last_seen_with_pass_rate_0_or_1() -> None:
    pool = _pool(20)
    ids = _train_ids(pool)
    history = pa.concat_tables(
        [
            difficulty(1, {ids[0]: "medium", ids[1]: "hard", ids[2]: "solved"}),
            difficulty(2, {ids[0]: "solved", ids[1]: "medium", ids[3]: "unsolved"}),
        ]
    )
    config = SelectConfig(problems_per_round=100, informative_only=True)
    chosen = set(select_problems(pool, config, 0, 3, history=history).column("problem_id").to_pylist())
    assert chosen == set(ids) - {ids[0], ids[2], ids[3]}  # unseen problems stay eligible


def test_bucket_weights_shape_the_draw() -> None:
    pool = _pool(200)
    ids = _train_ids(pool)
    history = difficulty(1, {**dict.fromkeys(ids[:100], "medium"), **dict.fromkeys(ids[100:], "easy")})
    weighted = SelectConfig(problems_per_round=50, bucket_weights={"medium": 9.0, "easy": 1.0})
    chosen = select_problems(pool, weighted, 0, 2, history=history).column("problem_id").to_pylist()
    assert len(chosen) == 50 and sum(p in set(ids[:100]) for p in chosen) >= 40
    assert chosen == sorted(chosen, key=ids.index)  # pool order, like the uniform draw
    only_medium = SelectConfig(problems_per_round=150, bucket_weights={"easy": 0.0, "medium": 2.0})
    assert set(select_problems(pool, only_medium, 0, 2, history=history).column("problem_id").to_pylist()) == set(
        ids[:100]
    )


def test_train_prompts_sharing_an_ngram_with_a_held_out_problem_are_not_selected() -> None:
    rows = [
        {"problem_id": "t1", "prompt": "Natalia sold clips to 48 of her friends in April", "split": "test"},
        {"problem_id": "a", "prompt": "Natalia sold clips to 48 of her friends in May", "split": "train"},
        {"problem_id": "b", "prompt": "Natalia sold pens to 48 of her friends in April", "split": "train"},
    ]
    pool = pa.Table.from_pylist(
        [{"source": "s", "domain": "math", "answer": "1", **row} for row in rows], schema=PROBLEMS_SCHEMA
    )
    chosen = select_problems(pool, SelectConfig(problems_per_round=10), 0, 1).column("problem_id").to_pylist()
    assert chosen == ["b"]
    off = SelectConfig(problems_per_round=10, decontaminate=DecontaminateConfig(enabled=False))
    assert select_problems(pool, off, 0, 1).column("problem_id").to_pylist() == ["a", "b"]


def test_templated_arithmetic_prompts_are_eligible_and_a_copied_test_prompt_is_not() -> None:
    """Every prompt ends in the same instruction; it is no evidence of contamination (all 2000 were flagged before
    template words were left out)."""
    problems = instructed_arithmetic(n_train=2000, n_test=500)
    assert eligible_problems(problems, SelectConfig(), 1).num_rows == 2000
    everything = SelectConfig(decontaminate=DecontaminateConfig(template_share=None))
    assert eligible_problems(problems, everything, 1).num_rows == 0
    leaked = {**split_of(problems, "test").to_pylist()[0], "problem_id": "leak", "split": "train"}
    with_copy = pa.concat_tables([problems, pa.Table.from_pylist([leaked], schema=PROBLEMS_SCHEMA)])
    assert "leak" not in eligible_problems(with_copy, SelectConfig(), 1).column("problem_id").to_pylist()


def test_the_readme_reasoning_gym_example_yields_eligible_problems_and_leaks_are_caught() -> None:
    problems = reasoning_gym_problems(
        ReasoningGymConfig(tasks=["leg_counting", "basic_arithmetic"], n_train=300, n_test=100), 0
    )
    train = split_of(problems, "train").num_rows
    assert eligible_problems(problems, SelectConfig(), 1).num_rows >= 0.99 * train
    kept = eligible_problems(with_leaks(problems, 20), SelectConfig(), 1).column("problem_id").to_pylist()
    caught = 20 - sum(problem_id.startswith("leak/") for problem_id in kept)
    assert caught >= 15  # reworded leaks whose content is under 8 words escape the n-grams (see bench.decontaminate)


def test_the_readme_reasoning_gym_example_at_a_small_size_yields_eligible_problems() -> None:
    """Three held-out problems per task cannot show the template; the train split shows it (every prompt of a task
    shares its instructions, which flagged every train problem when only the held-out split was counted)."""
    problems = reasoning_gym_problems(
        ReasoningGymConfig(tasks=["leg_counting", "basic_arithmetic"], n_seed=4, n_train=10, n_test=3), 0
    )
    assert eligible_problems(problems, SelectConfig(), 1).num_rows == 20


def test_a_round_without_eligible_problems_is_an_error_naming_why() -> None:
    rows = [
        {"problem_id": f"{split}{n}", "prompt": f"What is {n} + {n}?", "split": split}
        for split in ("train", "test")
        for n in range(3)
    ]
    pool = pa.Table.from_pylist(
        [{"source": "s", "domain": "math", "answer": "1", **row} for row in rows], schema=PROBLEMS_SCHEMA
    )
    with pytest.raises(SelectionError, match="round 1 has no eligible problem: the train split has 3, 3 of them"):
        select_problems(pool, SelectConfig(), 0, 1)
