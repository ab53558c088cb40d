from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.verifiers import slow_verifiers
from verifiers import VERIFIERS, VERSIONS, UnknownVerifierError
from verifiers.pool import VerifierPool, VerifyCall

TEST_VERIFIERS = {
    "echo": slow_verifiers.echo,
    "sleepy": slow_verifiers.sleepy,
    "suicidal": slow_verifiers.suicidal,
    "greedy": slow_verifiers.greedy,
    "broken": slow_verifiers.broken,
}


@pytest.fixture(scope="module")
def pool() -> Iterator[VerifierPool]:
    saved = dict(VERIFIERS), dict(VERSIONS)
    VERIFIERS.update(TEST_VERIFIERS)
    VERSIONS.update({name: "1" for name in TEST_VERIFIERS})
    with VerifierPool(workers=2, timeout_s=1.0, memory_limit_mb=512) as live:
        yield live
    VERIFIERS.clear(), VERIFIERS.update(saved[0])
    VERSIONS.clear(), VERSIONS.update(saved[1])


def _pid(reason: str) -> int:
    return int(reason.removeprefix("pid "))


def test_results_come_back_in_input_order(pool: VerifierPool) -> None:
    calls = [VerifyCall("echo", str(i), {"answer": str(i if i % 3 else -1)}) for i in range(60)]
    verdicts = pool.verify_batch(calls)
    assert [verdict.extracted for verdict in verdicts] == [str(i) for i in range(60)]
    assert [verdict.correct for verdict in verdicts] == [i % 3 != 0 for i in range(60)]


def test_slow_call_times_out_as_a_verdict_and_others_finish(pool: VerifierPool) -> None:
    started = time.monotonic()
    verdicts = pool.verify_batch([VerifyCall("sleepy", "30", {}), VerifyCall("sleepy", "0.1", {})])
    assert time.monotonic() - started < 5
    slow, fast = verdicts
    assert slow.timed_out and slow.correct is False and slow.reward == 0.0 and "timed out" in slow.reason
    assert fast.correct is True and not fast.timed_out


def test_worker_killed_mid_call_is_replaced(pool: VerifierPool) -> None:
    before = {_pid(v.reason) for v in pool.verify_batch([VerifyCall("echo", "1", {})] * 8)}
    died = pool.verify("suicidal", "x", {})
    assert died.correct is None and "worker died" in died.reason
    after = pool.verify_batch([VerifyCall("echo", "1", {"answer": "1"})] * 8)
    assert all(verdict.correct for verdict in after)
    assert {_pid(v.reason) for v in after} - before, "a fresh worker process should serve calls"


def test_timed_out_worker_is_replaced_and_pool_keeps_its_size(pool: VerifierPool) -> None:
    pool.verify_batch([VerifyCall("sleepy", "30", {})] * 2)
    verdicts = pool.verify_batch([VerifyCall("echo", str(i), {}) for i in range(10)])
    assert len(verdicts) == 10 and not any(verdict.timed_out for verdict in verdicts)
    started = time.monotonic()
    assert all(v.correct for v in pool.verify_batch([VerifyCall("sleepy", "0.6", {})] * 2))
    assert time.monotonic() - started < 1.1, "both replacement workers should run in parallel"


def test_memory_limit_turns_a_hog_into_cannot_judge(pool: VerifierPool) -> None:
    verdict = pool.verify("greedy", "x", {})
    assert verdict.correct is None and "memory" in verdict.reason


def test_verifier_exception_is_data(pool: VerifierPool) -> None:
    verdict = pool.verify("broken", "x", {})
    assert verdict.correct is None and "ZeroDivisionError" in verdict.reason


def test_calls_from_several_threads(pool: VerifierPool) -> None:
    outputs: dict[int, list[str | None]] = {}

    def run(thread: int) -> None:
        calls = [VerifyCall("echo", f"{thread}-{i}", {}) for i in range(25)]
        outputs[thread] = [verdict.extracted for verdict in pool.verify_batch(calls)]

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outputs == {n: [f"{n}-{i}" for i in range(25)] for n in range(4)}


def test_math_verifier_runs_in_the_pool(pool: VerifierPool) -> None:
    verdicts = pool.verify_batch(
        [
            VerifyCall("math", "so the answer is \\boxed{\\frac{3}{4}}", {"answer": "0.75"}),
            VerifyCall("math", "\\boxed{2^{2^{2^{2^{2^{2}}}}}}", {"answer": "4"}),
        ]
    )
    assert verdicts[0].correct is True
    assert verdicts[1].correct is False and not verdicts[1].timed_out


def test_unknown_verifier_is_refused_before_any_work(pool: VerifierPool) -> None:
    with pytest.raises(UnknownVerifierError, match="call 1"):
        pool.verify_batch([VerifyCall("echo", "1", {}), VerifyCall("chess", "1", {})])
