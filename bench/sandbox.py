"""Sandbox throughput: programs per second through `verifiers.sandbox` vs a plain subprocess, same programs.

Baseline: `subprocess.run([python, "-I", "-c", program])` with the same stdin and no isolation, limits or
clean-up, the least a verifier can do to run a program in another process. Both run the same small
programs (typical solutions to stdin/stdout problems), first one at a time, then with 2 worker threads.

    .venv/bin/python -m bench.sandbox [--programs 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from verifiers.sandbox import available_isolation, run_python

PROGRAMS = [
    ("a, b = map(int, input().split())\nprint(a + b)", "3 4\n", "7"),
    ("n = int(input())\nprint(sum(i * i for i in range(n)))", "1000\n", str(sum(i * i for i in range(1000)))),
    ("s = input()\nprint(s[::-1])", "flywheel\n", "leehwylf"),
    (
        "n = int(input())\nsieve = [True] * (n + 1)\nfor i in range(2, int(n ** 0.5) + 1):\n"
        "    if sieve[i]:\n        sieve[i * i :: i] = [False] * len(sieve[i * i :: i])\n"
        "print(sum(sieve[2:]))",
        "10000\n",
        "1229",
    ),
]


def plain(program: str, stdin: str) -> str:
    return subprocess.run(
        [sys.executable, "-I", "-c", program], input=stdin, capture_output=True, text=True, timeout=10
    ).stdout


def sandboxed(program: str, stdin: str) -> str:
    return run_python(program, stdin).stdout


def rate(run: Callable[[str, str], str], n: int, workers: int) -> float:
    jobs = [PROGRAMS[i % len(PROGRAMS)] for i in range(n)]

    def one(job: tuple[str, str, str]) -> None:
        program, stdin, expected = job
        output = run(program, stdin).strip()
        if output != expected:
            raise RuntimeError(f"wrong output {output!r} (expected {expected!r}) for:\n{program}")

    started = time.perf_counter()
    if workers == 1:
        for job in jobs:
            one(job)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, jobs))
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--programs", type=int, default=100, help="programs per measurement")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    isolation = available_isolation()
    sandboxed(*PROGRAMS[0][:2])  # warm-up: probes the isolation once
    print(f"isolation: {isolation}; {args.programs} programs per measurement")
    print(f"{'workers':>8} {'plain/s':>9} {'sandbox/s':>10} {'overhead (plain/sandbox)':>25}")
    for workers in sorted({1, args.workers}):
        plain_rate = rate(plain, args.programs, workers)
        sandbox_rate = rate(sandboxed, args.programs, workers)
        print(f"{workers:>8} {plain_rate:>9.1f} {sandbox_rate:>10.1f} {plain_rate / sandbox_rate:>24.2f}x")


if __name__ == "__main__":
    main()
