"""Read and write a user's own table of records: JSON Lines (`.jsonl`, `.json`) or Parquet (`.parquet`).

Reading names the file and line (JSONL) of anything that is not a record; writing goes to a temporary file
in the target folder and is renamed into place, so a crash never leaves a partial file under the final name.
What it does not do: other formats, remote paths, or writing over the file that was read (callers choose a
new path; `write_records` refuses `refuse` when given).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from storage.store import StoreError

JSONL_SUFFIXES = (".jsonl", ".json")
PARQUET_SUFFIXES = (".parquet",)


def read_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Every record of `path` in order, with its line (JSONL) or row (Parquet) number from 1; StoreError
    naming the file (and line) when one cannot be read."""
    kind = _kind(path)
    if not path.is_file():
        raise StoreError(f"{path}: no such file")
    if kind == "parquet":
        try:
            return list(enumerate(pq.read_table(path).to_pylist(), start=1))
        except (pa.ArrowException, OSError) as error:
            raise StoreError(f"{path}: not a readable Parquet file ({error})") from error
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise StoreError(f"{path}: not UTF-8 text ({error})") from error
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise StoreError(f"{path}:{number}: not valid JSON ({error.msg} at column {error.colno})") from None
        if not isinstance(record, dict):
            raise StoreError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        records.append((number, record))
    return records


def write_records(path: Path, records: list[dict[str, Any]], refuse: Path | None = None) -> None:
    """Write `records` to `path` in the format its suffix names, atomically; never onto `refuse`."""
    kind = _kind(path)
    if refuse is not None and path.resolve() == refuse.resolve():
        raise StoreError(f"{path}: refusing to overwrite the input file; choose another output path")
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            if kind == "parquet":
                pq.write_table(pa.Table.from_pylist(records), stream)
            else:
                for record in records:
                    stream.write(json.dumps(record, ensure_ascii=False, default=str).encode() + b"\n")
        os.replace(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.unlink(staging)
        raise


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    known = ", ".join(JSONL_SUFFIXES + PARQUET_SUFFIXES)
    raise StoreError(f"{path}: unknown file type {suffix or '(none)'!r}; use one of {known}")
