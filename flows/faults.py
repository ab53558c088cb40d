"""Fault injection for recovery tests, at named points of a round.

`FLYWHEEL_KILL_AT=<point>@<round>` SIGKILLs this process there: SIGKILL runs no cleanup, so what survives is
exactly what a power cut or an OOM kill would leave behind. `FLYWHEEL_PAUSE_AT=<point>@<round>` prints
`flywheel: paused at <point>@<round>` to stderr and waits there until the process is stopped, so a test can
send a real signal while the round is at a known point.

Points: `stage:<name>` right after a stage is recorded as finished, `shard:<kind>:<n>` right after a
part file is recorded, `verify` when a shard's verification starts (in the thread or worker that verifies
it), `checkpoint:<phase>:<step>` right after a trainer (phase `sft` or `grpo`) saved its checkpoint of that
step, `commit` right before the round's manifest is written, and `replica:<i>.<n>` in engine replica i's
process n (0 the first, 1 the one started when it died, ...) right after it sampled its slice of a shard, before
handing it back (backends replicas and ray, flows/replicas.py).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from transformers import TrainerCallback

ENVIRONMENT_VARIABLE = "FLYWHEEL_KILL_AT"
PAUSE_VARIABLE = "FLYWHEEL_PAUSE_AT"


def crash_point(point: str, round_id: int) -> None:
    here = f"{point}@{round_id}"
    if os.environ.get(ENVIRONMENT_VARIABLE) == here:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(PAUSE_VARIABLE) == here:
        _pause(here)


def _pause(here: str) -> None:
    """Wait for a stop: in the main thread its signal handler raises here; elsewhere, raise once it is seen."""
    from flows.stopping import StopRequested, stop_signal

    print(f"flywheel: paused at {here}", file=sys.stderr, flush=True)
    while stop_signal() is None:
        time.sleep(0.05)
    if threading.current_thread() is not threading.main_thread():
        raise StopRequested(stop_signal() or signal.SIGINT)


class CrashAtCheckpoint(TrainerCallback):
    """Calls `crash_point("checkpoint:<phase>:<step>")` after each checkpoint a trainer saves."""

    def __init__(self, phase: str, round_id: int) -> None:
        self.phase = phase
        self.round_id = round_id

    def on_save(self, args: object, state: object, control: object, **kwargs: object) -> None:
        crash_point(f"checkpoint:{self.phase}:{state.global_step}", self.round_id)
