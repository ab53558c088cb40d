"""Run a long `flywheel` command in a supervised child process, and stop it like a service.

A round starts helper processes it does not own: Prefect's temporary API server, vLLM's engine core and
workers, the verifier pool and its sandboxes. So the command runs as a child in a new session, under this
light parent (which imports nothing heavy), and:

- Ctrl-C, SIGTERM and SIGHUP are forwarded to the child alone, not to its process group: the child stops
  its round itself (flows/stopping.py: the shard in flight is discarded, vLLM and the verifier pool are shut
  down, the lock is released, the Prefect flow runs are marked Cancelled), which needs the helpers, such
  as the Prefect server, to still be there. A child that has not exited `STOP_GRACE_S` after the first
  signal, or any child after a second signal, is killed with its whole tree.
- This parent is a child subreaper (PR_SET_CHILD_SUBREAPER), so helpers orphaned by a dead child are
  re-parented here, whatever session or group they started; when the child exits, every process left
  below this one is terminated, then killed.
- The child gets SIGTERM when this parent dies (PR_SET_PDEATHSIG), so a SIGKILLed supervisor still leads
  to a clean stop: the child stops its round as above and ends its own descendants before exiting.

The exit code is the child's; a child ended by a signal makes this process die by the same signal.
Linux only; elsewhere commands run unsupervised in one process.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading

SUPERVISED = "FLYWHEEL_SUPERVISED"
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
STOP_GRACE_S = 8.0  # from the first stop signal to killing the child: inside the 10 s a service manager waits
HELPER_GRACE_S = 1.5  # from SIGTERM to SIGKILL for helpers left over once the child has exited
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def is_supervised() -> bool:
    return os.environ.get(SUPERVISED) == "1" or not sys.platform.startswith("linux")


def _prctl(option: int, value: int) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def _stop_with_parent() -> None:
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def run_supervised(argv: list[str]) -> int:
    """Run `flywheel argv` as a supervised child; returns its exit code (or dies by its signal)."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    child = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *argv],
        env={**os.environ, SUPERVISED: "1"},
        start_new_session=True,
        preexec_fn=_stop_with_parent,
    )
    signals_seen: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        signals_seen.append(signum)
        if len(signals_seen) > 1:  # asked twice: stop waiting
            _kill_tree(child.pid)
            return
        _signal(child.pid, signum)
        timer = threading.Timer(STOP_GRACE_S, _kill_tree, args=(child.pid,))
        timer.daemon = True
        timer.start()

    for signum in STOP_SIGNALS:
        signal.signal(signum, forward)
    code = child.wait()
    end_descendants(HELPER_GRACE_S)
    if code < 0:  # the child died by a signal: die by the same one, so callers see what happened
        if -code not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


def end_descendants(grace_s: float) -> None:
    """SIGTERM every process below this one, then SIGKILL those still there after `grace_s`."""
    import psutil

    descendants = psutil.Process().children(recursive=True)
    for process in descendants:
        _signal(process.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(descendants, timeout=grace_s)
    for process in alive:
        _signal(process.pid, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=grace_s)


def _kill_tree(pid: int) -> None:
    import psutil

    try:
        processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        _signal(process.pid, signal.SIGKILL)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
