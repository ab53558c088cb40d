"""A stage watchdog: a campaign that makes no progress for `FLYWHEEL_STALL_TIMEOUT_S` seconds fails, loudly.

Progress is a stage starting or finishing, a shard written, a training step, or a log line. When none comes
for the timeout (default 3600 s; 0 turns the watchdog off), the watchdog thread writes which stage stalled
and a stack dump of every thread of the process to stderr, straight to the file descriptor (logging may be
what is stuck), and ends the process with exit code 3. The supervising parent (flows/supervise.py) then ends
the helper processes; the run's committed rounds and the open round's journal are as the last stage left
them, so `flywheel resume` continues from there (the lock of the ended process is taken over as stale).
A launched training job (`train.launcher`) is a separate process with its own logs; while the flow waits
for it the watchdog is paused.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from transformers import TrainerCallback

from storage.lock import release_held_locks

STALL_VARIABLE = "FLYWHEEL_STALL_TIMEOUT_S"
DEFAULT_STALL_S = 3600.0
EXIT_STALLED = 3


class StageWatchdog:
    def __init__(self) -> None:
        self._last = time.monotonic()
        self._what = "starting"
        self._paused = 0
        self._stop: threading.Event | None = None

    def beat(self, what: str | None = None) -> None:
        """Progress: restart the clock (and, with `what`, name what is running now)."""
        self._last = time.monotonic()
        if what is not None:
            self._what = what

    @contextmanager
    def watching(self, timeout_s: float | None = None) -> Iterator[None]:
        """Watch while the block runs; `timeout_s` defaults to $FLYWHEEL_STALL_TIMEOUT_S, then 3600 s."""
        timeout = float(os.environ.get(STALL_VARIABLE, DEFAULT_STALL_S)) if timeout_s is None else timeout_s
        if timeout <= 0 or self._stop is not None:  # off, or already watched by an outer block
            yield
            return
        stop = self._stop = threading.Event()
        handler = _BeatOnLog(self)
        loggers = [logging.getLogger(), logging.getLogger("prefect")]
        for logger in loggers:
            logger.addHandler(handler)
        self.beat()
        thread = threading.Thread(target=self._watch, args=(stop, timeout), name="flywheel-watchdog", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            self._stop = None
            for logger in loggers:
                logger.removeHandler(handler)

    @contextmanager
    def paused(self) -> Iterator[None]:
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1
            self.beat()

    def _watch(self, stop: threading.Event, timeout: float) -> None:
        while not stop.wait(min(5.0, timeout / 4)):
            if self._paused:
                self._last = time.monotonic()
            elif time.monotonic() - self._last > timeout:
                self._stalled(timeout)

    def _stalled(self, timeout: float) -> None:
        message = (
            f"\nflywheel: error: {self._what} made no progress for {timeout:.0f} s (no stage, shard, training step "
            f"or log line; {STALL_VARIABLE} sets the limit): stalled. Stacks of every thread follow; the process "
            "ends now, `flywheel resume` continues the run.\n"
        )
        os.write(2, message.encode())
        faulthandler.dump_traceback(file=sys.__stderr__ or 2, all_threads=True)
        release_held_locks()  # the stalled thread would never reach the `finally` that releases them
        os._exit(EXIT_STALLED)


class _BeatOnLog(logging.Handler):
    def __init__(self, watchdog: StageWatchdog) -> None:
        super().__init__()
        self.watchdog = watchdog

    def emit(self, record: logging.LogRecord) -> None:
        self.watchdog.beat()


WATCHDOG = StageWatchdog()


class BeatOnStep(TrainerCallback):
    """A training step is progress."""

    def on_step_end(self, args: object, state: object, control: object, **kwargs: object) -> None:
        WATCHDOG.beat()
