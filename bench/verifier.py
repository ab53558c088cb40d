"""Math verifier accuracy and speed: flywheel's math verifier vs Hugging Face `math-verify==0.9.0`.

Baselines, measured in the same run on the same case file and the same worker processes: math-verify's
default call (`verify(parse(gold), parse(prediction))`) and math-verify with bare strings wrapped in `$...$`
(its LaTeX extractor needs the delimiters). flywheel runs twice: as the `math` domain, and as
`math_expressions`, which accepts an expression equal to a number gold (the case file's labels do; `math`
refuses it by policy). Every system runs through `verifiers.pool.VerifierPool` with the
same worker count and the same hard per-case timeout, so speed is compared on the same cores, and a case that
hangs a verifier is counted as a hard timeout instead of stalling the benchmark. A "cannot judge" verdict
counts as wrong. Prints per-category accuracy, false positives and false negatives, timeouts, cases/s, and
the speed ratio against math-verify.

    .venv/bin/python -m bench.verifier [--cases ../shared/bench/verifier_cases.jsonl] [--workers 2] [--timeout 5]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifiers import VERIFIERS, VERSIONS
from verifiers.pool import VerifierPool, VerifyCall
from verifiers.verdict import Verdict

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CASES = "../shared/bench/verifier_cases.jsonl"
SYSTEMS = {
    "flywheel": "math",
    # the same verifier without the rule that a number gold needs a number written out (`12 + 40` for 52):
    # the case file labels such answers by mathematical equality, the `math` domain by policy (README)
    "flywheel math_expressions": "math_expressions",
    "math-verify (default)": "bench-math-verify",
    "math-verify ($-wrapped)": "bench-math-verify-wrapped",
}
BASELINES = ["math-verify (default)", "math-verify ($-wrapped)"]


def math_verify_default(completion: str, problem: Mapping[str, Any]) -> Verdict:
    return _math_verify(completion, str(problem["answer"]), wrap=False)


def math_verify_wrapped(completion: str, problem: Mapping[str, Any]) -> Verdict:
    return _math_verify(completion, str(problem["answer"]), wrap=True)


def _math_verify(completion: str, gold: str, wrap: bool) -> Verdict:
    from math_verify import parse, verify

    if wrap:
        completion, gold = _wrapped(completion), _wrapped(gold)
    correct = bool(verify(parse(gold), parse(completion)))
    name = "bench-math-verify-wrapped" if wrap else "bench-math-verify"
    return Verdict(correct, float(correct), None, "math-verify", name, "0.9.0")


def _wrapped(text: str) -> str:
    if "$" in text or "\\(" in text or "\\[" in text or "\\boxed" in text:
        return text
    return f"${text}$"


@dataclass
class Tally:
    n: int = 0
    right: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    cannot_judge: int = 0
    timeouts: int = 0

    def add(self, expected: bool, verdict: Verdict) -> None:
        self.n += 1
        got = verdict.correct
        self.right += got is expected
        self.false_positives += got is True and not expected
        self.false_negatives += expected and got is not True
        self.cannot_judge += got is None
        self.timeouts += verdict.timed_out

    @property
    def accuracy(self) -> float:
        return self.right / self.n if self.n else 0.0


def load_cases(path: Path) -> list[dict[str, Any]]:
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        case = json.loads(line)
        missing = [key for key in ("gold", "prediction", "expected", "category") if key not in case]
        if missing:
            raise SystemExit(f"{path}:{number}: missing field(s) {', '.join(missing)}")
        cases.append(case)
    return cases


def run_system(pool: VerifierPool, name: str, cases: list[dict[str, Any]]) -> tuple[list[Verdict], float]:
    calls = [VerifyCall(name, case["prediction"], {"answer": case["gold"]}) for case in cases]
    pool.verify_batch(calls[: 2 * pool.size])  # warm-up: lazy imports inside the workers
    started = time.perf_counter()
    verdicts = pool.verify_batch(calls)
    return verdicts, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=DEFAULT_CASES, help="JSONL case file, relative to the repository root")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5.0, help="hard wall-clock limit per case, seconds")
    parser.add_argument("--show-errors", action="store_true", help="print every case flywheel gets wrong")
    args = parser.parse_args()
    path = Path(args.cases) if Path(args.cases).is_absolute() else REPO / args.cases
    if not path.is_file():
        raise SystemExit(f"case file not found: {path} (pass --cases)")
    cases = load_cases(path)

    VERIFIERS["bench-math-verify"] = math_verify_default
    VERIFIERS["bench-math-verify-wrapped"] = math_verify_wrapped
    VERSIONS["bench-math-verify"] = VERSIONS["bench-math-verify-wrapped"] = "0.9.0"

    results: dict[str, tuple[list[Verdict], float]] = {}
    with VerifierPool(workers=args.workers, timeout_s=args.timeout) as pool:
        for system, verifier in SYSTEMS.items():
            results[system] = run_system(pool, verifier, cases)

    categories = sorted({case["category"] for case in cases})
    tallies: dict[str, dict[str, Tally]] = {system: defaultdict(Tally) for system in SYSTEMS}
    for system, (verdicts, _) in results.items():
        for case, verdict in zip(cases, verdicts, strict=True):
            tallies[system][case["category"]].add(case["expected"], verdict)
            tallies[system]["ALL"].add(case["expected"], verdict)

    print(f"{len(cases)} cases from {path}, {args.workers} worker processes, timeout {args.timeout:g}s per case\n")
    header = f"{'category':36} {'n':>4}" + "".join(f" | {system[:24]:>24}" for system in SYSTEMS)
    print(header)
    print(" " * 41 + "".join(f" | {'acc%  FP  FN  ?':>24}" for _ in SYSTEMS))
    print("-" * len(header))
    for category in [*categories, "ALL"]:
        row = f"{category[:36]:36} {tallies['flywheel'][category].n:>4}"
        for system in SYSTEMS:
            tally = tallies[system][category]
            cells = f"{100 * tally.accuracy:5.1f} {tally.false_positives:3} {tally.false_negatives:3}"
            cells += f" {tally.cannot_judge:3}"
            row += f" | {cells:>24}"
        print(row)
    print()
    for system, (_, seconds) in results.items():
        total = tallies[system]["ALL"]
        print(f"{system:26} {len(cases) / seconds:8.1f} cases/s   hard timeouts: {total.timeouts}")
    ours = len(cases) / results["flywheel"][1]
    for system in BASELINES:
        print(f"speed ratio flywheel / {system}: {ours / (len(cases) / results[system][1]):.2f}x")

    best = max(BASELINES, key=lambda system: tallies[system]["ALL"].accuracy)
    worse = [
        category
        for category in categories
        if tallies["flywheel"][category].n >= 10
        and tallies["flywheel"][category].accuracy < tallies[best][category].accuracy
    ]
    print(f"categories (n >= 10) where flywheel is below {best}: {', '.join(worse) or 'none'}")
    if args.show_errors:
        print()
        for case, verdict in zip(cases, results["flywheel"][0], strict=True):
            if verdict.correct is not case["expected"]:
                print(f"{case.get('id')}: expected {case['expected']}, got {verdict.correct} ({verdict.reason})")


if __name__ == "__main__":
    main()
