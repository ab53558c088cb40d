"""Rescores: a committed round re-judged later, stored beside the round, never inside it.

Layout: `<run>/rescores/rNNNN-<key>/` holds the rescore's tables (`<name>.parquet`) and `manifest.json`, written
last, so its presence means the rescore is complete. The manifest lists every file with its rows, size and
sha256, carries its own hash (`manifest_sha256`) like a round's manifest, and records the hash of the round
manifest it was computed from (`source_manifest_sha256`): a rescore is of one committed round, not of whatever
later holds its number. `key` is the caller's (flows/rescore.py hashes the verifier versions and settings into
it), so one rescore is written once and then immutable. The round's folder and manifest are only read.

Reads check what they read (manifest hash, then each file's size and sha256); `rescore_problems` lists every
problem of every rescore for `flywheel check`. A folder without a manifest is an interrupted rescore: it is
not listed, not checked, and written over by the next rescore with the same key.

What it does not do: decide what a rescore holds, or judge anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import pyarrow as pa

from storage.store import (
    MANIFEST,
    RESCORES,
    SELF_HASH,
    FileRecord,
    RunStore,
    StoreError,
    StoreIntegrityError,
    manifest_digest,
    round_name,
)

KEY_PATTERN = re.compile(r"[0-9a-f]{6,64}")
FOLDER_PATTERN = re.compile(r"r(\d{4,})-([0-9a-f]{6,64})")


def rescore_folder(round_id: int, key: str) -> str:
    """The rescore's folder, relative to the run folder."""
    if not KEY_PATTERN.fullmatch(key):
        raise StoreError(f"rescore key {key!r}: expected 6 to 64 lowercase hex digits")
    return f"{RESCORES}/{round_name(round_id)}-{key}"


def is_rescored(store: RunStore, round_id: int, key: str) -> bool:
    return store.run_path_exists(f"{rescore_folder(round_id, key)}/{MANIFEST}")


def rescores_of(store: RunStore, round_id: int | None = None) -> list[tuple[int, str]]:
    """(round, key) of every complete rescore of the run, or of one round, in order."""
    found = []
    for name in store.list_folder(RESCORES):
        match = FOLDER_PATTERN.fullmatch(name)
        if match and store.run_path_exists(f"{RESCORES}/{name}/{MANIFEST}"):
            number = int(match.group(1))
            if round_id is None or number == round_id:
                found.append((number, match.group(2)))
    return sorted(found)


def write_rescore(
    store: RunStore, round_id: int, key: str, tables: Mapping[str, pa.Table], body: Mapping[str, Any]
) -> dict[str, Any]:
    """Write the tables, then the manifest (`body` plus round, key, source hash, files, own hash); returns it."""
    folder = rescore_folder(round_id, key)
    source = store.read_manifest(round_id)  # a StoreError unless the round is committed and intact
    if is_rescored(store, round_id, key):
        raise StoreError(f"{store.run_location(folder)} exists already: a rescore is written once")
    files = []
    for name, table in tables.items():
        written = store.write_run_table(f"{folder}/{name}.parquet", table)
        files.append(FileRecord(f"{name}.parquet", written.rows, written.bytes, written.sha256))
    manifest: dict[str, Any] = {
        **body,
        "round": round_id,
        "rescore": key,
        "source_manifest_sha256": manifest_digest(source),
        "files": [asdict(record) for record in files],
    }
    manifest[SELF_HASH] = manifest_digest(manifest)
    store.write_run_json(f"{folder}/{MANIFEST}", manifest)
    return manifest


def read_rescore(store: RunStore, round_id: int, key: str, hashes: bool = True) -> dict[str, Any]:
    """A complete rescore's manifest, after checking it and every file it lists; StoreIntegrityError if not."""
    problems = _problems(store, round_id, key, hashes)
    if problems:
        raise StoreIntegrityError("\n  ".join(problems))
    return store.read_run_json(f"{rescore_folder(round_id, key)}/{MANIFEST}", _fix(store, round_id, key))


def read_rescore_table(store: RunStore, round_id: int, key: str, name: str, schema: pa.Schema) -> pa.Table:
    """One table of a rescore, checked against the rescore's manifest first."""
    manifest = read_rescore(store, round_id, key)
    folder = rescore_folder(round_id, key)
    if f"{name}.parquet" not in {entry["path"] for entry in manifest["files"]}:
        raise StoreError(f"{store.run_location(folder)} has no {name} table (its manifest does not list it)")
    return store.read_run_table(f"{folder}/{name}.parquet", schema)


def rescore_problems(store: RunStore, rounds: list[int] | None = None, hashes: bool = True) -> list[str]:
    """Every problem of the run's rescores (of `rounds` only, when given), one line each."""
    return [
        problem
        for number, key in rescores_of(store)
        if rounds is None or number in rounds
        for problem in _problems(store, number, key, hashes)
    ]


def _problems(store: RunStore, round_id: int, key: str, hashes: bool) -> list[str]:
    folder = rescore_folder(round_id, key)
    path = store.run_location(f"{folder}/{MANIFEST}")
    fix = _fix(store, round_id, key)
    if not store.run_path_exists(f"{folder}/{MANIFEST}"):
        return [f"{path} is missing: round {round_id} has no complete rescore {key}"]
    try:
        body = store.read_run_json(f"{folder}/{MANIFEST}", fix)
    except StoreError as error:
        return [str(error)]
    if body.get(SELF_HASH) != manifest_digest(body):
        return [
            f"{path}: its content does not match its {SELF_HASH} (expected {body.get(SELF_HASH)}, found "
            f"{manifest_digest(body)}): the manifest was edited or damaged; {fix}"
        ]
    structure = _structure_problems(body, round_id, key)
    if structure:
        return [f"{path}: {'; '.join(structure)}; {fix}"]
    problems = []
    if not store.is_committed(round_id):
        problems.append(f"{path}: it rescores round {round_id}, which is not committed; {fix}")
    else:
        try:
            source = manifest_digest(store.read_manifest(round_id))
        except StoreError:
            source = None  # the round's own problem is listed by the round's check
        if source is not None and source != body["source_manifest_sha256"]:
            problems.append(
                f"{path}: it rescores another round {round_id} (manifest sha256 {body['source_manifest_sha256']}, "
                f"the committed one has {source}); {fix}"
            )
    for entry in body["files"]:
        problem = store.run_file_problem(f"{folder}/{entry['path']}", FileRecord(**entry), hashes)
        if problem is not None:
            problems.append(f"{problem}; {fix}")
    return problems


def _structure_problems(body: dict[str, Any], round_id: int, key: str) -> list[str]:
    problems = []
    if body.get("round") != round_id:
        problems.append(f"'round' is {body.get('round')!r}, expected {round_id}")
    if body.get("rescore") != key:
        problems.append(f"'rescore' is {body.get('rescore')!r}, expected {key!r}")
    if not isinstance(body.get("source_manifest_sha256"), str):
        problems.append("'source_manifest_sha256' is missing")
    files = body.get("files")
    if not isinstance(files, list):
        return [*problems, f"'files' must be a list, found {type(files).__name__}"]
    for position, entry in enumerate(files):
        if not isinstance(entry, dict) or set(entry) != {"path", "rows", "bytes", "sha256"}:
            problems.append(f"file entry {position} must have exactly path, rows, bytes, sha256: {entry!r}")
        elif not (isinstance(entry["path"], str) and "/" not in entry["path"] and isinstance(entry["bytes"], int)):
            problems.append(f"file entry {position} has a field of the wrong type: {entry!r}")
    return problems


def _fix(store: RunStore, round_id: int, key: str) -> str:
    return (
        f"delete {store.run_location(rescore_folder(round_id, key))} and run "
        f"`flywheel rescore {store.run_name} {round_id}` again"
    )
