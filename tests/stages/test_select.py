from __future__ import annotations

import pyarrow as pa

from configs import ArithmeticConfig, SelectConfig
from stages.problems import PROBLEMS_SCHEMA, generate_arithmetic, split_of
from stages.select import select_problems


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
