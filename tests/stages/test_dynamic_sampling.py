"""DAPO-style dynamic sampling: how many informative problems GRPO wants, and topping them up draw by draw."""

from __future__ import annotations

import pyarrow as pa
import pytest

from configs import ArithmeticConfig, DynamicSamplingConfig, GrpoConfig
from stages.dynamic_sampling import candidate_order, informative_needed, prompts_per_step, top_up
from stages.problems import generate_arithmetic, split_of


def _pool() -> pa.Table:
    return split_of(generate_arithmetic(ArithmeticConfig(digits=2, n_seed=0, n_test=1, n_train=60), seed=0), "train")


def _grpo(**dynamic: object) -> GrpoConfig:
    # 2 prompts per step x 3 steps: 6 informative problems wanted
    return GrpoConfig(
        max_steps=3, per_device_train_batch_size=8, num_generations=4,
        dynamic_sampling=DynamicSamplingConfig(enabled=True, **dynamic),
    )  # fmt: skip


def test_problems_wanted_follow_the_batch_unless_set() -> None:
    assert prompts_per_step(_grpo()) == 2
    assert informative_needed(_grpo()) == 6
    assert informative_needed(_grpo(min_problems=2)) == 2
    with pytest.raises(ValueError, match="needs problems: informative"):
        GrpoConfig(problems="all", dynamic_sampling=DynamicSamplingConfig(enabled=True))


def test_draws_until_enough_informative_problems_are_found() -> None:
    pool = _pool()
    own, candidates = pool.slice(0, 1), candidate_order(pool.slice(1), seed=3, round_id=2)
    judged: list[list[str]] = []

    def judge(problems: pa.Table) -> dict[str, float | None]:
        ids = problems.column("problem_id").to_pylist()
        judged.append(ids)
        # two of every five are informative (0.5, 0.25); the rest all wrong, all right, or not judged
        return {pid: [0.5, 0.0, 1.0, 0.25, None, 1.0][i % 6] for i, pid in enumerate(ids)}

    result = top_up(own, candidates, _grpo(draw_size=5), judge)
    assert [len(ids) for ids in judged] == [5, 5, 5]  # 1 of the round's + 2 per draw: 5 < 6 after two draws
    assert result.problems.num_rows == 7  # a draw's informative problems are all kept
    assert result.problems.column("problem_id").to_pylist()[0] == own["problem_id"][0].as_py()
    assert result.metrics() == {
        "grpo_informative_needed": 6.0,
        "grpo_extra_draws": 3.0,
        "grpo_extra_problems_drawn": 15.0,
        "grpo_extra_problems_informative": 6.0,
    }
    assert result.extra.column("problem_id").to_pylist() == [pid for ids in judged for pid in ids]
    assert candidate_order(pool.slice(1), seed=3, round_id=2).equals(candidates)  # a re-run draws the same
    assert not candidate_order(pool.slice(1), seed=3, round_id=3).equals(candidates)


def test_the_cap_and_the_pool_bound_the_extra_draws() -> None:
    pool = _pool()
    never = top_up(pool.slice(0, 0), pool, _grpo(draw_size=4, max_extra_problems=10), lambda p: dict.fromkeys(
        p.column("problem_id").to_pylist(), 1.0
    ))  # fmt: skip
    assert (never.problems.num_rows, never.extra.num_rows, never.draws) == (0, 10, 3)  # 4 + 4 + 2, then the cap
    short = top_up(pool.slice(0, 0), pool.slice(0, 3), _grpo(), lambda p: dict.fromkeys(
        p.column("problem_id").to_pylist(), 0.5
    ))  # fmt: skip
    assert (short.problems.num_rows, short.draws) == (3, 1)  # the pool ran out
    enough = top_up(pool.slice(0, 6), pool.slice(6), _grpo(), lambda p: pytest.fail("nothing should be sampled"))
    assert (enough.problems.num_rows, enough.extra.num_rows) == (6, 0)


def test_a_draw_without_a_pass_rate_for_a_problem_is_an_error_naming_it() -> None:
    pool = _pool()
    with pytest.raises(ValueError, match=f"draw 0 has no pass rate for problem '{pool['problem_id'][0].as_py()}'"):
        top_up(pool.slice(0, 0), pool, _grpo(), lambda p: {})
