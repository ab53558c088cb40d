"""`flywheel verify FILE`: judge a user's own JSONL/Parquet file of completions with one of flywheel's verifiers.

Each row needs a completion (`--completion-field`, default `completion`) and the gold side its verifier reads
(`--gold-field`, default the verifier's own key: `answer` for math, `tests` for code, `metadata` for
countdown and reasoning_gym); the other fields of the row are passed along as the problem. Every row goes
through the verifier pool (hard timeout per row). The file is written back with verdict columns
(`verdict_correct`, `verdict_reward`, `verdict_extracted`, `verdict_reason`, `verdict_timed_out`,
`verdict_verifier`, `verdict_version`) to `--out`, or next to the input as `NAME.verified.SUFFIX`; the input
itself is never overwritten. With `--against math-verify` (math only) each row is also judged by Hugging
Face `math-verify` (`against_correct`), and an agreement table and the rows where the two disagree are
printed.

What it does not do: change or cache anything of a run store, or judge rows without a verifier.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.record_files import read_records, write_records
from storage.store import StoreError
from verifiers import VERIFIERS, VERSIONS, get_verifier
from verifiers.pool import VerifierPool, VerifyCall
from verifiers.verdict import Verdict

GOLD_KEYS = {
    "math": "answer",
    "math_expressions": "answer",
    "code": "tests",
    "countdown": "metadata",
    "reasoning_gym": "metadata",
}
AGAINST = {"math-verify": "against-math-verify"}
MATH_VERIFY_VERSION = "0.9.0"
SHOWN_DISAGREEMENTS = 20


@dataclass(frozen=True)
class VerifyFileResult:
    out: Path
    jsonl: bool
    rows: int
    correct: int
    wrong: int
    cannot_judge: int
    agreement: Counter[tuple[bool | None, bool | None]] | None  # (flywheel, other) -> rows
    # (line or row number, gold, extracted answer, flywheel's verdict, the other's verdict)
    disagreements: list[tuple[int, str, str | None, bool | None, bool | None]]


def default_output(path: Path) -> Path:
    return path.with_name(f"{path.stem}.verified{path.suffix}")


def verify_file(
    path: Path,
    domain: str,
    *,
    gold_field: str | None = None,
    completion_field: str = "completion",
    against: str | None = None,
    out: Path | None = None,
    workers: int = 2,
    timeout_s: float = 5.0,
) -> VerifyFileResult:
    """Judge every row of `path` and write the file with verdict columns; StoreError/ValueError on bad input."""
    get_verifier(domain, where="--domain")
    if against is not None and (against not in AGAINST or GOLD_KEYS.get(domain) != "answer"):
        raise ValueError(f"--against {against!r}: only 'math-verify', with a math domain, is supported")
    gold_key = GOLD_KEYS.get(domain)
    gold_field = gold_field or gold_key
    out = out or default_output(path)
    if out.resolve() == path.resolve():
        raise StoreError(f"{out}: refusing to overwrite the input file; choose another output path")
    numbered = read_records(path)
    if not numbered:
        raise StoreError(f"{path}: no rows")
    records = [record for _, record in numbered]
    calls = []
    for number, record in numbered:
        completion = record.get(completion_field)
        if not isinstance(completion, str):
            raise StoreError(f"{_where(path, number)}: field {completion_field!r} {_problem_with(completion)}")
        problem = dict(record)
        if gold_field is not None:
            if record.get(gold_field) is None:
                raise StoreError(f"{_where(path, number)}: field {gold_field!r} is missing or null")
            problem[gold_key or gold_field] = record[gold_field]
        calls.append((completion, problem))
    if against is not None:
        VERIFIERS[AGAINST[against]] = math_verify
        VERSIONS[AGAINST[against]] = MATH_VERIFY_VERSION
    with VerifierPool(workers=min(workers, len(calls)), timeout_s=timeout_s) as pool:
        if against is not None:  # its first call in a worker imports it: keep that out of the rows' time limit
            pool.verify_batch([VerifyCall(AGAINST[against], "\\boxed{1}", {"answer": "1"})] * 2 * pool.size)
        ours = pool.verify_batch([VerifyCall(domain, completion, problem) for completion, problem in calls])
        theirs = (
            pool.verify_batch([VerifyCall(AGAINST[against], completion, problem) for completion, problem in calls])
            if against is not None
            else None
        )
    rows = [_with_verdict(record, verdict) for record, verdict in zip(records, ours, strict=True)]
    if theirs is not None:
        for row, verdict in zip(rows, theirs, strict=True):
            row["against_correct"] = verdict.correct
    write_records(out, rows, refuse=path)
    agreement, disagreements = None, []
    if theirs is not None:
        agreement = Counter((a.correct, b.correct) for a, b in zip(ours, theirs, strict=True))
        for (number, _), a, b, (_, problem) in zip(numbered, ours, theirs, calls, strict=True):
            if a.correct != b.correct:
                disagreements.append(
                    (number, str(problem.get(gold_key or "answer")), a.extracted, a.correct, b.correct)
                )
    counts = Counter(verdict.correct for verdict in ours)
    jsonl = path.suffix.lower() != ".parquet"
    return VerifyFileResult(out, jsonl, len(rows), counts[True], counts[False], counts[None], agreement, disagreements)


def format_result(result: VerifyFileResult, domain: str, against: str | None) -> str:
    lines = [
        f"{result.rows} rows judged by {domain} {VERSIONS[domain]}: {result.correct} correct, {result.wrong} wrong, "
        f"{result.cannot_judge} cannot judge",
        f"written to {result.out}",
    ]
    if result.agreement is not None and against is not None:
        agreed = sum(n for (a, b), n in result.agreement.items() if a == b)
        lines += ["", f"agreement with {against}: {agreed}/{result.rows} ({100 * agreed / result.rows:.1f}%)"]
        lines.append(f"{'flywheel':>14} | {against + ' correct':>22} {against + ' wrong':>22}")
        for ours in (True, False, None):
            label = {True: "correct", False: "wrong", None: "cannot judge"}[ours]
            cells = [result.agreement.get((ours, theirs), 0) for theirs in (True, False)]
            lines.append(f"{label:>14} | {cells[0]:>22} {cells[1]:>22}")
        if result.disagreements:
            lines += ["", f"rows where they disagree ({len(result.disagreements)}):"]
            for number, gold, extracted, ours, theirs in result.disagreements[:SHOWN_DISAGREEMENTS]:
                where = f"{'line' if result.jsonl else 'row'} {number}"
                lines.append(
                    f"  {where}: gold {gold[:40]!r}, answer {(extracted or '')[:40]!r}: "
                    f"flywheel {_word(ours)}, {against} {_word(theirs)}"
                )
            if len(result.disagreements) > SHOWN_DISAGREEMENTS:
                lines.append(f"  ... and {len(result.disagreements) - SHOWN_DISAGREEMENTS} more in the output file")
    return "\n".join(lines)


def math_verify(completion: str, problem: Any) -> Verdict:
    """Hugging Face math-verify's default call on the row (its LaTeX extractor needs `$` around bare text)."""
    from math_verify import parse, verify

    gold = str(problem["answer"])
    wrapped = gold if any(mark in gold for mark in ("$", "\\(", "\\[", "\\boxed")) else f"${gold}$"
    # No signal.alarm timeouts of math-verify's own: the verifier pool's hard per-call limit bounds the call, and
    # alarms of a few seconds turn a slow call on a busy machine into a silent "wrong".
    correct = bool(
        verify(parse(wrapped, parsing_timeout=None), parse(completion, parsing_timeout=None), timeout_seconds=None)
    )
    return Verdict(correct, float(correct), None, "math-verify", "against-math-verify", MATH_VERIFY_VERSION)


def _with_verdict(record: dict[str, Any], verdict: Verdict) -> dict[str, Any]:
    return {
        **record,
        "verdict_correct": verdict.correct,
        "verdict_reward": verdict.reward,
        "verdict_extracted": verdict.extracted,
        "verdict_reason": verdict.reason,
        "verdict_timed_out": verdict.timed_out,
        "verdict_verifier": verdict.verifier,
        "verdict_version": verdict.verifier_version,
    }


def _where(path: Path, number: int) -> str:
    return f"{path}:{number}" if path.suffix.lower() != ".parquet" else f"{path}: row {number}"


def _problem_with(value: Any) -> str:
    return "is missing" if value is None else f"must be a string, got {type(value).__name__}"


def _word(correct: bool | None) -> str:
    return {True: "correct", False: "wrong", None: "cannot judge"}[correct]
