"""DAPO-style dynamic sampling for GRPO: top up a round's informative problems with freshly sampled ones.

A GRPO group whose samples are all right or all wrong has zero advantage and gives no gradient. DAPO (Yu et al.,
2025) over-samples prompts and drops such groups until a batch is full. TRL 1.16's `GRPOTrainer` has no such
filter (it only logs `frac_reward_zero_std`), and with fewer prompts than one generation batch it trains 0 steps.
So flywheel filters ahead of GRPO, per problem: the round trains on problems whose sampled pass rate is strictly
between 0 and 1 (`train.grpo.problems: informative`), and when there are fewer than `informative_needed`, more
unseen train problems are drawn in seeded order, sampled and verified, and the informative ones added, until
enough are found, the pool runs out or `max_extra_problems` have been drawn.

Sampling and verifying a draw is the caller's `judge` (it needs the engine and the verifier pool); nothing here
reads or writes files.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pyarrow as pa

from configs import GrpoConfig

EXTRA_PROBLEMS_SCHEMA = pa.schema(
    [
        pa.field("problem_id", pa.string(), nullable=False),
        pa.field("draw", pa.int32(), nullable=False),
        pa.field("pass_rate", pa.float64()),
        pa.field("informative", pa.bool_(), nullable=False),
    ]
)

# problems (PROBLEMS_SCHEMA rows) -> problem_id -> sampled pass rate (None: no sample could be judged)
Judge = Callable[[pa.Table], Mapping[str, float | None]]


@dataclass(frozen=True)
class TopUp:
    """The problems GRPO trains on (the round's informative ones, then the extra informative ones, in draw
    order) and what the extra draws cost: `extra` has one EXTRA_PROBLEMS_SCHEMA row per problem drawn."""

    problems: pa.Table
    extra: pa.Table
    needed: int
    draws: int

    def metrics(self) -> dict[str, float]:
        informative = sum(self.extra.column("informative").to_pylist())
        return {
            "grpo_informative_needed": float(self.needed),
            "grpo_extra_draws": float(self.draws),
            "grpo_extra_problems_drawn": float(self.extra.num_rows),
            "grpo_extra_problems_informative": float(informative),
        }


def prompts_per_step(grpo: GrpoConfig) -> int:
    """Distinct prompts in one optimizer step of one process (each is sampled `num_generations` times)."""
    return grpo.per_device_train_batch_size * grpo.gradient_accumulation_steps // grpo.num_generations


def informative_needed(grpo: GrpoConfig) -> int:
    """How many informative problems the GRPO phase wants: `min_problems`, else one per prompt of every step."""
    wanted = grpo.dynamic_sampling.min_problems
    return wanted if wanted is not None else grpo.max_steps * prompts_per_step(grpo)


def candidate_order(candidates: pa.Table, seed: int, round_id: int) -> pa.Table:
    """`candidates` in the seeded order extra problems are drawn in: the same (run seed, round) gives the same
    order, so a re-run of the stage draws, samples and keeps the same problems."""
    order = list(range(candidates.num_rows))
    random.Random(f"{seed}/dynamic-sampling/{round_id}").shuffle(order)
    return candidates.take(pa.array(order, type=pa.int64()))


def is_informative(pass_rate: float | None) -> bool:
    return pass_rate is not None and 0.0 < pass_rate < 1.0


def top_up(informative: pa.Table, candidates: pa.Table, grpo: GrpoConfig, judge: Judge) -> TopUp:
    """Add informative problems from `candidates` (in the order given) to `informative` until it holds
    `informative_needed(grpo)` or `grpo.dynamic_sampling.max_extra_problems` candidates have been judged.

    `candidates` must hold none of the round's own problems (they were judged already). A problem is informative
    when its pass rate is strictly between 0 and 1; one that could not be judged is not."""
    settings = grpo.dynamic_sampling
    needed = informative_needed(grpo)
    kept, rows, draws = [informative], [], 0
    have, drawn = informative.num_rows, 0
    while have < needed and drawn < min(settings.max_extra_problems, candidates.num_rows):
        size = min(settings.draw_size, settings.max_extra_problems - drawn, candidates.num_rows - drawn)
        draw = candidates.slice(drawn, size)
        rates = judge(draw)
        ids = draw.column("problem_id").to_pylist()
        missing = [problem_id for problem_id in ids if problem_id not in rates]
        if missing:
            raise ValueError(f"dynamic sampling: draw {draws} has no pass rate for problem {missing[0]!r}")
        useful = [is_informative(rates[problem_id]) for problem_id in ids]
        rows += [
            {"problem_id": problem_id, "draw": draws, "pass_rate": rates[problem_id], "informative": ok}
            for problem_id, ok in zip(ids, useful, strict=True)
        ]
        kept.append(draw.filter(pa.array(useful, type=pa.bool_())))
        have += sum(useful)
        drawn += size
        draws += 1
    extra = pa.Table.from_pylist(rows, schema=EXTRA_PROBLEMS_SCHEMA)
    return TopUp(pa.concat_tables(kept), extra, needed, draws)
