"""Run registered verifiers in worker processes with a hard wall-clock timeout and a memory limit per call.

What it does: `VerifierPool` runs any verifier of the registry (`verifiers.VERIFIERS`, looked up in the calling
process and sent to the worker by reference, so the pool needs no list of its own). It keeps `workers`
processes, forked from a forkserver that has already imported the verifiers, so a replacement starts fast.
`verify_batch` sends each (verifier name, completion, problem) to an idle worker and waits on the pipes; a call
that runs past `timeout_s` gets its worker killed (SIGKILL, which also stops a worker stuck in C code) and
replaced, and comes back as a verdict with `timed_out=True, correct=False, reward=0.0`: a response that makes
the verifier hang earns no reward. A worker that dies mid-call (killed, out of memory) is replaced and the call
retried once; a verifier that raises gives `correct=None` ("cannot judge") with the error in `reason`. Results
come back in input order. Any number of threads may call `verify_batch` at once (no signals are used), which is
what Prefect's thread task runner and TRL reward functions (`stages.rewards`) need. Scripts that create a pool
need the `if __name__ == "__main__":` guard.

What it does not do: sandbox code beyond the address-space limit (`RLIMIT_AS`); the code verifier brings its
own sandbox. It never retries a timeout, and it does not cache (see `verifiers.cache`).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from verifiers import VERSIONS, get_verifier
from verifiers.verdict import Verdict

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MEMORY_LIMIT_MB = 1024


@dataclass(frozen=True)
class VerifyCall:
    verifier: str
    completion: str
    problem: Mapping[str, Any]


def _worker_main(connection: Connection, memory_limit_mb: int) -> None:
    import resource

    limit = memory_limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        name, verify, completion, problem = message
        try:
            verdict = verify(completion, problem)
            if not isinstance(verdict, Verdict):
                raise TypeError(f"verifier {name!r} returned {type(verdict).__name__}, not a Verdict")
            reply: tuple[str, Any] = ("ok", verdict)
        except MemoryError:
            reply = ("error", f"verifier ran out of memory (limit {memory_limit_mb} MB)")
        except RecursionError:
            reply = ("error", "verifier exceeded the recursion limit")
        except Exception as error:  # a verifier bug must not take the worker down; it is reported as data
            reply = ("error", f"verifier raised {type(error).__name__}: {error}")
        try:
            connection.send(reply)
        except (BrokenPipeError, OSError):
            return


CLOSED_POLL_S = 0.5


class _Worker:
    def __init__(self, context: Any, memory_limit_mb: int) -> None:
        self.connection, child = context.Pipe(duplex=True)
        self.process = context.Process(target=_worker_main, args=(child, memory_limit_mb), daemon=True)
        self.process.start()
        child.close()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()


def _kill_all(workers: list[_Worker]) -> None:
    for worker in list(workers):
        worker.kill()


class VerifierPool:
    """A live pool of verifier worker processes. Use as a context manager or call `close()`."""

    def __init__(
        self,
        workers: int | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.size = workers or self.default_size()
        self.timeout_s = timeout_s
        self.memory_limit_mb = memory_limit_mb
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["verifiers", "verifiers.math"])
        self._lock = threading.Lock()
        self._all: list[_Worker] = []
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._closed = False
        for _ in range(self.size):
            self._idle.put(self._start_worker())
        self._finalizer = weakref.finalize(self, _kill_all, self._all)

    @staticmethod
    def default_size() -> int:
        """One worker per core."""
        return os.cpu_count() or 1

    def _start_worker(self) -> _Worker:
        worker = _Worker(self._context, self.memory_limit_mb)
        with self._lock:
            self._all.append(worker)
        return worker

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
            closed = self._closed
        if not closed:
            self._idle.put(self._start_worker())

    def verify(self, verifier: str, completion: str, problem: Mapping[str, Any]) -> Verdict:
        return self.verify_batch([VerifyCall(verifier, completion, problem)])[0]

    def verify_batch(self, calls: Sequence[VerifyCall]) -> list[Verdict]:
        """One verdict per call, in order. Never raises for what a verifier does; raises for unknown names."""
        if self._closed:
            raise RuntimeError("VerifierPool is closed")
        functions = [get_verifier(call.verifier, where=f"call {index}") for index, call in enumerate(calls)]
        results: list[Verdict | None] = [None] * len(calls)
        attempts = [0] * len(calls)
        pending = list(range(len(calls)))[::-1]
        in_flight: dict[Connection, tuple[_Worker, int, float]] = {}
        while pending or in_flight:
            while pending:
                worker = self._take_worker(block=not in_flight)
                if worker is None:
                    break
                index = pending.pop()
                call = calls[index]
                attempts[index] += 1
                try:
                    worker.connection.send((call.verifier, functions[index], call.completion, dict(call.problem)))
                except (BrokenPipeError, OSError):
                    self._replace(worker)
                    self._retry_or_fail(index, attempts, pending, results, calls, "could not reach a worker")
                    continue
                in_flight[worker.connection] = (worker, index, time.monotonic() + self.timeout_s)
            if not in_flight:
                continue
            now = time.monotonic()
            soonest = min(deadline for _, _, deadline in in_flight.values())
            for connection in wait(list(in_flight), timeout=max(0.0, soonest - now)):
                worker, index, _ = in_flight.pop(connection)  # type: ignore[index]
                try:
                    status, payload = connection.recv()  # type: ignore[union-attr]
                except (EOFError, OSError):
                    self._replace(worker)
                    self._retry_or_fail(index, attempts, pending, results, calls, "verifier worker died")
                    continue
                self._idle.put(worker)
                results[index] = payload if status == "ok" else _error_verdict(calls[index].verifier, payload)
            now = time.monotonic()
            for connection, (worker, index, deadline) in list(in_flight.items()):
                if now >= deadline:
                    del in_flight[connection]
                    self._replace(worker)
                    results[index] = _timeout_verdict(calls[index].verifier, self.timeout_s)
        return [verdict for verdict in results if verdict is not None]

    def _take_worker(self, block: bool) -> _Worker | None:
        while True:
            try:
                return self._idle.get(block=block, timeout=CLOSED_POLL_S if block else 0)
            except queue.Empty:
                if not block:
                    return None
                if self._closed:  # closed by another thread (a stopping run): no worker will come back
                    raise RuntimeError("VerifierPool was closed while verifying") from None

    def _retry_or_fail(
        self,
        index: int,
        attempts: list[int],
        pending: list[int],
        results: list[Verdict | None],
        calls: Sequence[VerifyCall],
        reason: str,
    ) -> None:
        if attempts[index] < 2:
            pending.append(index)
        else:
            results[index] = _error_verdict(calls[index].verifier, f"{reason} twice; giving up")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
        for worker in workers:
            try:
                worker.connection.send(None)
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + 2
        for worker in workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            worker.kill()
        with self._lock:
            self._all.clear()

    def __enter__(self) -> VerifierPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _timeout_verdict(verifier: str, timeout_s: float) -> Verdict:
    version = VERSIONS.get(verifier, "unknown")
    return Verdict(False, 0.0, None, f"timed out after {timeout_s:g}s", verifier, version, timed_out=True)


def _error_verdict(verifier: str, reason: str) -> Verdict:
    return Verdict(None, None, None, f"cannot judge: {reason}", verifier, VERSIONS.get(verifier, "unknown"))


__all__ = ["VerifierPool", "VerifyCall"]
