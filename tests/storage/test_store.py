from __future__ import annotations

import json
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage import RunStore, StoreError, StoreIntegrityError
from storage.check import check_run

SCHEMA = pa.schema([pa.field("problem_id", pa.string(), nullable=False), pa.field("value", pa.int64())])


def _table(n: int = 3) -> pa.Table:
    return pa.Table.from_pylist([{"problem_id": f"p{i}", "value": i} for i in range(n)], schema=SCHEMA)


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> RunStore:
    url = str(tmp_path / "runs") if request.param == "local" else f"memory://flywheel-{uuid.uuid4().hex}"
    run = RunStore(url, "demo")
    run.create("run_name: demo\n", _table())
    return run


def test_tables_round_trip_with_their_schema_and_hash(store: RunStore) -> None:
    store.begin_round(1)
    record = store.write_table(1, "dataset", _table(5))
    assert record.path == "dataset.parquet" and record.rows == 5 and len(record.sha256) == 64
    assert store.read_table(1, "dataset", SCHEMA).equals(_table(5))
    assert store.read_pool(SCHEMA).equals(_table())


def test_json_files_of_a_round_round_trip_and_a_damaged_one_names_itself(store: RunStore) -> None:
    store.begin_round(1)
    body = {"system_message": None, "answer_instructions": {"arithmetic": None}}
    record = store.write_json(1, "prompting.json", body)
    assert record.path == "prompting.json" and record.rows is None and store.check_files(1, [record]) is None
    assert store.read_json(1, "prompting.json") == body
    store.write_file(1, "prompting.json", b"[1, 2]")
    with pytest.raises(StoreError, match=r"r0001/prompting.json: expected a JSON object, found list; re-run"):
        store.read_json(1, "prompting.json")


def test_no_temporary_files_remain_after_writes(store: RunStore) -> None:
    store.begin_round(1)
    store.write_table(1, "dataset", _table())
    store.write_traces_part(1, 0, _table())
    names = store.fs.find(store.root)
    assert not [name for name in names if ".tmp-" in name]


def test_schema_mismatch_is_an_error_naming_the_file(store: RunStore) -> None:
    store.begin_round(1)
    store.write_table(1, "dataset", _table())
    other = pa.schema([pa.field("problem_id", pa.string(), nullable=False)])
    with pytest.raises(StoreError, match=r"dataset.parquet: schema differs"):
        store.read_table(1, "dataset", other)


def test_commit_writes_manifest_last_and_moves_head(store: RunStore) -> None:
    assert store.head() is None
    store.begin_round(0)
    files = [store.write_table(0, "dataset", _table()), store.write_traces_part(0, 0, _table(2))]
    assert not store.is_committed(0) and store.committed_rounds() == []
    store.commit(0, {"metrics": {"pass@1": 0.5}}, files)
    assert store.head() == 0 and store.committed_rounds() == [0]
    manifest = store.read_manifest(0)
    assert manifest["status"] == "committed" and manifest["metrics"] == {"pass@1": 0.5}
    assert {f["path"]: f["rows"] for f in manifest["files"]} == {"dataset.parquet": 3, "traces/part-00000.parquet": 2}
    assert store.read_parts(0, SCHEMA).num_rows == 2


def test_commit_refuses_when_a_listed_file_is_missing(store: RunStore) -> None:
    store.begin_round(0)
    record = store.write_table(0, "dataset", _table())
    store.fs.rm(store.round_path(0, "dataset.parquet"))
    with pytest.raises(StoreError, match="dataset.parquet is missing"):
        store.commit(0, {}, [record])
    assert store.head() is None


def test_committed_rounds_are_immutable(store: RunStore) -> None:
    store.begin_round(0)
    store.commit(0, {}, [store.write_table(0, "dataset", _table())])
    with pytest.raises(StoreError, match="round 0 is committed and immutable"):
        store.begin_round(0)


def test_progress_journal_of_an_open_round(store: RunStore) -> None:
    store.begin_round(1)
    assert store.open_rounds() == [1]
    record = store.write_table(1, "problems", _table())
    store.record_stage(1, "select", [record], {"problems": 3.0}, 0.5)
    part = store.write_traces_part(1, 0, _table(2))
    store.record_shard(1, "traces", 0, part, {"sample": 1.0})
    progress = store.read_progress(1)
    assert progress["stages"]["select"]["metrics"] == {"problems": 3.0}
    assert progress["shards"]["traces"]["0"]["file"]["sha256"] == part.sha256
    assert store.check_files(1, [record, part]) is None
    store.forget_stages(1, ["select"])
    assert store.read_progress(1)["stages"] == {}


def test_check_files_detects_missing_and_modified_files(store: RunStore) -> None:
    store.begin_round(1)
    record = store.write_traces_part(1, 0, _table())
    path = store.round_path(1, record.path)
    with store.fs.open(path, "rb") as handle:
        data = handle.read()
    with store.fs.open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])
    assert "does not match its recorded sha256" in (store.check_files(1, [record]) or "")
    store.fs.rm(path)
    assert "is missing" in (store.check_files(1, [record]) or "")


def test_rollback_archives_later_rounds_and_moves_head(store: RunStore) -> None:
    for round_id in (0, 1, 2):
        store.begin_round(round_id)
        store.commit(round_id, {}, [store.write_table(round_id, "dataset", _table(round_id + 1))])
    store.begin_round(3)  # an open round is set aside too
    moved = store.rollback(1)
    assert store.head() == 1 and store.committed_rounds() == [0, 1] and store.open_rounds() == []
    assert [path.rsplit("/", 1)[-1] for path in moved] == ["r0002", "r0003"]
    archived = store.archived()
    assert len(archived) == 2 and archived[0].endswith("/r0002")
    assert any(p.endswith("r0002/dataset.parquet") for p in store.fs.find(store.path("archive")))
    with pytest.raises(StoreError, match="not committed"):
        store.rollback(5)
    store.rollback(0, purge=True)
    assert store.committed_rounds() == [0] and len(store.archived()) == 2


def test_repair_head_points_at_the_newest_committed_round(store: RunStore) -> None:
    store.begin_round(0)
    store.commit(0, {}, [store.write_table(0, "dataset", _table())])
    store.fs.rm(store.path("HEAD"))
    assert store.head() is None
    assert store.repair_head() == 0 and store.head() == 0


def test_creating_an_existing_run_is_refused(store: RunStore) -> None:
    with pytest.raises(StoreError, match="run already exists"):
        store.create("x", _table())


def test_corrupt_parquet_is_reported_with_its_path(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path), "demo")
    store.create("run_name: demo\n", _table())
    store.begin_round(1)
    store.write_table(1, "dataset", _table())
    path = Path(store.round_path(1, "dataset.parquet"))
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(StoreError, match="unreadable Parquet file .*dataset.parquet"):
        store.read_table(1, "dataset", SCHEMA)


def test_manifest_files_are_plain_parquet_for_other_tools(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path), "demo")
    store.create("run_name: demo\n", _table())
    store.begin_round(0)
    store.commit(0, {}, [store.write_table(0, "dataset", _table())])
    assert pq.read_table(tmp_path / "demo" / "rounds" / "r0000" / "dataset.parquet").num_rows == 3
    assert json.loads((tmp_path / "demo" / "rounds" / "r0000" / "manifest.json").read_text())["round"] == 0


def _committed(tmp_path: Path) -> RunStore:
    store = RunStore(str(tmp_path / "runs"), "demo")
    store.create("run_name: demo\n", _table())
    for round_id in (0, 1):
        store.begin_round(round_id)
        files = [store.write_table(round_id, "dataset", _table(4)), store.write_traces_part(round_id, 0, _table(2))]
        manifest = {
            "parent": round_id - 1 if round_id else None,
            "model_in": f"m{round_id}",
            "model_out": f"m{round_id + 1}",
        }
        store.commit(round_id, {**manifest, "metrics": {"pass@1": 0.5}}, files)
    return store


def test_an_edited_manifest_fails_its_own_hash(tmp_path: Path) -> None:
    store = _committed(tmp_path)
    path = Path(store.round_path(1, "manifest.json"))
    body = json.loads(path.read_text())
    body["metrics"]["pass@1"] = 0.9
    path.write_text(json.dumps(body))
    with pytest.raises(
        StoreIntegrityError, match=r"r0001/manifest.json: its content does not match its manifest_sha256"
    ):
        store.read_manifest(1)
    del body["manifest_sha256"]  # a legacy manifest, from before manifests carried their hash: still read
    path.write_text(json.dumps(body))
    assert store.read_manifest(1)["metrics"]["pass@1"] == 0.9
    path.write_text("{")
    with pytest.raises(StoreError, match=r"r0001/manifest.json: not valid JSON .*flywheel rollback demo --to 0"):
        store.read_manifest(1)


def test_committed_files_are_checked_by_size_and_hash_on_read(tmp_path: Path) -> None:
    store = _committed(tmp_path)
    path = Path(store.round_path(1, "dataset.parquet"))
    original = path.read_bytes()
    pq.write_table(_table(3), path, compression="zstd")  # valid Parquet, one row fewer
    with pytest.raises(StoreIntegrityError, match=r"dataset.parquet has \d+ bytes, its manifest records \d+ bytes"):
        store.read_table(1, "dataset", SCHEMA)
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(flipped))
    with pytest.raises(StoreIntegrityError, match=r"dataset.parquet has sha256 [0-9a-f]{64}, its manifest records"):
        store.read_table(1, "dataset", SCHEMA)
    path.write_bytes(original)
    assert store.read_table(1, "dataset", SCHEMA).num_rows == 4


def test_part_files_of_a_committed_round_come_from_its_manifest(tmp_path: Path) -> None:
    store = _committed(tmp_path)
    stray = Path(store.round_path(1, "traces", "part-00009.parquet"))
    pq.write_table(_table(7), stray)
    assert store.read_parts(1, SCHEMA).num_rows == 2  # the unlisted part is not part of the round
    Path(store.round_path(1, "traces", "part-00000.parquet")).unlink()
    with pytest.raises(StoreIntegrityError, match=r"traces/part-00000.parquet is missing"):
        store.read_parts(1, SCHEMA)


def test_check_lists_every_problem_of_a_run(tmp_path: Path) -> None:
    store = _committed(tmp_path)
    assert check_run(store).problems == []
    Path(store.round_path(0, "dataset.parquet")).write_bytes(b"x")
    Path(store.round_path(1, "traces", "part-00000.parquet")).unlink()
    Path(store.path("HEAD")).write_text("7\n")
    Path(store.path("pool.parquet")).write_bytes(b"y")
    problems = check_run(store).problems
    assert len(problems) == 4, problems
    assert any("HEAD names round 7, which is not committed" in p for p in problems)
    assert any("r0000/dataset.parquet has 1 bytes" in p for p in problems)
    assert any("part-00000.parquet is missing" in p for p in problems)
    assert any("demo/pool.parquet has 1 bytes" in p for p in problems)
    assert sorted(check_run(store, 1).problems) == sorted(p for p in problems if "r0000" not in p)


def test_check_follows_the_lineage(tmp_path: Path) -> None:
    store = _committed(tmp_path)
    path = Path(store.round_path(1, "manifest.json"))
    body = json.loads(path.read_text())
    body["model_in"] = "elsewhere"
    del body["manifest_sha256"]
    path.write_text(json.dumps(body))
    assert check_run(store).problems == [f"{path}: model_in is 'elsewhere' but round 0 produced 'm1'"]


def test_a_broken_head_or_journal_is_an_error_naming_the_file(tmp_path: Path) -> None:
    store = _committed(tmp_path)
    Path(store.path("HEAD")).write_text("one")
    with pytest.raises(
        StoreError, match=r"demo/HEAD: expected a round number, found 'one'; `flywheel rollback demo --to 1`"
    ):
        store.head()
    store.begin_round(2)
    Path(store.round_path(2, "progress.json")).write_text("[]")
    with pytest.raises(StoreError, match=r"r0002/progress.json: expected a JSON object"):
        store.read_progress(2)
