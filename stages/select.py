"""Select a round's problems from the unlabelled pool.

Problems whose prompt also appears in the held-out split are never selected (exact match after
whitespace and case folding). The draw is seeded by (run seed, round) so a re-run selects the same set.
"""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.compute as pc

from configs import SelectConfig
from stages.problems import split_of


def select_problems(problems: pa.Table, config: SelectConfig, seed: int, round_id: int) -> pa.Table:
    pool = split_of(problems, "train")
    held_out = {_prompt_key(prompt) for prompt in split_of(problems, "test").column("prompt").to_pylist()}
    clean = pc.invert(pa.array([_prompt_key(p) in held_out for p in pool.column("prompt").to_pylist()]))
    pool = pool.filter(clean)
    count = min(config.problems_per_round, pool.num_rows)
    chosen = random.Random(f"{seed}/select/{round_id}").sample(range(pool.num_rows), count)
    return pool.take(sorted(chosen))


def _prompt_key(prompt: str) -> str:
    return " ".join(prompt.split()).casefold()
