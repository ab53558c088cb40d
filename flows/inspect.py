"""What the inspection commands show: a round's tables, and the difference between two rounds."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa

from storage import RunStore, StoreError

# Read as they were written (each stage checked its schema on the way in): these commands show the files,
# and importing the stages that declare the schemas (sympy, datasketch, ...) would cost seconds per command.
TABLES = ("dataset", "traces", "dropped", "difficulty", "eval", "problems")


def read_round_table(store: RunStore, round_id: int, name: str) -> pa.Table | None:
    """A committed round's table, or None when the round has none of that name (round 0 has no traces)."""
    if name not in TABLES:
        raise StoreError(f"unknown table {name!r}; tables: {', '.join(TABLES)}")
    if name == "traces":
        return store.read_parts(round_id) if store.has_parts(round_id, name) else None
    return store.read_table(round_id, name) if store.has_table(round_id, name) else None


def round_tables(store: RunStore, round_id: int) -> list[str]:
    """The tables (of TABLES) that committed round `round_id` has, traces as a table of parts."""
    return [name for name in TABLES if store.has_table(round_id, name) or store.has_parts(round_id, name)]


def diff_rounds(store: RunStore, first: int, second: int) -> dict[str, Any]:
    """Problems added/removed, pass-rate shifts and bucket moves of shared problems, sizes and metrics."""
    tables = {
        (round_id, name): read_round_table(store, round_id, name)
        for round_id in (first, second)
        for name in ("problems", "difficulty", "dataset", "dropped")
    }
    ids = {
        round_id: set()
        if tables[(round_id, "problems")] is None
        else set(tables[(round_id, "problems")].column("problem_id").to_pylist())
        for round_id in (first, second)
    }
    difficulty = {
        round_id: {}
        if tables[(round_id, "difficulty")] is None
        else {row["problem_id"]: row for row in tables[(round_id, "difficulty")].to_pylist()}
        for round_id in (first, second)
    }
    shared = sorted(set(difficulty[first]) & set(difficulty[second]))
    shifts = [
        difficulty[second][pid]["pass_rate"] - difficulty[first][pid]["pass_rate"]
        for pid in shared
        if difficulty[first][pid]["pass_rate"] is not None and difficulty[second][pid]["pass_rate"] is not None
    ]
    moves = Counter(
        (difficulty[first][pid]["bucket"], difficulty[second][pid]["bucket"])
        for pid in shared
        if difficulty[first][pid]["bucket"] != difficulty[second][pid]["bucket"]
    )
    metrics = {round_id: store.read_manifest(round_id)["metrics"] for round_id in (first, second)}
    return {
        "problems_added": len(ids[second] - ids[first]),
        "problems_removed": len(ids[first] - ids[second]),
        "problems_shared": len(ids[first] & ids[second]),
        "scored_in_both": len(shared),
        "pass_rate_up": sum(shift > 0 for shift in shifts),
        "pass_rate_down": sum(shift < 0 for shift in shifts),
        "mean_pass_rate_shift": sum(shifts) / len(shifts) if shifts else None,
        "bucket_moves": {f"{a} -> {b}": count for (a, b), count in sorted(moves.items())},
        "sizes": {
            name: [0 if tables[(r, name)] is None else tables[(r, name)].num_rows for r in (first, second)]
            for name in ("problems", "dataset", "dropped")
        },
        "metrics": {
            name: [metrics[first].get(name), metrics[second].get(name)]
            for name in sorted(set(metrics[first]) | set(metrics[second]))
            if name.startswith(("pass@", "maj@")) or name in ("kept", "sample_pass_rate")
        },
    }
