"""Select a round's problems from the unlabelled pool: decontamination, then a curriculum-shaped seeded draw.

Never selected: a problem whose prompt also appears in the held-out split (exact match after whitespace and
case folding), or shares a word n-gram with a held-out prompt, answer or solution (`SelectConfig.decontaminate`).

Curriculum, from `history` (earlier rounds' `difficulty` tables concatenated; a problem never sampled is
`unseen`), applied in this order:
- `skip_solved_rounds` M: skip problems `solved` in any of the last M rounds;
- `max_unsolved_rounds` U: skip problems `unsolved` in U earlier rounds (a retry budget);
- `informative_only`: skip problems whose latest bucket is `solved` or `unsolved` (pass rate 1 or 0);
- `bucket_weights`: draw without replacement with probability proportional to the weight of the problem's
  latest bucket (Efraimidis-Spirakis keys); with all weights equal the draw is the plain uniform sample.
The draw is seeded by (run seed, round) so a re-run selects the same set. No file I/O.
"""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.compute as pc

from configs import SelectConfig
from stages.bucket import ProblemHistory, histories
from stages.decontaminate import contaminated_by, eval_index, eval_texts_from_problems
from stages.problems import split_of


def select_problems(
    problems: pa.Table, config: SelectConfig, seed: int, round_id: int, *, history: pa.Table | None = None
) -> pa.Table:
    """This round's problems (PROBLEMS_SCHEMA rows of the train split), in pool order. A round left with no
    eligible problem is a SelectionError naming how many the train split had and what removed them."""
    pool = eligible_problems(problems, config, round_id, history)
    if pool.num_rows == 0:
        raise SelectionError(_why_none_is_eligible(problems, config, round_id))
    latest = histories(history, round_id)
    weights = [config.bucket_weights.get(_latest_bucket(latest, p), 1.0) for p in pool.column("problem_id").to_pylist()]
    rng = random.Random(f"{seed}/select/{round_id}")
    if len(set(weights)) <= 1:
        count = min(config.problems_per_round, pool.num_rows if not weights or weights[0] > 0 else 0)
        chosen = rng.sample(range(pool.num_rows), count)
    else:
        # Weighted sampling without replacement: the largest keys u^(1/w) win (Efraimidis & Spirakis, 2006).
        keys = [(rng.random() ** (1.0 / weight), i) for i, weight in enumerate(weights) if weight > 0]
        chosen = [i for _, i in sorted(keys, reverse=True)[: config.problems_per_round]]
    return pool.take(pa.array(sorted(chosen), type=pa.int64()))


class SelectionError(ValueError):
    """No problem of the train split is eligible for the round."""


def _why_none_is_eligible(problems: pa.Table, config: SelectConfig, round_id: int) -> str:
    train = split_of(problems, "train").num_rows
    clean = eligible_problems(problems, config, round_id).num_rows
    return (
        f"round {round_id} has no eligible problem: the train split has {train}, {train - clean} of them share a "
        f"prompt or a word {config.decontaminate.ngram_words}-gram with the held-out split (select.decontaminate), "
        f"and the curriculum (select: skip_solved_rounds, max_unsolved_rounds, informative_only) skips the other "
        f"{clean}"
    )


def eligible_problems(
    problems: pa.Table, config: SelectConfig, round_id: int, history: pa.Table | None = None
) -> pa.Table:
    """The train split less contaminated problems and those the curriculum skips this round."""
    pool = split_of(problems, "train")
    held_out = split_of(problems, "test")
    held_out_prompts = {_prompt_key(prompt) for prompt in held_out.column("prompt").to_pylist()}
    clean = [_prompt_key(p) not in held_out_prompts for p in pool.column("prompt").to_pylist()]
    if config.decontaminate.enabled and held_out.num_rows:
        index = eval_index(
            eval_texts_from_problems(held_out), config.decontaminate, template_texts=eval_texts_from_problems(problems)
        )
        leaks = contaminated_by(pool.column("prompt"), index)
        clean = [ok and leak is None for ok, leak in zip(clean, leaks, strict=True)]
    pool = pool.filter(pa.array(clean, type=pa.bool_()))
    if history is None or history.num_rows == 0:
        return pool
    latest = histories(history, round_id)
    keep = [_curriculum_allows(latest.get(p), config, round_id) for p in pool.column("problem_id").to_pylist()]
    return pool.filter(pc.equal(pa.array(keep, type=pa.bool_()), True))


def _curriculum_allows(past: ProblemHistory | None, config: SelectConfig, round_id: int) -> bool:
    if past is None:
        return True
    recent = [b for r, b in zip(past.rounds, past.buckets, strict=True) if r >= round_id - config.skip_solved_rounds]
    if config.skip_solved_rounds and "solved" in recent:
        return False
    if config.max_unsolved_rounds is not None and past.buckets.count("unsolved") >= config.max_unsolved_rounds:
        return False
    return not (config.informative_only and past.latest_bucket in ("solved", "unsolved"))


def _latest_bucket(latest: dict[str, ProblemHistory], problem_id: str) -> str:
    past = latest.get(problem_id)
    return past.latest_bucket if past is not None else "unseen"


def _prompt_key(prompt: str) -> str:
    return " ".join(prompt.split()).casefold()
