"""Decontamination on templated sources: the share of clean train prompts flagged, and of planted leaks caught.

Sources: 2-digit addition with an answer instruction ("What is 45 + 15? Answer with the number after ####.",
as a dataset of that form gives it), the README's reasoning-gym example (`leg_counting, basic_arithmetic`), and
the reasoning-gym tasks `chain_sum` and `gsm_symbolic`. Each is checked by the select stage's decontamination
against its held-out split, with template words left out (the default) and with every word kept
(`template_share: null`, the behaviour before template words). Planted leaks: `--leaks` held-out prompts put into
the train pool as "Question: <prompt>" (so the exact-prompt check does not see them; an exact copy is always
caught by it). A prompt with fewer than 8 content words (2-digit addition: its two operands) has no n-gram, so
a reworded leak of it cannot be caught by n-grams at all.

    .venv/bin/python -m bench.decontaminate [--leaks 20]
"""

from __future__ import annotations

import argparse
import re
import time

import pyarrow as pa

from configs.schema import ArithmeticConfig, DecontaminateConfig, ReasoningGymConfig, SelectConfig
from stages.problems import generate_arithmetic, split_of
from stages.puzzles import reasoning_gym_problems
from stages.select import eligible_problems


def instructed_arithmetic(n_train: int, n_test: int) -> pa.Table:
    problems = generate_arithmetic(ArithmeticConfig(n_seed=0, n_test=n_test, n_train=n_train), 0)
    prompts = []
    for prompt in problems.column("prompt").to_pylist():
        left, right = re.fullmatch(r"(\d+)\+(\d+)=", prompt).groups()  # type: ignore[union-attr]
        prompts.append(f"What is {left} + {right}? Answer with the number after ####.")
    index = problems.schema.get_field_index("prompt")
    return problems.set_column(index, problems.schema.field(index), pa.array(prompts))


def with_leaks(problems: pa.Table, count: int) -> pa.Table:
    """`count` held-out prompts added to the train pool, reworded just enough to escape the exact-prompt check."""
    leaked = [
        {**row, "problem_id": f"leak/{row['problem_id']}", "split": "train", "prompt": f"Question: {row['prompt']}"}
        for row in split_of(problems, "test").slice(0, count).to_pylist()
    ]
    return pa.concat_tables([problems, pa.Table.from_pylist(leaked, schema=problems.schema)])


def sources() -> dict[str, pa.Table]:
    def gym(tasks: list[str], n_train: int) -> pa.Table:
        return reasoning_gym_problems(ReasoningGymConfig(tasks=tasks, n_train=n_train, n_test=100), 0)

    return {
        "arithmetic + instruction": instructed_arithmetic(2000, 500),
        "leg_counting, basic_arithmetic": gym(["leg_counting", "basic_arithmetic"], 1000),
        "chain_sum": gym(["chain_sum"], 1000),
        "gsm_symbolic": gym(["gsm_symbolic"], 300),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaks", type=int, default=20)
    args = parser.parse_args()
    print(f"{'source':32} {'words':9} {'train':>6} {'flagged':>8} {'share':>6} {'leaks caught':>13} {'seconds':>8}")
    for name, problems in sources().items():
        train = split_of(problems, "train").num_rows
        leaky = with_leaks(problems, args.leaks)
        for label, share in (("content", DecontaminateConfig().template_share), ("all", None)):
            config = SelectConfig(decontaminate=DecontaminateConfig(template_share=share))
            started = time.perf_counter()
            flagged = train - eligible_problems(problems, config, 1).num_rows
            seconds = time.perf_counter() - started
            kept = eligible_problems(leaky, config, 1).column("problem_id").to_pylist()
            caught = args.leaks - sum(problem_id.startswith("leak/") for problem_id in kept)
            print(
                f"{name:32} {label:9} {train:6d} {flagged:8d} {flagged / train:6.3f} "
                f"{f'{caught}/{args.leaks}':>13} {seconds:8.2f}"
            )


if __name__ == "__main__":
    main()
