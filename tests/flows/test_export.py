"""`flywheel export`: a committed round's table to a folder that `datasets.load_dataset` reads back, and the
token check of `--to-hub` (the push itself needs the network, which tests do not have)."""

from __future__ import annotations

from pathlib import Path

import datasets
import pyarrow as pa
import pytest

from configs import CurateConfig
from flows.cli import main
from flows.export import ExportError, hub_token
from stages.curate import DATASET_SCHEMA, DIFFICULTY_SCHEMA, DROPPED_SCHEMA, curate
from stages.evaluate import EVAL_SCHEMA, evaluate_traces
from storage import RunStore
from tests.stages.helpers import verified_traces

SCHEMAS = {"dataset": DATASET_SCHEMA, "dropped": DROPPED_SCHEMA, "difficulty": DIFFICULTY_SCHEMA, "eval": EVAL_SCHEMA}
MANIFEST = {
    "config_hash": "c0ffee" * 10,
    "config": {"model": {"path": None, "init": "tiny-arithmetic"}},
    "model_in": "round:0",
    "model_out": "round:1",
    "metrics": {},
    "timings_s": {},
}


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    """A run whose round 1 is committed with a dataset and an eval table made by the real stages."""
    store = RunStore(str(tmp_path / "runs"), "exp")
    store.create("run_name: exp\n", pa.table({"problem_id": ["p1"]}))
    traces = verified_traces(
        [
            {"problem_id": "p1", "sample_idx": 0, "completion": "46", "correct": True},
            {"problem_id": "p1", "sample_idx": 1, "completion": "45", "correct": False},
            {"problem_id": "p2", "sample_idx": 0, "completion": "7", "correct": True},
            {"problem_id": "p2", "sample_idx": 1, "completion": "17", "correct": True},
            {"problem_id": "p3", "sample_idx": 0, "completion": "x", "correct": None},
        ]
    )
    curated = curate(traces, CurateConfig(), round_id=1)
    eval_table, _ = evaluate_traces(traces, round_id=1)
    files = [store.write_table(1, "dataset", curated.dataset), store.write_table(1, "eval", eval_table)]
    store.commit(1, MANIFEST, files)
    return store


def _export(store: RunStore, *args: str) -> int:
    return main(["export", store.run_name, "1", "--store", store.url, *args])


@pytest.mark.parametrize("table", ["dataset", "eval"])
def test_exported_folder_loads_back_with_the_same_rows(
    store: RunStore, tmp_path: Path, table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "export"
    assert _export(store, "--to", str(target), "--table", table) == 0
    stored = store.read_table(1, table, SCHEMAS[table])
    assert f"exported {stored.num_rows} rows of {table} of round 1" in capsys.readouterr().out

    loaded = datasets.load_dataset(str(target), split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert loaded.num_rows == stored.num_rows > 0
    assert loaded.column_names == stored.column_names
    assert loaded.to_list() == stored.to_pylist()

    card = (target / "README.md").read_text()
    for fact in ("exp", "round 1", f"`{table}`", MANIFEST["config_hash"], "init:tiny-arithmetic", "round:1"):
        assert fact in card
    assert f"- **rows**: `{stored.num_rows}`" in card


def test_two_exports_in_folders_of_the_same_name_load_their_own_rows(store: RunStore, tmp_path: Path) -> None:
    """`datasets` caches a local folder by its name; the card must not make it hand back the other export."""
    cache = str(tmp_path / "hf-cache")
    for table in ("dataset", "eval"):
        assert _export(store, "--to", str(tmp_path / table / "export"), "--table", table) == 0
    for table in ("dataset", "eval"):
        loaded = datasets.load_dataset(str(tmp_path / table / "export"), split="train", cache_dir=cache)
        assert loaded.column_names == SCHEMAS[table].names


def test_export_refuses_a_folder_with_files(
    store: RunStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    assert _export(store, "--to", str(target)) == 2
    assert "is not an empty folder" in capsys.readouterr().err
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_export_of_a_table_the_round_lacks_names_the_tables_it_has(
    store: RunStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _export(store, "--to", str(tmp_path / "out"), "--table", "dropped") == 2
    error = capsys.readouterr().err
    assert "round 1 of run 'exp' has no dropped table" in error and "dataset, eval" in error
    assert not (tmp_path / "out").exists()


def test_push_without_a_token_says_how_to_log_in(
    store: RunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no saved login there
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # were the check to pass, fail fast instead of reaching out
    assert _export(store, "--to-hub", "someone/flywheel-exp") == 2
    error = capsys.readouterr().err
    assert "no Hugging Face token" in error and "HF_TOKEN" in error and "hf auth login" in error


def test_token_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_TOKEN", "hf_example_token")
    assert hub_token() == "hf_example_token"
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(ExportError, match="hf auth login"):
        hub_token()
