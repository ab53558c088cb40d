"""flywheel's verifiers as TRL reward functions, for GRPO.

TRL calls a reward function with the batch's `prompts`, `completions` and every other dataset column as keyword
lists. The GRPO dataset carries `problem_id`, so the correctness reward judges each completion exactly as the
verify stage does: through the verifier registered for the problem's domain, in the verifier process pool (a
hard per-call timeout that works from any thread, unlike `signal.alarm`), through the verdict cache it is given
(the flows hand it the run's stored verdicts; without one, a cache of its own for the phase). A completion
the verifier cannot judge gets `None`, which TRL leaves out of the group statistics instead of counting it wrong.
The format reward is a second function, so TRL logs the two separately and weighs them with `reward_weights`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from configs import VerifyConfig
from stages.verify import judge_completions
from verifiers.cache import VerdictCache
from verifiers.format import format_reward
from verifiers.pool import VerifierPool


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the content of the last message of a conversational one."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], Mapping):
        return str(completion[-1].get("content", ""))
    raise TypeError(f"a completion must be a string or a list of messages, got {type(completion).__name__}")


class CorrectnessReward:
    """The verifier's reward (1/0 for math and puzzles, the fraction of tests passed for code)."""

    __name__ = "correctness"

    def __init__(
        self,
        problems_by_id: Mapping[str, Mapping[str, Any]],
        *,
        config: VerifyConfig,
        pool: VerifierPool,
        cache: VerdictCache | None = None,
    ) -> None:
        self.problems_by_id = problems_by_id
        self.config = config
        self.pool = pool
        self.cache = cache if cache is not None else VerdictCache()
        self.calls = 0  # completions rewarded
        self.cached = 0  # of them, answers judged before the call (the stored verdicts or an earlier step)
        self.judged = 0  # answers the verifier judged (the rest repeat an answer of the same call)
        self.seconds = 0.0

    def __call__(self, completions: Sequence[Any], problem_id: Sequence[str], **_: Any) -> list[float | None]:
        started = time.perf_counter()
        known = len(self.cache)
        verdicts, cached = judge_completions(
            list(problem_id),
            [completion_text(completion) for completion in completions],
            self.problems_by_id,
            config=self.config,
            pool=self.pool,
            cache=self.cache,
        )
        self.calls += len(verdicts)
        self.cached += cached
        self.judged += len(self.cache) - known  # a timed-out call is not cached, so not counted
        self.seconds += time.perf_counter() - started
        return [verdict.reward for verdict in verdicts]


def format_reward_function(completions: Sequence[Any], **_: Any) -> list[float]:
    """1.0 when the completion reasons inside `<think>...</think>` before its answer, else 0.0."""
    return [format_reward(completion_text(completion)) for completion in completions]


format_reward_function.__name__ = "format"


def reward_functions(
    correctness: CorrectnessReward, format_weight: float
) -> tuple[list[Callable[..., list[Any]]], list[float]]:
    """TRL's `reward_funcs` and `reward_weights`: correctness, plus the format reward when it has weight."""
    if format_weight > 0:
        return [correctness, format_reward_function], [1.0, format_weight]
    return [correctness], [1.0]
