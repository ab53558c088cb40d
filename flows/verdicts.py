"""The run's persistent verdict cache: load the stored verdicts of the verifier versions in use into a
`verifiers.cache.VerdictCache`, and store the ones judged since (files: storage/verdicts.py).

A verdict is kept under (verifier, verifier version, answer key, gold): for math the answer key is the extracted
final answer, for other verifiers the whole completion (verifiers/cache.py). Kept are verdicts that judged
(`correct` true or false). Not kept: timed-out verdicts (the in-memory cache never holds them) and "cannot judge"
ones, which depend on the worker as much as on the answer (its memory limit, a crash); both are judged again.

Used by `flywheel rescore` (flows/rescore.py, through `load_stored_verdicts` and `save_new_verdicts`) and by
every verification of a round (flows/sampling.py, through `RunVerdicts`): the sampled shards, the evaluation and
dynamic sampling's draws look each answer up here before calling a verifier, and store what was judged, so a
resumed round, a later round meeting the same answer to the same problem, or a rescore never judge again what
the same verifier version judged. GRPO's reward calls judge through it too (`kept_verdicts`, in the flow process
or in each rank of a launched training job): for math the key is the extracted final answer, so the answers the
round's sample stage judged for its GRPO problems are found there, and what training judges is stored for the
next attempt and the next round.

What it does not do: read or write files itself (storage/verdicts.py does), or decide what a verdict is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from stages.verify import VERDICT_CACHE_SCHEMA
from storage import RunStore
from storage.verdicts import append_verdicts, read_verdicts
from verifiers import VERSIONS
from verifiers.cache import VerdictCache, gold_key

VerdictKey = tuple[str, str, str, str]


def load_stored_verdicts(
    store: RunStore, versions: Mapping[str, str], cache: VerdictCache, golds: Collection[str] | None = None
) -> set[VerdictKey]:
    """Add the run's stored verdicts of each verifier at its version (`versions`: verifier -> version) to
    `cache`, only those of `golds` when given; returns their keys. A damaged batch file is a
    StoreIntegrityError naming it."""
    loaded: set[VerdictKey] = set()
    wanted = None if golds is None else pa.array(sorted(set(golds)), pa.string())
    for verifier, version in sorted(versions.items()):
        table = read_verdicts(store, verifier, version, VERDICT_CACHE_SCHEMA)
        if wanted is not None:
            table = table.filter(pc.is_in(table.column("gold"), value_set=wanted))
        rows = table.to_pylist()
        cache.add_rows(rows)
        loaded |= {_key(row) for row in rows}
    return loaded


def save_new_verdicts(store: RunStore, cache: VerdictCache, loaded: set[VerdictKey]) -> int:
    """Store the verdicts of `cache` that judged and are not among `loaded`, one batch file per verifier
    version; returns how many were stored."""
    return len(_append_judged(store, cache.to_rows(leave_out=loaded)))


class RunVerdicts:
    """The stored verdicts of a run for a set of problems, in memory, and the ones judged since.

    `cache` is what verification reads and fills; `for_shard` hands a verify task the part of it that a shard's
    problems can use (a task may run in another process); `add` takes the verdicts a task judged; `store_judged`
    stores the judged ones not stored yet, one batch per verifier version."""

    def __init__(self, store: RunStore, problems: pa.Table) -> None:
        # an unknown domain is left to verification, whose error names the problem
        versions = {domain: VERSIONS[domain] for domain in problems.column("domain").to_pylist() if domain in VERSIONS}
        self._store = store
        self.cache = VerdictCache()
        self._stored = load_stored_verdicts(store, versions, self.cache, _golds(problems))
        self.loaded = len(self._stored)
        self.stored = 0  # how many `store_judged` stored, all calls together

    def for_shard(self, problems: pa.Table) -> VerdictCache:
        return self.cache.for_golds(_golds(problems))

    def add(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self.cache.add_rows(rows)

    def store_judged(self) -> int:
        """Store the verdicts that judged (neither timed out nor "cannot judge") and are not stored yet; returns
        how many were stored."""
        stored = _append_judged(self._store, self.cache.to_rows(leave_out=self._stored))
        self._stored |= stored
        self.stored += len(stored)
        return len(stored)


@contextmanager
def kept_verdicts(store: RunStore, problems: pa.Table) -> Iterator[RunVerdicts]:
    """The run's stored verdicts for `problems`, for a block that judges through `.cache` (GRPO's rewards); what
    it judged is stored when the block ends, also when it raises: a verdict judged stays true, and a resumed phase
    finds it."""
    verdicts = RunVerdicts(store, problems)
    try:
        yield verdicts
    finally:
        verdicts.store_judged()


def _golds(problems: pa.Table) -> set[str]:
    return {gold_key(row["domain"], row) for row in problems.to_pylist()}


def _append_judged(store: RunStore, rows: Iterable[Mapping[str, Any]]) -> set[VerdictKey]:
    batches: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["correct"] is not None:
            batches[(row["verifier"], row["verifier_version"])].append(row)
    for (verifier, version), batch in sorted(batches.items()):
        append_verdicts(store, verifier, version, pa.Table.from_pylist(batch, schema=VERDICT_CACHE_SCHEMA))
    return {_key(row) for batch in batches.values() for row in batch}


def _key(row: Mapping[str, Any]) -> VerdictKey:
    return (row["verifier"], row["verifier_version"], row["answer_key"], row["gold"])
