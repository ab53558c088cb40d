"""The persistent verdict cache of a run: verdicts already computed, by verifier and verifier version.

Layout: `<run>/verdicts/<verifier>-<version>/<sha256>.parquet`, one folder per verifier version (a new version
starts an empty folder; the old one stays for the record). Each file is a batch of verdicts appended at once and
is named by the sha256 of its bytes: files are only ever added (atomically), never rewritten, so two writers
need no lock and a reader sees whole files only; a file whose bytes do not match its name was damaged, and is
an error naming it. The rows' `verifier` and `verifier_version` must match their folder.

What it does not do: decide what a verdict's key is or which verdicts are worth keeping (flows/verdicts.py),
compact the batches, or drop old versions.
"""

from __future__ import annotations

import hashlib
import re

import pyarrow as pa

from storage.store import FileRecord, RunStore, StoreError, StoreIntegrityError, parquet_bytes

VERDICTS = "verdicts"
_NAME_PART = re.compile(r"[A-Za-z0-9_.+]+")
_BATCH = re.compile(r"([0-9a-f]{64})\.parquet")


def verdict_folder(verifier: str, version: str) -> str:
    """The folder of one verifier version, relative to the run folder."""
    for what, value in (("verifier", verifier), ("verifier version", version)):
        if not _NAME_PART.fullmatch(value):
            raise StoreError(f"{what} {value!r} cannot name a verdict cache folder (letters, digits, _ . + only)")
    return f"{VERDICTS}/{verifier}-{version}"


def read_verdicts(store: RunStore, verifier: str, version: str, schema: pa.Schema) -> pa.Table:
    """Every stored verdict of `verifier` at `version` (an empty table when none), each batch checked."""
    folder = verdict_folder(verifier, version)
    tables = []
    for name in _batches(store, folder):
        problem = _batch_problem(store, f"{folder}/{name}", hashes=True)
        if problem is not None:
            raise StoreIntegrityError(problem)
        table = store.read_run_table(f"{folder}/{name}", schema)
        wrong = {
            (row["verifier"], row["verifier_version"])
            for row in table.select(["verifier", "verifier_version"]).to_pylist()
        } - {(verifier, version)}
        if wrong:
            raise StoreError(
                f"{store.run_location(f'{folder}/{name}')}: holds verdicts of {sorted(wrong)}, not of {verifier} "
                f"{version}; {_fix(store, folder, name)}"
            )
        tables.append(table)
    return pa.concat_tables(tables) if tables else schema.empty_table()


def append_verdicts(store: RunStore, verifier: str, version: str, table: pa.Table) -> FileRecord | None:
    """Add a batch of verdicts of `verifier` at `version`; None when the table is empty. A batch already
    there (the same bytes) is not written twice."""
    if table.num_rows == 0:
        return None
    data = parquet_bytes(table)
    relative = f"{verdict_folder(verifier, version)}/{hashlib.sha256(data).hexdigest()}.parquet"
    if store.run_path_exists(relative):
        return FileRecord(relative, table.num_rows, len(data), hashlib.sha256(data).hexdigest())
    return store.write_run_bytes(relative, data, rows=table.num_rows)


def verdict_files(store: RunStore) -> list[str]:
    """Every batch file of the cache, relative to the run folder."""
    return [
        f"{VERDICTS}/{folder}/{name}"
        for folder in store.list_folder(VERDICTS)
        for name in _batches(store, f"{VERDICTS}/{folder}")
    ]


def verdict_problems(store: RunStore, hashes: bool = True) -> list[str]:
    """Every damaged batch file of the cache, one line each (with `hashes=False` only unreadable names)."""
    problems = []
    for folder in store.list_folder(VERDICTS):
        for name in store.list_folder(f"{VERDICTS}/{folder}"):
            relative = f"{VERDICTS}/{folder}/{name}"
            if name.startswith("."):
                continue  # a batch being written, or left by a writer that died: never read
            if not _BATCH.fullmatch(name):
                problems.append(
                    f"{store.run_location(relative)}: not a verdict batch (expected <sha256>.parquet); "
                    f"{_fix(store, f'{VERDICTS}/{folder}', name)}"
                )
            elif (problem := _batch_problem(store, relative, hashes)) is not None:
                problems.append(problem)
    return problems


def _batches(store: RunStore, folder: str) -> list[str]:
    return [name for name in store.list_folder(folder) if _BATCH.fullmatch(name)]


def _batch_problem(store: RunStore, relative: str, hashes: bool) -> str | None:
    if not hashes:
        return None
    found = store.run_file_digest(relative)
    expected = relative.rsplit("/", 1)[-1].removesuffix(".parquet")
    if found == expected:
        return None
    folder, name = relative.rsplit("/", 1)
    return (
        f"{store.run_location(relative)} has sha256 {found}, its name records {expected}: the verdict batch was "
        f"modified; {_fix(store, folder, name)}"
    )


def _fix(store: RunStore, folder: str, name: str) -> str:
    return (
        f"delete {store.run_location(f'{folder}/{name}')}: the cache only saves verifier calls, and the next "
        "rescore judges those answers again"
    )
