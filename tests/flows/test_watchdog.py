"""The stage watchdog in a real child process: a stuck stage ends the process with its stacks; progress does not."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.conftest import REPO

STUCK = """
import threading
from flows.watchdog import WATCHDOG

def stuck_in_logging_setup():
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()  # waits forever, as vLLM's logging setup waited on Prefect's log handler

with WATCHDOG.watching(timeout_s=1.0):
    WATCHDOG.beat("round 1, stage 'evaluate'")
    stuck_in_logging_setup()
"""

BUSY = """
import logging, time
from flows.watchdog import WATCHDOG

with WATCHDOG.watching(timeout_s=1.0):
    for step in range(8):  # 3.2 s in all, a log line every 0.4 s
        time.sleep(0.4)
        logging.getLogger("prefect.flow_runs").warning("shard %d", step)
    for step in range(8):  # then beats alone
        time.sleep(0.4)
        WATCHDOG.beat()
print("finished")
"""


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, env=env
    )


def test_a_stage_without_progress_ends_the_process_with_its_stacks() -> None:
    result = _python(STUCK)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "flywheel: error: round 1, stage 'evaluate' made no progress for 1 s" in result.stderr
    assert "stuck_in_logging_setup" in result.stderr  # the stack dump shows where it waits


def test_steps_and_log_lines_are_progress() -> None:
    result = _python(BUSY)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "finished"
