from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from storage import LockError, RunLock, RunStore


def _store(tmp_path: Path) -> RunStore:
    return RunStore(str(tmp_path), "run")


def test_second_writer_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with RunLock(store):
        holder = json.loads(Path(store.path("LOCK")).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                "from storage import RunLock, RunStore; import sys;"
                f"RunLock(RunStore({str(tmp_path)!r}, 'run')).acquire()",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode != 0
        assert f"is locked by pid {os.getpid()} on host {socket.gethostname()}" in other.stderr
    assert not Path(store.path("LOCK")).exists()


def test_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = _store(tmp_path)
    dead = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal; from storage import RunLock, RunStore;"
            f"RunLock(RunStore({str(tmp_path)!r}, 'run')).acquire(); os.kill(os.getpid(), signal.SIGKILL)",
        ],
        timeout=60,
    )
    assert dead.returncode == -9 and Path(store.path("LOCK")).exists()
    with caplog.at_level("WARNING"), RunLock(store) as lock:
        assert json.loads(Path(store.path("LOCK")).read_text())["pid"] == os.getpid()
        assert lock.read_holder() is not None
    assert "taking over the lock" in caplog.text


def test_an_empty_lock_file_counts_as_stale(tmp_path: Path) -> None:
    store = _store(tmp_path)
    Path(store.root).mkdir(parents=True)
    Path(store.path("LOCK")).write_text("")
    with RunLock(store):
        assert json.loads(Path(store.path("LOCK")).read_text())["pid"] == os.getpid()


def test_a_holder_on_another_host_is_never_presumed_dead(tmp_path: Path) -> None:
    store = _store(tmp_path)
    Path(store.root).mkdir(parents=True)
    Path(store.path("LOCK")).write_text(json.dumps({"host": "elsewhere", "pid": 1, "process_started": 0.0}))
    with pytest.raises(LockError, match="locked by pid 1 on host elsewhere"):
        RunLock(store).acquire()
    with pytest.raises(LockError):
        RunLock(store).check()
