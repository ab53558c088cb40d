"""Crash injection for recovery tests: `FLYWHEEL_KILL_AT=<point>@<round>` SIGKILLs this process there.

Points: `stage:<name>` right after a stage is recorded as finished, `shard:<kind>:<n>` right after a
part file is recorded, and `checkpoint:<phase>:<step>` right after a trainer (phase `sft`
or `grpo`) saved its checkpoint of that step. SIGKILL runs no cleanup, so what survives is exactly
what a power cut or an OOM kill would leave behind.
"""

from __future__ import annotations

import os
import signal

from transformers import TrainerCallback

ENVIRONMENT_VARIABLE = "FLYWHEEL_KILL_AT"


def crash_point(point: str, round_id: int) -> None:
    if os.environ.get(ENVIRONMENT_VARIABLE) == f"{point}@{round_id}":
        os.kill(os.getpid(), signal.SIGKILL)


class CrashAtCheckpoint(TrainerCallback):
    """Calls `crash_point("checkpoint:<phase>:<step>")` after each checkpoint a trainer saves."""

    def __init__(self, phase: str, round_id: int) -> None:
        self.phase = phase
        self.round_id = round_id

    def on_save(self, args: object, state: object, control: object, **kwargs: object) -> None:
        crash_point(f"checkpoint:{self.phase}:{state.global_step}", self.round_id)
