"""A verification cache keyed by (verifier, verifier version, answer key, gold), held in memory as rows.

What it does: `answer_key` reduces a completion to what its verdict depends on (for math: the extracted final
answer, so sixteen samples that all end in `\\boxed{42}` are judged once; for other verifiers: the whole
completion), and `gold_key` reduces a problem to the one field the verifier reads (`answer`, `tests` or
`metadata`). `VerdictCache` stores verdicts under those keys and converts to and from plain rows (one dict
per entry) so that the run store can persist it as a table. Timed-out verdicts are never stored: a timeout
says nothing about the answer. `flipped` compares old and new verdicts after a verifier upgrade.

What it does not do: read or write files (persisting the rows is the run store's job) or run verifiers.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from verifiers import math as math_verifier
from verifiers.verdict import Verdict

CACHE_FIELDS = ("verifier", "verifier_version", "answer_key", "gold", "correct", "reward", "extracted", "reason")
_NO_ANSWER = "\x00no answer"


def answer_key(verifier: str, completion: str) -> str:
    """What a verdict of `verifier` depends on, besides the problem."""
    if verifier in (math_verifier.NAME, math_verifier.EXPRESSIONS_NAME):
        extracted = math_verifier.extract_answer(completion)
        return _NO_ANSWER if extracted is None else extracted
    return completion


# The one problem field each verifier's verdict depends on (besides the completion): its gold side.
GOLD_FIELDS = {
    math_verifier.NAME: "answer",
    math_verifier.EXPRESSIONS_NAME: "answer",
    "code": "tests",
    "countdown": "metadata",  # numbers, target, use_all: `answer` is only one solution of many
    "reasoning_gym": "metadata",  # the task, its config and the entry's seed: the checker rebuilds the entry
    "format": None,  # the completion alone
}


def gold_key(verifier: str, problem: Mapping[str, Any]) -> str:
    """The gold side of a problem for `verifier`: the field its verdict reads (GOLD_FIELDS), as text; for a
    verifier not listed there, every field of the problem, so that no two problems ever share a verdict."""
    if verifier not in GOLD_FIELDS:
        return json.dumps(dict(problem), sort_keys=True, default=str)
    field = GOLD_FIELDS[verifier]
    if field is None:
        return ""
    value = problem.get(field)
    if field == "answer" and value is not None:
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class Flip:
    """One verdict that changed between two verifier versions."""

    index: int
    old_correct: bool | None
    new_correct: bool | None
    old_version: str
    new_version: str


class VerdictCache:
    """Verdicts by (verifier, version, answer key, gold); a plain dict with row conversion."""

    def __init__(self, rows: Iterable[Mapping[str, Any]] = ()) -> None:
        self._entries: dict[tuple[str, str, str, str], Verdict] = {}
        self.add_rows(rows)

    def add_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add entries from rows of CACHE_FIELDS (what `to_rows` gives); a row replaces an entry of its key."""
        for number, row in enumerate(rows):
            missing = [name for name in CACHE_FIELDS if name not in row]
            if missing:
                raise ValueError(f"verdict cache row {number}: missing field(s) {', '.join(missing)}")
            verdict = Verdict(
                row["correct"], row["reward"], row["extracted"], row["reason"], row["verifier"], row["verifier_version"]
            )
            self._entries[(row["verifier"], row["verifier_version"], row["answer_key"], row["gold"])] = verdict

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> set[tuple[str, str, str, str]]:
        """Every entry's (verifier, version, answer key, gold)."""
        return set(self._entries)

    def for_golds(self, golds: Collection[str]) -> VerdictCache:
        """A new cache holding the entries whose gold is one of `golds` (what a shard of problems can use)."""
        wanted = set(golds)
        subset = VerdictCache()
        subset._entries = {key: verdict for key, verdict in self._entries.items() if key[3] in wanted}
        return subset

    def get(self, verifier: str, version: str, key: str, gold: str) -> Verdict | None:
        return self._entries.get((verifier, version, key, gold))

    def put(self, key: str, gold: str, verdict: Verdict) -> None:
        if verdict.timed_out:
            return
        self._entries[(verdict.verifier, verdict.verifier_version, key, gold)] = verdict

    def to_rows(self, leave_out: Collection[tuple[str, str, str, str]] = ()) -> list[dict[str, Any]]:
        """One row of CACHE_FIELDS per entry, except those whose key is in `leave_out`."""
        rows = []
        for (verifier, version, key, gold), verdict in self._entries.items():
            if (verifier, version, key, gold) in leave_out:
                continue
            fields = asdict(verdict)
            rows.append(
                {"verifier": verifier, "verifier_version": version, "answer_key": key, "gold": gold}
                | {name: fields[name] for name in ("correct", "reward", "extracted", "reason")}
            )
        return rows


def flipped(old: Sequence[Verdict], new: Sequence[Verdict]) -> list[Flip]:
    """The positions whose `correct` changed between two verdict lists of the same traces."""
    if len(old) != len(new):
        raise ValueError(f"cannot compare {len(old)} old verdicts with {len(new)} new ones")
    return [
        Flip(index, before.correct, after.correct, before.verifier_version, after.verifier_version)
        for index, (before, after) in enumerate(zip(old, new, strict=True))
        if before.correct != after.correct
    ]


__all__ = ["CACHE_FIELDS", "GOLD_FIELDS", "Flip", "VerdictCache", "answer_key", "flipped", "gold_key"]
