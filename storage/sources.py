"""Read external problem sources (hub datasets or local files) through `datasets.load_dataset`."""

from __future__ import annotations

from typing import Any

from configs import DatasetSourceConfig
from storage.store import StoreError


def load_source_records(config: DatasetSourceConfig) -> dict[str, list[dict[str, Any]]]:
    """Rows of each configured split, keyed by flywheel split name (`seed`, `train`, `test`)."""
    from datasets import load_dataset

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
