"""Read external problem sources (hub datasets or local files) through `datasets.load_dataset`.

Local JSON Lines, JSON, CSV and Parquet files are checked first, so a bad file is an error naming the file and
its line or row (not UTF-8, a line that is not a JSON object, a row with the wrong number of cells, a field
absent from a line) rather than whatever the loader raises; `datasets` then reads them as usual.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
from typing import Any

from configs import DatasetSourceConfig
from storage.store import StoreError

LOADERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def load_source_records(config: DatasetSourceConfig) -> dict[str, list[dict[str, Any]]]:
    """Rows of each configured split, keyed by flywheel split name (`seed`, `train`, `test`)."""
    from datasets import load_dataset

    required = {config.prompt_field: "prompt_field", config.answer_field: "answer_field"}
    for path in _local_files(config.data_files):
        check_local_file(path, required)
    records: dict[str, list[dict[str, Any]]] = {}
    for split, source_split in config.splits.items():
        try:
            dataset = load_dataset(config.path, config.name, data_files=config.data_files, split=source_split)
        except Exception as error:  # datasets raises many types; all mean "this source cannot be read"
            raise StoreError(
                f"problems.dataset: cannot load split {source_split!r} of {config.path!r}"
                f" (data_files={config.data_files!r}): {type(error).__name__}: {error}"
            ) from error
        if config.max_rows_per_split is not None:
            dataset = dataset.select(range(min(config.max_rows_per_split, len(dataset))))
        records[split] = dataset.to_list()
    return records


def check_local_file(path: str, required: dict[str, str] | None = None) -> None:
    """Raise StoreError naming the file and line/row when a local problems file cannot be read as its kind.

    `required` maps field names to their config keys: a JSON line without a field the first line has is an
    error (the loader would read it as null); a field absent from the whole file is left to the caller's
    column check."""
    kind = os.path.splitext(path)[1].lower()
    if kind == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pq.read_metadata(path)
        except (pa.ArrowInvalid, OSError) as error:
            raise StoreError(f"{path}: not a readable Parquet file: {error}") from error
        return
    if kind not in LOADERS:
        return
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise StoreError(f"{path}, line {line}: not UTF-8 text (byte {error.start}: {error.reason})") from error
    if kind == ".jsonl" or (kind == ".json" and text.lstrip().startswith("{") and "\n{" in text):
        _check_json_lines(path, text, required or {})
    elif kind == ".json":
        try:
            json.loads(text)
        except json.JSONDecodeError as error:
            raise StoreError(f"{path}, line {error.lineno}: not valid JSON: {error.msg}") from error
    else:
        _check_csv(path, text)


def _check_json_lines(path: str, text: str, required: dict[str, str]) -> None:
    expected: list[str] | None = None  # the required fields the first row has
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise StoreError(f"{path}, line {number}: not valid JSON: {error.msg} (column {error.colno})") from error
        if not isinstance(row, dict):
            raise StoreError(f"{path}, line {number}: expected a JSON object, found {type(row).__name__}")
        if expected is None:
            expected = [field for field in required if field in row]
        absent = [field for field in expected if field not in row]
        if absent:
            keys = ", ".join(f"{field!r} (problems.dataset.{required[field]})" for field in absent)
            raise StoreError(f"{path}, line {number}: no field {keys}, which the first line has")


def _check_csv(path: str, text: str) -> None:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        for row in reader:
            if row and len(row) != len(header or []):
                raise StoreError(
                    f"{path}, line {reader.line_num}: {len(row)} cell(s), the header has {len(header or [])}"
                )
    except csv.Error as error:
        raise StoreError(f"{path}, line {reader.line_num}: not valid CSV: {error}") from error


def _local_files(data_files: Any) -> list[str]:
    """The existing local files among `data_files` (a path, a glob, a list, or a split -> paths mapping)."""
    if data_files is None:
        return []
    if isinstance(data_files, dict):
        return [path for value in data_files.values() for path in _local_files(value)]
    if isinstance(data_files, list):
        return [path for value in data_files for path in _local_files(value)]
    if "://" in str(data_files):
        return []
    return sorted(path for path in glob.glob(os.path.expanduser(str(data_files))) if os.path.isfile(path))
