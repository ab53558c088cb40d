"""A damaged run through the real `flywheel` command: each kind of store file is corrupted in turn in a copy of
one committed tiny run; every command that reads it fails with exit 2 and a message naming the file, no
traceback, nothing written. Then the run is moved onto a small disk that fills up mid-round, and continued there
once the disk is grown; the original folder is untouched."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import traceback
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from flows.cli import main
from tests.conftest import CommittedRun, file_digests, run_flywheel

pytestmark = pytest.mark.slow
RUN = "tiny"
COMMANDS = {
    "status": ("status", RUN),
    "inspect": ("inspect", RUN, "1", "--table", "traces"),
    "inspect-dataset": ("inspect", RUN, "0", "--table", "dataset"),
    "resume": ("resume", RUN),
    "check": ("check", RUN),
    "run": ("run", "tiny.yaml", "--rounds", "2"),
}


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-40])


def _one_row_fewer(path: Path) -> None:
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows - 1), path, compression="zstd")


def _edit_metric(path: Path) -> None:
    body = json.loads(path.read_text())
    body["metrics"]["pass@1"] = 0.99
    path.write_text(json.dumps(body, indent=2, sort_keys=True))


def _open_round_with_broken_journal(run: Path) -> None:
    (run / "rounds" / "r0002").mkdir()
    (run / "rounds" / "r0002" / "progress.json").write_text('{"stages": {')


ROUND_1 = ("status", "inspect", "resume", "check")  # `inspect-dataset` reads round 0, still intact
# (file as named in the error, how it is damaged, commands that must fail; the others must still work)
CASES: dict[str, tuple[str, Callable[[Path], None], tuple[str, ...]]] = {
    "manifest-not-json": (
        "rounds/r0001/manifest.json",
        lambda run: _truncate(run / "rounds/r0001/manifest.json"),
        ROUND_1,
    ),
    "manifest-edited": (
        "rounds/r0001/manifest.json",
        lambda run: _edit_metric(run / "rounds/r0001/manifest.json"),
        ROUND_1,
    ),
    "head-text": ("HEAD", lambda run: (run / "HEAD").write_text("one\n"), ("status", "resume", "check")),
    "progress-not-json": ("rounds/r0002/progress.json", _open_round_with_broken_journal, ("status", "resume", "check")),
    "plan-not-json": ("plan.json", lambda run: (run / "plan.json").write_text("{"), ("status", "resume", "check")),
    "run-yaml-edited": (
        "run.yaml",
        lambda run: (run / "run.yaml").write_text((run / "run.yaml").read_text() + "seed: [\n"),
        ("status", "resume", "check", "run"),
    ),
    "lock-garbage": ("LOCK", lambda run: (run / "LOCK").write_bytes(b"\xff\x00garbage"), ("status", "resume", "check")),
    "parquet-truncated": (
        "rounds/r0000/dataset.parquet",
        lambda run: _truncate(run / "rounds/r0000/dataset.parquet"),
        ("status", "inspect-dataset", "resume", "check", "run"),
    ),
    "parquet-one-row-fewer": (
        "rounds/r0000/dataset.parquet",
        lambda run: _one_row_fewer(run / "rounds/r0000/dataset.parquet"),
        ("status", "inspect-dataset", "resume", "check"),
    ),
    "part-deleted": (
        "rounds/r0001/traces/part-00000.parquet",
        lambda run: (run / "rounds/r0001/traces/part-00000.parquet").unlink(),
        ("status", "inspect", "check"),
    ),
    "pool-truncated": ("pool.parquet", lambda run: _truncate(run / "pool.parquet"), ("status", "resume", "check")),
}


READ_ONLY = ("status", "inspect", "check")
HEAVY = {"torch", "transformers", "vllm", "trl"}


def _flywheel(args: tuple[str, ...], cwd: Path) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `flywheel ARGS` run in `cwd`. The read-only commands run in this process
    (the same `main()`, without paying for a new interpreter each time); `run` and `resume` as a user runs them,
    and a refusal must come before the round's heavy modules load."""
    if args[0] not in READ_ONLY:
        result = run_flywheel(*args, cwd=cwd, timeout=300, env_extra={"PYTHONPROFILEIMPORTTIME": "1"})
        lines = result.stderr.splitlines(keepends=True)
        imported = {line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import time:")}
        stderr = "".join(line for line in lines if not line.startswith("import time:"))
        if result.returncode == 2:
            assert imported and not imported & HEAVY, (args, sorted(imported & HEAVY), stderr[-3000:])
        return result.returncode, result.stdout, stderr
    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except Exception:
                err.write(traceback.format_exc())
                code = 1
    finally:
        os.chdir(previous)
    return code, out.getvalue(), err.getvalue()


def test_an_intact_run_checks_clean(committed_run: CommittedRun, tmp_path: Path) -> None:
    committed_run.copy_to(tmp_path)
    result = run_flywheel("check", RUN, "--store", "runs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "run 'tiny' is intact: round(s) 0, 1" in result.stdout
    one = run_flywheel("check", RUN, "0", "--store", "runs", cwd=tmp_path)
    assert one.returncode == 0 and "round(s) 0," in one.stdout


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_damaged_store_file_is_a_clear_error(committed_run: CommittedRun, tmp_path: Path, case: str) -> None:
    named, damage, failing = CASES[case]
    run = committed_run.copy_to(tmp_path)
    damage(run)
    before = file_digests(run)
    for command in failing:
        args = COMMANDS[command] if command == "run" else (*COMMANDS[command], "--store", "runs")
        code, stdout, stderr = _flywheel(args, tmp_path)
        assert code == 2, (command, stdout[-2000:], stderr[-3000:])
        assert "Traceback" not in stderr, (command, stderr[-3000:])
        assert "flywheel: error:" in stderr and f"{RUN}/{named}" in stderr, (command, stderr)
        assert file_digests(run) == before, command
    for command in sorted({"inspect", "inspect-dataset"} - set(failing)):
        code, _, stderr = _flywheel((*COMMANDS[command], "--store", "runs"), tmp_path)
        assert code == 0, (command, stderr[-3000:])


def test_a_moved_run_survives_a_full_disk_in_its_new_folder(committed_run: CommittedRun, tmp_path: Path) -> None:
    """The run is copied onto a small tmpfs, where round 2 runs out of space while training saves its checkpoint:
    one clear error, committed rounds unchanged. Once the disk is grown, `resume --store` discards the half-written
    checkpoint and commits round 2 there; the original folder is untouched. Where no tmpfs can be mounted, the
    round is interrupted by a kill instead, and only the move is tested."""
    original = committed_run.run
    untouched = file_digests(original)
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4500k", "tmpfs", str(disk)], capture_output=True)
    moved = disk / "runs"
    try:
        shutil.copytree(committed_run.store, moved)
        committed = file_digests(moved / RUN / "rounds")
        # the config still names the original store: --store wins
        first = run_flywheel(
            "run", str(committed_run.base / "tiny.yaml"), "--rounds", "2", "--store", str(moved), cwd=tmp_path,
            kill_at=None if mounted.returncode == 0 else "stage:select@2",
        )  # fmt: skip
        if mounted.returncode == 0:
            assert first.returncode == 2, first.stderr[-3000:]
            scratch = moved / RUN / "rounds" / "r0002" / ".scratch"
            assert f"flywheel: error: no space left on the disk holding {scratch}" in first.stderr, first.stderr[-3000:]
            assert "MiB free" in first.stderr
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        else:
            assert first.returncode == -9, first.stderr[-3000:]
        assert not (moved / RUN / "rounds" / "r0002" / "manifest.json").exists()
        after = file_digests(moved / RUN / "rounds")
        assert {path: after[path] for path in committed} == committed
        done = run_flywheel("resume", RUN, "--store", str(moved), cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert (moved / RUN / "HEAD").read_text().strip() == "2"
        manifest = json.loads((moved / RUN / "rounds" / "r0002" / "manifest.json").read_text())
        assert manifest["config"]["store"] == str(moved)
        assert yaml.safe_load((moved / RUN / "run.yaml").read_text())["store"] == str(committed_run.store)
        assert file_digests(original) == untouched and not (original / "rounds" / "r0002").exists()
        check = run_flywheel("check", RUN, "--store", str(moved), cwd=tmp_path)
        assert check.returncode == 0 and "round(s) 0, 1, 2" in check.stdout, check.stderr
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", "-l", str(disk)], check=False)
