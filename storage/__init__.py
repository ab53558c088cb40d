"""The run store: paths, atomic Parquet/JSON writes, manifests, commits. The only package that opens files."""

from storage.lock import LockError, RunLock
from storage.sources import load_source_records
from storage.store import FileRecord, RunStore, StoreError, StoreIntegrityError, round_name

__all__ = [
    "FileRecord",
    "LockError",
    "RunLock",
    "RunStore",
    "StoreError",
    "StoreIntegrityError",
    "load_source_records",
    "round_name",
]
