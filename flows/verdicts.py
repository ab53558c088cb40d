"""The run's persistent verdict cache: load the stored verdicts of the verifier versions in use into a
`verifiers.cache.VerdictCache`, and store the ones judged since (files: storage/verdicts.py).

A verdict is kept under (verifier, verifier version, answer key, gold): for math the answer key is the extracted
final answer, for other verifiers the whole completion (verifiers/cache.py). Kept are verdicts that judged
(`correct` true or false). Not kept: timed-out verdicts (the in-memory cache never holds them) and "cannot judge"
ones, which depend on the worker as much as on the answer (its memory limit, a crash); both are judged again.

Used by `flywheel rescore` (flows/rescore.py). The round flow does not use it yet; the two calls it needs are
`load_stored_verdicts(store, versions, VERIFIER_POOLS.cache)` before verifying a round's traces and
`save_new_verdicts(store, VERIFIER_POOLS.cache, loaded)` after.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from stages.verify import VERDICT_CACHE_SCHEMA
from storage import RunStore
from storage.verdicts import append_verdicts, read_verdicts
from verifiers.cache import VerdictCache

VerdictKey = tuple[str, str, str, str]


def load_stored_verdicts(store: RunStore, versions: Mapping[str, str], cache: VerdictCache) -> set[VerdictKey]:
    """Add the run's stored verdicts of each verifier at its version (`versions`: verifier -> version) to
    `cache`; returns their keys. A damaged batch file is a StoreIntegrityError naming it."""
    loaded: set[VerdictKey] = set()
    for verifier, version in sorted(versions.items()):
        rows = read_verdicts(store, verifier, version, VERDICT_CACHE_SCHEMA).to_pylist()
        cache.add_rows(rows)
        loaded |= {_key(row) for row in rows}
    return loaded


def save_new_verdicts(store: RunStore, cache: VerdictCache, loaded: set[VerdictKey]) -> int:
    """Store the verdicts of `cache` that judged and are not among `loaded`, one batch file per verifier
    version; returns how many were stored."""
    batches: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in cache.to_rows():
        if row["correct"] is not None and _key(row) not in loaded:
            batches[(row["verifier"], row["verifier_version"])].append(row)
    for (verifier, version), rows in sorted(batches.items()):
        append_verdicts(store, verifier, version, pa.Table.from_pylist(rows, schema=VERDICT_CACHE_SCHEMA))
    return sum(len(rows) for rows in batches.values())


def _key(row: Mapping[str, Any]) -> VerdictKey:
    return (row["verifier"], row["verifier_version"], row["answer_key"], row["gold"])
