"""Run a long `flywheel` command in a child process group, and clean up that whole group when it ends.

A round starts helper processes it does not own: Prefect's temporary API server, vLLM's engine core and
workers, the verifier pool. If the process running the flow dies without cleaning up (SIGKILL, an OOM
kill, a segfault), those helpers are orphaned and live on, holding ports, memory and the terminal's
pipes. So the command runs as a child in a new session (its descendants share its process group); this
light parent forwards Ctrl-C/SIGTERM to it, waits, kills whatever is left of the group, and exits the
way the child did. The child dies with the parent too (PR_SET_PDEATHSIG), so killing the parent
leaves no flow running unsupervised. The parent imports nothing heavy.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

SUPERVISED = "FLYWHEEL_SUPERVISED"
PR_SET_PDEATHSIG = 1
GRACE_SECONDS = 5.0


def is_supervised() -> bool:
    return os.environ.get(SUPERVISED) == "1" or not sys.platform.startswith("linux")


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def run_supervised(argv: list[str]) -> int:
    """Run `flywheel argv` as a supervised child; returns its exit code (or dies by its signal)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *argv],
        env={**os.environ, SUPERVISED: "1"},
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )

    def forward(signum: int, _frame: object) -> None:
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    code = child.wait()
    _end_group(child.pid)
    if code < 0:  # the child died by a signal: die by the same one, so callers see what happened
        if -code not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


def _end_group(group: int) -> None:
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass
