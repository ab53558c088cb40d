"""Export a committed round's table as a Hugging Face dataset: Parquet data plus a dataset card.

`export_to_dir` writes `DIR/data/train-00000-of-00001.parquet` with `datasets` and then `DIR/README.md`, a
dataset card; `datasets.load_dataset(DIR)` finds the file by its name as the `train` split and reads the same
rows and columns back; the card names the run, round, table, config hash, models and row count, and is written
last, so its presence means the export completed. `export_to_hub` pushes the same with
`Dataset.push_to_hub` and uploads the card; it needs a token (HF_TOKEN or `hf auth login`) and says so
before any network call when there is none. The run store is only read; nothing is converted or filtered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.inspect import read_round_table, round_tables
from storage import RunStore, StoreError
from storage.exports import is_new_or_empty, write_dataset_folder

SPLIT = "train"
DATA_FILE = f"data/{SPLIT}-00000-of-00001.parquet"


class ExportError(RuntimeError):
    """An export that cannot be done as asked; the message says what to change."""


def export_to_dir(store: RunStore, round_id: int, table_name: str, target: Path) -> int:
    """Write the round's table under `target` (new or empty) as a loadable dataset; returns its row count."""
    if not is_new_or_empty(target):
        raise ExportError(f"export target {target} exists and is not an empty folder; choose a new folder")
    dataset, manifest = _round_dataset(store, round_id, table_name)
    write_dataset_folder(
        target, DATA_FILE, dataset, _card(store.run_name, round_id, table_name, manifest, dataset.num_rows)
    )
    return dataset.num_rows


def hub_token() -> str:
    """The Hugging Face token from HF_TOKEN or a saved login; an ExportError says how to log in if none."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise ExportError(
            "no Hugging Face token: set HF_TOKEN=<token> or run `hf auth login` (`huggingface-cli login` in older "
            "huggingface_hub releases); create a write token at https://huggingface.co/settings/tokens"
        )
    return token


def export_to_hub(store: RunStore, round_id: int, table_name: str, repo_id: str, private: bool = False) -> str:
    """Push the round's table and its card to the hub dataset repo `repo_id`; returns the repo's URL."""
    token = hub_token()
    dataset, manifest = _round_dataset(store, round_id, table_name)
    message = f"flywheel: {store.run_name} round {round_id} {table_name}"
    dataset.push_to_hub(repo_id, split=SPLIT, token=token, private=private, commit_message=message)
    card = _card(store.run_name, round_id, table_name, manifest, dataset.num_rows)
    card.push_to_hub(repo_id, token=token, repo_type="dataset", commit_message=f"{message}: dataset card")
    return f"https://huggingface.co/datasets/{repo_id}"


def _round_dataset(store: RunStore, round_id: int, table_name: str) -> tuple[Any, dict[str, Any]]:
    from datasets import Dataset

    manifest = store.read_manifest(round_id)
    table = read_round_table(store, round_id, table_name)
    if table is None:
        raise StoreError(
            f"round {round_id} of run {store.run_name!r} has no {table_name} table "
            f"(tables it lists: {', '.join(round_tables(store, round_id)) or 'none'})"
        )
    return Dataset(table), manifest


def _card(run: str, round_id: int, table_name: str, manifest: dict[str, Any], rows: int) -> Any:
    from huggingface_hub import DatasetCard, DatasetCardData

    model = (manifest.get("config") or {}).get("model") or {}
    base_model = model.get("path") or (f"init:{model['init']}" if model.get("init") else None)
    data = DatasetCardData(
        pretty_name=f"flywheel {run} round {round_id} {table_name}",
        tags=["flywheel", "synthetic", "reasoning"],
    )  # no `configs:` list: `datasets` finds data/train-* itself, and a configs list makes it reuse a cached
    # copy of any earlier folder of the same name (its cache key then ignores the files' paths and times)
    facts = {
        "run": run,
        "round": round_id,
        "table": table_name,
        "rows": rows,
        "config hash": manifest.get("config_hash"),
        "base model": base_model,
        "model in (sampled this round's traces)": manifest.get("model_in"),
        "model out (trained in this round)": manifest.get("model_out"),
        "committed at": manifest.get("committed_at"),
    }
    body = "\n".join(f"- **{name}**: `{value}`" for name, value in facts.items())
    text = (
        f"---\n{data.to_yaml()}\n---\n\n# {run}: round {round_id}, `{table_name}`\n\n"
        f"Exported from a flywheel run store; the round's `manifest.json` holds the full config and every "
        f"file's sha256.\n\n{body}\n\n```python\nimport datasets\nds = datasets.load_dataset(\"<this folder or "
        f'repo>", split="{SPLIT}")\n```\n'
    )
    return DatasetCard(text)
