"""One writer per run: a `LOCK` file naming its holder (host, pid, process start time, command).

On a local store the file is created with O_EXCL, so two processes cannot both win. On object stores the
check and the write are two requests, so two writers starting in the same instant could both proceed;
use one scheduler per run there. A lock whose holder is a dead process on this host (its pid gone, or
reused by a process that started later) is taken over with a warning; a holder on another host is
never presumed dead.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from types import TracebackType
from typing import Any

import psutil

logger = logging.getLogger(__name__)


class LockError(RuntimeError):
    """Another live process holds the run."""


_held: list[RunLock] = []  # the locks this process holds now, for an exit that skips their `finally` blocks


def release_held_locks(timeout_s: float = 2.0) -> None:
    """Release every lock this process holds, for a process about to leave with `os._exit` (a stop past its
    deadline, a stalled stage): that skips the `finally` blocks that would release them, and a person would find
    the run locked by a process that is gone. Gives up after `timeout_s` (a store that hangs must not keep a
    stuck process from exiting; the next writer then takes the dead process's lock over)."""

    def release_all() -> None:
        for lock in list(_held):
            lock.release()

    releasing = threading.Thread(target=release_all, name="flywheel-release-locks", daemon=True)
    releasing.start()
    releasing.join(timeout_s)


def _this_process() -> dict[str, Any]:
    process = psutil.Process()
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "process_started": process.create_time(),
        "acquired_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(sys.argv)[:500],
    }


def holder_is_alive(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname():
        return True
    try:
        process = psutil.Process(int(holder["pid"]))
    except (psutil.NoSuchProcess, KeyError, ValueError, TypeError):
        return False
    try:
        return abs(process.create_time() - float(holder["process_started"])) < 1.0
    except (KeyError, ValueError, TypeError):  # no start time to tell a reused pid apart: presume it alive
        return True


def describe(holder: dict[str, Any]) -> str:
    return (
        f"pid {holder.get('pid')} on host {holder.get('host')}, since {holder.get('acquired_at')}"
        f" ({holder.get('command', '?')})"
    )


class RunLock:
    """Context manager over a store's `LOCK` file; `store` is a `RunStore`."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.path = store.path("LOCK")
        self.me = _this_process()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def check(self) -> None:
        """Raise now if a live process holds the run, without taking the lock."""
        holder = self.read_holder()
        if holder and holder_is_alive(holder) and holder.get("pid") != self.me["pid"]:
            raise LockError(f"run {self.store.run_name!r} is locked by {describe(holder)}: {self.path}")

    def acquire(self) -> None:
        fs = self.store.fs
        fs.makedirs(self.store.root, exist_ok=True)
        body = json.dumps(self.me).encode()
        if self._create_exclusive(body):
            _held.append(self)
            return
        holder = self.read_holder()
        if holder and holder_is_alive(holder):  # an empty LOCK is a writer that died while creating it
            raise LockError(f"run {self.store.run_name!r} is locked by {describe(holder)}: {self.path}")
        logger.warning(
            "taking over the lock of run %r left by a dead process (%s)",
            self.store.run_name,
            describe(holder or {}),
        )
        fs.rm(self.path)
        if not self._create_exclusive(body):
            raise LockError(f"run {self.store.run_name!r}: lost the race for a stale lock at {self.path}")
        _held.append(self)

    def release(self) -> None:
        if self in _held:
            _held.remove(self)
        try:
            holder = self.read_holder()
        except LockError:  # not ours any more: leave it for a person to look at
            return
        if holder is not None and holder.get("pid") == self.me["pid"] and holder.get("host") == self.me["host"]:
            self.store.fs.rm(self.path)

    def read_holder(self) -> dict[str, Any] | None:
        """The holder named in LOCK; {} for an empty LOCK (a writer that died while creating it), None for none."""
        try:
            with self.store.fs.open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None
        if not data.strip():
            return {}
        try:
            holder = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            holder = error
        if not isinstance(holder, dict):
            raise LockError(
                f"{self.path}: unreadable lock file ({holder}); if no flywheel process is working on run "
                f"{self.store.run_name!r}, delete it"
            )
        return holder

    def _create_exclusive(self, body: bytes) -> bool:
        if self.store.is_local:
            try:
                descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            return True
        if self.store.fs.exists(self.path):
            return False
        with self.store.fs.open(self.path, "wb") as handle:
            handle.write(body)
        return True
