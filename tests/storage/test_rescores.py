"""Rescores and the verdict cache in the run store: written once beside a committed round, checked on read and by
`check_run`, set aside with their round by a rollback; verdict batches named by their sha256."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from storage import RunStore, StoreError, StoreIntegrityError
from storage.check import check_run
from storage.rescores import read_rescore, read_rescore_table, rescores_of, write_rescore
from storage.verdicts import append_verdicts, read_verdicts, verdict_files, verdict_folder, verdict_problems

SCHEMA = pa.schema([pa.field("problem_id", pa.string(), nullable=False), pa.field("value", pa.int64())])
VERDICTS = pa.schema(
    [
        pa.field("verifier", pa.string(), nullable=False),
        pa.field("verifier_version", pa.string(), nullable=False),
        pa.field("answer_key", pa.string(), nullable=False),
        pa.field("correct", pa.bool_()),
    ]
)
KEY = "0123456789abcdef"


def _table(n: int = 3) -> pa.Table:
    return pa.Table.from_pylist([{"problem_id": f"p{i}", "value": i} for i in range(n)], schema=SCHEMA)


def _verdicts(answers: list[str], verifier: str = "math", version: str = "2") -> pa.Table:
    rows = [{"verifier": verifier, "verifier_version": version, "answer_key": a, "correct": True} for a in answers]
    return pa.Table.from_pylist(rows, schema=VERDICTS)


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> RunStore:
    url = str(tmp_path / "runs") if request.param == "local" else f"memory://flywheel-{uuid.uuid4().hex}"
    run = RunStore(url, "demo")
    run.create("run_name: demo\n", _table())
    for round_id in (0, 1, 2):
        run.begin_round(round_id)
        run.commit(round_id, {"parent": round_id - 1 if round_id else None}, [run.write_table(round_id, "t", _table())])
    return run


def test_a_rescore_is_written_once_beside_its_round(store: RunStore) -> None:
    round_files = {path: store.fs.info(path)["size"] for path in store.fs.find(store.path("rounds"))}
    manifest = write_rescore(store, 1, KEY, {"traces": _table(4)}, {"counts": {"traces": 4}})
    assert {path: store.fs.info(path)["size"] for path in store.fs.find(store.path("rounds"))} == round_files
    assert rescores_of(store) == [(1, KEY)] and rescores_of(store, 2) == []
    assert read_rescore(store, 1, KEY) == manifest and manifest["counts"] == {"traces": 4}
    assert manifest["files"][0]["path"] == "traces.parquet" and manifest["files"][0]["rows"] == 4
    assert read_rescore_table(store, 1, KEY, "traces", SCHEMA).equals(_table(4))
    with pytest.raises(StoreError, match="exists already: a rescore is written once"):
        write_rescore(store, 1, KEY, {"traces": _table(1)}, {})
    with pytest.raises(StoreError, match="no flips table"):
        read_rescore_table(store, 1, KEY, "flips", SCHEMA)
    with pytest.raises(StoreError, match="round 7 is not committed"):
        write_rescore(store, 7, KEY, {"traces": _table(1)}, {})
    with pytest.raises(StoreError, match="expected 6 to 64 lowercase hex digits"):
        write_rescore(store, 1, "../up", {"traces": _table(1)}, {})
    report = check_run(store)
    assert report.problems == [] and report.rescores == 1


def test_check_names_a_damaged_rescore(store: RunStore) -> None:
    write_rescore(store, 1, KEY, {"traces": _table(4)}, {})
    write_rescore(store, 2, KEY, {"traces": _table(4)}, {})
    folder = store.path("rescores", f"r0001-{KEY}")
    with store.fs.open(f"{folder}/traces.parquet", "wb") as handle:
        handle.write(b"short")
    manifest_path = store.path("rescores", f"r0002-{KEY}", "manifest.json")
    body = json.loads(store.fs.cat(manifest_path))
    body["source_manifest_sha256"] = "0" * 64
    with store.fs.open(manifest_path, "wb") as handle:
        handle.write(json.dumps(body).encode())
    problems = check_run(store).problems
    assert len(problems) == 2, problems
    assert any(f"{folder}/traces.parquet has 5 bytes" in p for p in problems)
    assert any("r0002-" in p and "does not match its manifest_sha256" in p for p in problems)
    assert check_run(store, 1).problems == [p for p in problems if "r0001-" in p]
    with pytest.raises(StoreIntegrityError, match="traces.parquet has 5 bytes"):
        read_rescore(store, 1, KEY)


def test_a_rescore_of_a_removed_or_replaced_round_is_named(store: RunStore) -> None:
    write_rescore(store, 2, KEY, {"traces": _table(4)}, {})
    store.fs.rm(store.round_path(2), recursive=True)  # removed by hand, not by a rollback
    (orphaned,) = [problem for problem in check_run(store).problems if f"r0002-{KEY}" in problem]
    assert "it rescores round 2, which is not committed" in orphaned
    store.begin_round(2)
    store.commit(2, {"parent": 1, "other": True}, [store.write_table(2, "t", _table(1))])
    (problem,) = check_run(store).problems
    assert "it rescores another round 2" in problem and f"r0002-{KEY}" in problem


def test_rollback_sets_a_rounds_rescores_aside_with_it(store: RunStore) -> None:
    write_rescore(store, 1, KEY, {"traces": _table(1)}, {})
    write_rescore(store, 2, KEY, {"traces": _table(2)}, {})
    (archived,) = store.rollback(1)
    assert rescores_of(store) == [(1, KEY)]
    assert store.fs.exists(f"{archived}/rescores/r0002-{KEY}/manifest.json")
    assert check_run(store).problems == []
    write_rescore(store, 1, "abcdef", {"traces": _table(1)}, {})
    store.rollback(0, purge=True)
    assert rescores_of(store) == [] and store.list_folder("rescores") == []


def test_verdict_batches_are_named_by_their_sha256(store: RunStore) -> None:
    assert read_verdicts(store, "math", "2", VERDICTS).num_rows == 0
    first = append_verdicts(store, "math", "2", _verdicts(["1", "2"]))
    assert first is not None and first.path == f"verdicts/math-2/{first.sha256}.parquet"
    assert append_verdicts(store, "math", "2", _verdicts(["1", "2"])) == first  # the same batch: kept once
    append_verdicts(store, "math", "2", _verdicts(["3"]))
    append_verdicts(store, "math", "3", _verdicts(["9"], version="3"))
    assert append_verdicts(store, "math", "2", _verdicts([])) is None
    assert sorted(read_verdicts(store, "math", "2", VERDICTS).column("answer_key").to_pylist()) == ["1", "2", "3"]
    assert read_verdicts(store, "math", "3", VERDICTS).column("answer_key").to_pylist() == ["9"]
    assert len(verdict_files(store)) == 3 and verdict_problems(store) == []
    with pytest.raises(StoreError, match="cannot name a verdict cache folder"):
        verdict_folder("math", "../2")


def test_a_damaged_or_misfiled_verdict_batch_is_named(store: RunStore) -> None:
    record = append_verdicts(store, "math", "2", _verdicts(["1"]))
    assert record is not None
    path = store.path(record.path)
    data = bytearray(store.fs.cat(path))
    data[len(data) // 2] ^= 0xFF
    with store.fs.open(path, "wb") as handle:
        handle.write(bytes(data))
    with pytest.raises(StoreIntegrityError, match=f"{record.sha256}.parquet has sha256 .*the verdict batch was"):
        read_verdicts(store, "math", "2", VERDICTS)
    (problem,) = verdict_problems(store)
    assert record.sha256 in problem and "the next rescore judges those answers again" in problem
    assert verdict_problems(store, hashes=False) == []
    store.fs.rm(path)

    misfiled = append_verdicts(store, "math", "2", _verdicts(["1"], version="1"))
    assert misfiled is not None
    with pytest.raises(StoreError, match=r"holds verdicts of \[\('math', '1'\)\], not of math 2"):
        read_verdicts(store, "math", "2", VERDICTS)
