"""Math verifier accuracy and speed: flywheel's math verifier vs Hugging Face `math-verify==0.9.0`.

Case sets: the public file `../shared/bench/verifier_cases.jsonl` (the math verifier was developed on it,
so its numbers are in-sample), `bench/data/verifier_cases_heldout.jsonl`,
`bench/data/verifier_cases_graders.jsonl`, `bench/data/verifier_cases_evalkits.jsonl`,
`bench/data/verifier_cases_harnesses.jsonl`, `bench/data/verifier_cases_scorers.jsonl`,
`bench/data/verifier_cases_rlstacks.jsonl`, `bench/data/verifier_cases_rewardlabs.jsonl`,
`bench/data/verifier_cases_modelruns.jsonl` and `bench/data/verifier_cases_deathmath.jsonl`, from other sources,
each reported as its two halves (`split`: `dev`, used for tuning, and `heldout`, never used for tuning;
bench/data/README.md).
A case whose label contradicts flywheel's reward-hacking policy (README, "What cannot be gamed": the case's
`policy` field, or `bench/data/policy_overlay.jsonl` for the read-only shared file) is counted apart, as a
"policy" case with its rule named, and left out of accuracy.

Baselines, measured in the same run on the same cases and the same worker processes: math-verify's
default call (`verify(parse(gold), parse(prediction))`) and math-verify with bare strings wrapped in `$...$`
(its LaTeX extractor needs the delimiters). flywheel runs twice: as the `math` domain, and as
`math_expressions`, which accepts an expression equal to a number gold (`math` refuses it by policy). Every
system runs through `verifiers.pool.VerifierPool` with the same worker count and the same hard per-case
timeout, so speed is compared on the same cores, and a case that hangs a verifier is counted as a hard
timeout instead of stalling the benchmark. A "cannot judge" verdict counts as wrong. Prints, per case set,
per-category accuracy, false positives and false negatives, then a summary of every set, timeouts, cases/s
and the speed ratio against math-verify. `--show-errors` lists flywheel's wrong verdicts on the shared file
and the dev half only: held-out failures are never printed, so they cannot steer tuning.

    .venv/bin/python -m bench.verifier [--cases FILE ...] [--workers 2] [--timeout 5] [--show-errors] [--tuning]
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
DEFAULT_CASES = [
    "../shared/bench/verifier_cases.jsonl",
    "bench/data/verifier_cases_heldout.jsonl",
    "bench/data/verifier_cases_graders.jsonl",
    "bench/data/verifier_cases_evalkits.jsonl",
    "bench/data/verifier_cases_harnesses.jsonl",
    "bench/data/verifier_cases_scorers.jsonl",
    "bench/data/verifier_cases_rlstacks.jsonl",
    "bench/data/verifier_cases_modelruns.jsonl",
    "bench/data/verifier_cases_deathmath.jsonl",
    "bench/data/verifier_cases_rewardlabs.jsonl",
]
POLICY_OVERLAY = "bench/data/policy_overlay.jsonl"
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


@dataclass
class CaseSet:
    name: str
    cases: list[dict[str, Any]]
    tuning: bool  # whether its failures may be looked at (shared file, dev half) or not (held-out half)


def load_cases(path: Path) -> list[dict[str, Any]]:
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        case = json.loads(line)
        missing = [key for key in ("gold", "prediction", "expected", "category") if key not in case]
        if missing:
            raise SystemExit(f"{path}:{number}: missing field(s) {', '.join(missing)}")
        if case.get("split") not in (None, "dev", "heldout"):
            raise SystemExit(f"{path}:{number}: split must be dev or heldout, not {case['split']!r}")
        cases.append(case)
    return cases


def load_policy_overlay(path: Path) -> dict[str, str]:
    """Case id -> the policy rule its label contradicts, for case files that cannot carry the field."""
    if not path.is_file():
        return {}
    rules = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            row = json.loads(line)
            if not row.get("id") or not row.get("rule"):
                raise SystemExit(f"{path}:{number}: a policy overlay row needs `id` and `rule`")
            rules[row["id"]] = row["rule"]
    return rules


def case_sets(paths: list[Path], overlay: dict[str, str]) -> list[CaseSet]:
    """One set per file, or one per half for a file whose cases carry `split`."""
    sets = []
    for path in paths:
        cases = load_cases(path)
        for case in cases:
            if case.get("id") in overlay:
                case.setdefault("policy", overlay[case["id"]])
        splits = sorted({case["split"] for case in cases if "split" in case})
        if not splits:
            sets.append(CaseSet(path.name, cases, tuning=True))
            continue
        if len(splits) != len({*splits, *(case.get("split") for case in cases)}):
            raise SystemExit(f"{path}: either every case has a split or none has")
        for split in splits:
            members = [case for case in cases if case["split"] == split]
            sets.append(CaseSet(f"{path.stem}:{split}", members, tuning=split == "dev"))
    return sets


def run_system(pool: VerifierPool, name: str, cases: list[dict[str, Any]]) -> tuple[list[Verdict], float]:
    calls = [VerifyCall(name, case["prediction"], {"answer": case["gold"]}) for case in cases]
    pool.verify_batch(calls[: 2 * pool.size])  # warm-up: lazy imports inside the workers
    started = time.perf_counter()
    verdicts = pool.verify_batch(calls)
    return verdicts, time.perf_counter() - started


def print_categories(case_set: CaseSet, verdicts: dict[str, list[Verdict]]) -> dict[str, Tally]:
    """Per-category table of one case set (policy cases left out); returns each system's ALL tally."""
    tallies: dict[str, dict[str, Tally]] = {system: defaultdict(Tally) for system in SYSTEMS}
    for system in SYSTEMS:
        for case, verdict in zip(case_set.cases, verdicts[system], strict=True):
            if case.get("policy"):
                continue
            tallies[system][case["category"]].add(case["expected"], verdict)
            tallies[system]["ALL"].add(case["expected"], verdict)
    categories = sorted({case["category"] for case in case_set.cases if not case.get("policy")})
    print(f"== {case_set.name}: {len(case_set.cases)} cases")
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
    print_policy_cases(case_set, verdicts["flywheel"])
    best = max(BASELINES, key=lambda system: tallies[system]["ALL"].accuracy)
    worse = [
        category
        for category in categories
        if tallies["flywheel"][category].n >= 10
        and tallies["flywheel"][category].accuracy < tallies[best][category].accuracy
    ]
    print(f"categories (n >= 10) where flywheel is below {best}: {', '.join(worse) or 'none'}\n")
    return {system: tallies[system]["ALL"] for system in SYSTEMS}


def print_policy_cases(case_set: CaseSet, verdicts: list[Verdict]) -> None:
    by_rule: dict[str, list[bool]] = defaultdict(list)
    for case, verdict in zip(case_set.cases, verdicts, strict=True):
        if case.get("policy"):
            by_rule[case["policy"]].append(verdict.correct is (not case["expected"]))
    for rule, follows in sorted(by_rule.items()):
        print(f"policy cases, rule {rule}: {len(follows)}, flywheel `math` follows the policy on {sum(follows)}")


def print_summary(totals: dict[str, dict[str, Tally]]) -> None:
    print("summary (policy cases left out; FP% = false positives / cases)")
    header = f"{'case set':36} {'n':>4}" + "".join(f" | {system[:24]:>24}" for system in SYSTEMS)
    print(header)
    print(" " * 41 + "".join(f" | {'acc%  FP  FP%  FN':>24}" for _ in SYSTEMS))
    print("-" * len(header))
    for name, tallies in totals.items():
        row = f"{name[:36]:36} {tallies['flywheel'].n:>4}"
        for system in SYSTEMS:
            tally = tallies[system]
            share = 100 * tally.false_positives / tally.n if tally.n else 0.0
            cells = f"{100 * tally.accuracy:5.1f} {tally.false_positives:3} {share:4.1f} {tally.false_negatives:3}"
            row += f" | {cells:>24}"
        print(row)
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--cases", nargs="+", default=DEFAULT_CASES, help="JSONL case files, relative to the repository root"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5.0, help="hard wall-clock limit per case, seconds")
    parser.add_argument(
        "--show-errors", action="store_true", help="print every case flywheel gets wrong, held-out half excepted"
    )
    parser.add_argument(
        "--tuning", action="store_true", help="leave held-out halves out entirely (while changing the verifier)"
    )
    args = parser.parse_args()
    paths = [Path(name) if Path(name).is_absolute() else REPO / name for name in args.cases]
    for path in paths:
        if not path.is_file():
            raise SystemExit(f"case file not found: {path} (pass --cases)")
    sets = case_sets(paths, load_policy_overlay(REPO / POLICY_OVERLAY))
    if args.tuning:
        sets = [case_set for case_set in sets if case_set.tuning]
    cases = [case for case_set in sets for case in case_set.cases]

    VERIFIERS["bench-math-verify"] = math_verify_default
    VERIFIERS["bench-math-verify-wrapped"] = math_verify_wrapped
    VERSIONS["bench-math-verify"] = VERSIONS["bench-math-verify-wrapped"] = "0.9.0"

    results: dict[str, tuple[list[Verdict], float]] = {}
    with VerifierPool(workers=args.workers, timeout_s=args.timeout) as pool:
        for system, verifier in SYSTEMS.items():
            results[system] = run_system(pool, verifier, cases)

    print(f"{len(cases)} cases, {args.workers} worker processes, timeout {args.timeout:g}s per case\n")
    totals: dict[str, dict[str, Tally]] = {}
    offset = 0
    for case_set in sets:
        size = len(case_set.cases)
        verdicts = {system: results[system][0][offset : offset + size] for system in SYSTEMS}
        totals[case_set.name] = print_categories(case_set, verdicts)
        if args.show_errors and case_set.tuning:
            for case, verdict in zip(case_set.cases, verdicts["flywheel"], strict=True):
                if verdict.correct is not case["expected"]:
                    policy = f" [policy: {case['policy']}]" if case.get("policy") else ""
                    print(f"  {case.get('id')}: expected {case['expected']}, got {verdict.correct}{policy}")
                    print(f"    gold {case['gold']!r} prediction {case['prediction'][-120:]!r} ({verdict.reason})")
            print()
        offset += size
    print_summary(totals)
    for system, (_, seconds) in results.items():
        timeouts = sum(verdict.timed_out for verdict in results[system][0])
        print(f"{system:26} {len(cases) / seconds:8.1f} cases/s   hard timeouts: {timeouts}")
    ours = len(cases) / results["flywheel"][1]
    for system in BASELINES:
        print(f"speed ratio flywheel / {system}: {ours / (len(cases) / results[system][1]):.2f}x")


if __name__ == "__main__":
    main()
