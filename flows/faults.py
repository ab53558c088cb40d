"""Crash injection for recovery tests: `FLYWHEEL_KILL_AT=<point>@<round>` SIGKILLs this process there.

Points: `stage:<name>` right after a stage is recorded as finished, and `shard:<kind>:<n>` right after a
part file is recorded. SIGKILL runs no cleanup, so what survives is exactly what a power cut or an OOM
kill would leave behind.
"""

from __future__ import annotations

import os
import signal

ENVIRONMENT_VARIABLE = "FLYWHEEL_KILL_AT"


def crash_point(point: str, round_id: int) -> None:
    if os.environ.get(ENVIRONMENT_VARIABLE) == f"{point}@{round_id}":
        os.kill(os.getpid(), signal.SIGKILL)
