"""What the store answers about a run's layout: which tables a round has, ancestors' tables, a training phase's
scratch files, model folders."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import torch

from stages.tiny_model import build_tiny_arithmetic_model
from storage import RunStore, StoreError
from storage.exports import is_new_or_empty
from storage.models import load_model, save_model_folder
from storage.store import lists_table

SCHEMA = pa.schema([pa.field("problem_id", pa.string())])


def _table(*ids: str) -> pa.Table:
    return pa.table({"problem_id": list(ids)}, schema=SCHEMA)


def _commit(store: RunStore, round_id: int, tables: dict[str, pa.Table], parts: int = 0) -> None:
    store.begin_round(round_id)
    files = [store.write_table(round_id, name, table) for name, table in tables.items()]
    files += [store.write_traces_part(round_id, part, _table(f"t{part}")) for part in range(parts)]
    store.commit(round_id, {}, files)


def test_a_round_has_the_tables_its_manifest_lists(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path), "run")
    _commit(store, 0, {"dataset": _table("a")})
    _commit(store, 1, {"difficulty": _table("b")}, parts=2)
    assert store.has_table(0, "dataset") and not store.has_table(0, "difficulty")
    assert store.has_table(1, "difficulty") and not store.has_parts(0) and store.has_parts(1)
    assert not store.has_table(1, "traces")  # parts are not a table
    with pytest.raises(StoreError, match="not committed"):
        store.has_table(2, "dataset")


def test_ancestor_tables_skip_rounds_without_the_table(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path), "run")
    _commit(store, 0, {"dataset": _table("a")})
    _commit(store, 1, {"problems": _table("x")})
    _commit(store, 2, {"dataset": _table("b", "c")})
    tables = store.ancestor_tables("dataset", range(0, 3), SCHEMA)
    assert [table.column("problem_id").to_pylist() for table in tables] == [["a"], ["b", "c"]]
    assert store.ancestor_tables("dataset", range(1, 2), SCHEMA) == []


def test_lists_table_reads_file_records_of_a_round_not_yet_committed(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path), "run")
    store.begin_round(0)
    files = [store.write_table(0, "difficulty", _table("a")), store.write_traces_part(0, 0, _table("b"))]
    assert lists_table(files, "difficulty") and not lists_table(files, "dropped") and not lists_table(files, "traces")


def test_phase_files_live_in_the_rounds_scratch_folder(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path), "run")
    store.begin_round(3)
    files = store.phase_files(3, "grpo")
    scratch = store.scratch_dir(3)
    assert Path(scratch).is_dir() and scratch == store.round_path(3, ".scratch")
    assert (files.checkpoints, files.job, files.result, files.initial_model) == (
        f"{scratch}/grpo", f"{scratch}/grpo-job.json", f"{scratch}/grpo-model", f"{scratch}/initial-model"
    )  # fmt: skip


def test_a_model_saved_as_a_folder_loads_back_the_same(tmp_path: Path) -> None:
    model, tokenizer = build_tiny_arithmetic_model(seed=0)
    folder = save_model_folder(str(tmp_path / "model"), model, tokenizer)
    assert not Path(f"{folder}.staging").exists()
    loaded, loaded_tokenizer = load_model(folder)
    assert loaded_tokenizer.encode("12+34=") == tokenizer.encode("12+34=")
    for name, weight in model.state_dict().items():
        assert torch.equal(weight, loaded.state_dict()[name].to(weight.dtype)), name


def test_an_export_target_must_be_new_or_empty(tmp_path: Path) -> None:
    assert is_new_or_empty(tmp_path / "new") and is_new_or_empty(tmp_path)
    (tmp_path / "file").write_text("x")
    assert not is_new_or_empty(tmp_path) and not is_new_or_empty(tmp_path / "file")
