"""A round's table written out as a Hugging Face dataset folder: the Parquet data file, then the dataset card.

What goes in (the rows, the card's text) is decided by flows/export.py; this module only writes, into a folder
that must be new or empty, the card last so that its presence means the export completed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def is_new_or_empty(target: Path) -> bool:
    """Whether `target` does not exist yet, or is an empty folder."""
    return not target.exists() or (target.is_dir() and not any(target.iterdir()))


def write_dataset_folder(target: Path, data_file: str, dataset: Any, card: Any) -> None:
    """Write `dataset` (a `datasets.Dataset`) as `target/data_file` and `card` (a `DatasetCard`) as README.md."""
    (target / data_file).parent.mkdir(parents=True, exist_ok=True)
    dataset.to_parquet(str(target / data_file))
    card.save(str(target / "README.md"))
