"""Run one untrusted Python program in a separate, limited process and return what happened as data.

Every program gets its own process tree, a wall-clock limit (enforced here, by killing the whole tree),
CPU-time, address-space, file-size and open-file limits (rlimits, set by a small bootstrap before the
program's first line runs), a cap on the bytes of stdout + stderr read back, a process-count limit, a
throwaway working directory (also `HOME` and `TMPDIR`) and an environment holding only `PATH`, `HOME`,
`TMPDIR`, `LANG` and thread-count variables: nothing of the caller's environment reaches it. Failures
(time-outs, limits, crashes, non-zero exits) come back as a `SandboxResult`, never as exceptions.

Isolation, strongest first; `isolation="auto"` picks the first that works on this machine:

- `bwrap` (bubblewrap, Debian package `bubblewrap`): new PID, network, IPC, UTS and cgroup namespaces,
  plus a user namespace when the caller is not root. The program sees the file system read-only, with
  `/tmp` replaced by a size-limited in-memory working directory, `/dev/shm` by a small one, and `/home`,
  `/root`, `/run`, `/var/tmp` by empty read-only folders (the interpreter's own folders are mounted back
  read-only). It has a loopback-only network of its own (nothing of the host's, 127.0.0.1 included),
  sees only its own processes, and every process it starts dies with the namespace.
- `rlimits`: the same limits without namespaces, with a loud warning. The working directory is a fresh
  folder on disk, removed afterwards.

The process limit is RLIMIT_NPROC, which the kernel counts per user (per user namespace since Linux
5.14) and does not apply to root. So when the caller is root, the program runs under an unused uid of
its own (`SANDBOX_UID_BASE` + a per-process slot): bubblewrap makes its mounts as root and drops the
program to that uid with `setpriv` (no capabilities, no-new-privs); the plain interpreter is started as
that uid, and after the run every process of that uid is killed. As root without bubblewrap, an
interpreter that other uids cannot run is refused (`SandboxUnavailableError`), never run as root.

What it does NOT protect against:
- kernel or bubblewrap vulnerabilities, CPU side channels; there is no seccomp filter.
- reading world-readable files (the rest of the file system is visible, read-only, in `bwrap` mode).
- in `rlimits` mode: network access; writes into world-writable folders (e.g. `/tmp`) or, as a
  non-root caller, into anything the caller may write; reading the caller's environment through
  `/proc` and signalling the caller's processes as a non-root caller; and, as a non-root caller,
  processes that leave the process group outliving the run and a process limit shared with the user.
- in `rlimits` mode, a caller killed mid-run (e.g. by a verifier pool's timeout): its program is
  orphaned and runs on until its own CPU limit. Under bubblewrap it dies with its caller.
- a program that forges what it reports: callers must judge its output outside it (`verifiers.code` does).
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Isolation = Literal["auto", "bwrap", "rlimits"]

SANDBOX_UID_BASE = 1_500_000_000  # far above any real account; one block of uids per sandboxing process
UIDS_PER_PROCESS = 16  # concurrent sandboxes one process may run (threads); more wait for a free slot
HIDDEN_DIRS = ("/home", "/root", "/run", "/var/tmp")
SHM_BYTES = 16 << 20
KILL_GRACE_S = 0.2  # after the program exits, how long descendants may hold its pipes open

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SandboxLimits:
    wall_s: float = 5.0
    cpu_s: float = 5.0
    memory_mb: int = 512
    max_processes: int = 16
    max_output_bytes: int = 1 << 20
    max_file_mb: int = 16
    scratch_mb: int = 64

    def __post_init__(self) -> None:
        for name in ("wall_s", "cpu_s", "memory_mb", "max_processes", "max_output_bytes", "max_file_mb", "scratch_mb"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SandboxLimits.{name} must be positive, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class SandboxResult:
    """`success`: the program exited with status 0 within every limit. `error` says why not."""

    success: bool
    stdout: str
    stderr: str
    error: str | None
    timed_out: bool
    returncode: int | None
    output_truncated: bool
    isolation: str
    wall_s: float


class SandboxUnavailableError(RuntimeError):
    """The isolation asked for by name cannot run on this machine."""


# Runs inside the sandbox before the program: reads the program from stdin (length-prefixed, unbuffered,
# so the program's own stdin starts right after it), sets the limits it cannot raise again, runs it.
_BOOTSTRAP = r"""
import os, resource, sys
def _read_exactly(n):
    parts = []
    while n:
        part = os.read(0, n)
        if not part:
            raise SystemExit("sandbox bootstrap: program truncated")
        parts.append(part)
        n -= len(part)
    return b"".join(parts)
_header = b""
while not _header.endswith(b"\n"):
    _header += _read_exactly(1)
_source = _read_exactly(int(_header)).decode("utf-8")
_cpu, _memory, _processes, _file_bytes = (int(value) for value in sys.argv[1:5])
for _kind, _soft, _hard in (
    (resource.RLIMIT_CPU, _cpu, _cpu + 1),
    (resource.RLIMIT_AS, _memory, _memory),
    (resource.RLIMIT_NPROC, _processes, _processes),
    (resource.RLIMIT_FSIZE, _file_bytes, _file_bytes),
    (resource.RLIMIT_NOFILE, 256, 256),
    (resource.RLIMIT_CORE, 0, 0),
):
    resource.setrlimit(_kind, (_soft, _hard))
sys.argv = ["main.py"]
_code = compile(_source, "main.py", "exec")
del _read_exactly, _header, _source, _cpu, _memory, _processes, _file_bytes, _kind, _soft, _hard
exec(_code, {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__})
"""


def run_python(
    source: str,
    stdin: str = "",
    limits: SandboxLimits | None = None,
    isolation: Isolation = "auto",
    interpreter: str | None = None,
) -> SandboxResult:
    """Run `source` as `__main__` with `stdin` as its standard input, under `limits`.

    `interpreter` defaults to the running Python (so the program sees this environment's packages).
    Raises `SandboxUnavailableError` only when no isolation can run here (see `_rlimits_problem`).
    """
    python = interpreter or sys.executable
    return _run_in_mode(source, stdin, limits or SandboxLimits(), _resolve_isolation(isolation, python), python)


def _run_in_mode(source: str, stdin: str, limits: SandboxLimits, mode: str, python: str) -> SandboxResult:
    payload = f"{len(source.encode())}\n{source}{stdin}".encode()
    uid_slot = _UID_SLOTS.acquire() if os.geteuid() == 0 else None
    try:
        uid = None if uid_slot is None else _uid_for_slot(uid_slot)
        if mode == "bwrap":
            return _run(_bwrap_command(limits, uid, python), payload, limits, uid, cwd="/", mode=mode)
        scratch = _make_scratch_dir(uid)
        try:
            return _run(_python_command(limits, python), payload, limits, uid, cwd=scratch, mode=mode)
        finally:
            _remove_tree(scratch)
    finally:
        if uid_slot is not None:
            _UID_SLOTS.release(uid_slot)


def available_isolation() -> str:
    """The strongest isolation that works here: `bwrap` or `rlimits` (probed once per process)."""
    return "bwrap" if _bwrap_problem(sys.executable) is None else "rlimits"


def _resolve_isolation(isolation: Isolation, python: str) -> str:
    if isolation != "rlimits":
        problem = _bwrap_problem(python)
        if problem is None:
            return "bwrap"
        if isolation == "bwrap":
            raise SandboxUnavailableError(f"bubblewrap isolation asked for but unavailable: {problem}")
        _warn_fallback(problem)
    rlimits_problem = _rlimits_problem(python)
    if rlimits_problem is not None:
        raise SandboxUnavailableError(rlimits_problem)
    return "rlimits"


@functools.cache
def _warn_fallback(problem: str) -> None:
    message = (
        f"SANDBOX FALLBACK: bubblewrap is unavailable ({problem}); untrusted programs run with rlimits only: "
        "NO network isolation and NO read-only file system. Install it with `apt-get install bubblewrap`."
    )
    logger.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


@functools.cache
def _bwrap_problem(python: str) -> str | None:
    """None when a real sandboxed program runs under bubblewrap here, else what went wrong."""
    if _find_bwrap() is None:
        return "no `bwrap` executable on PATH"
    source = "import os; print('sandbox-ok', os.getuid() != 0)"
    result = _run_in_mode(source, "", SandboxLimits(wall_s=20.0, cpu_s=10.0), "bwrap", python)
    if result.success and result.stdout.strip() == "sandbox-ok True":
        return None
    return f"probe run failed: {result.error}: {result.stderr.strip()[-300:]}"


@functools.cache
def _rlimits_problem(python: str) -> str | None:
    """As root, the plain interpreter must run under the sandbox uid: root is exempt from the process
    limit, so a program that cannot be run as another user is refused rather than run as root."""
    if os.geteuid() != 0:
        return None
    result = _run_in_mode("print('sandbox-ok')", "", SandboxLimits(wall_s=20.0, cpu_s=10.0), "rlimits", python)
    if result.success and result.stdout.strip() == "sandbox-ok":
        return None
    return (
        f"without bubblewrap, a root caller runs programs as an unprivileged uid, and {python} "
        f"cannot run as one ({result.error}); install bubblewrap or use an interpreter other users can read"
    )


def _find_bwrap() -> str | None:
    return shutil.which("bwrap") or shutil.which("bwrap", path="/usr/bin:/bin")


def _python_command(limits: SandboxLimits, python: str) -> list[str]:
    return [
        python,
        "-I",  # ignore PYTHON* variables, the user site and the current folder
        "-c",
        _BOOTSTRAP,
        str(max(1, int(limits.cpu_s + 0.999))),
        str(limits.memory_mb << 20),
        str(limits.max_processes),
        str(limits.max_file_mb << 20),
    ]


def _environment(home: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _bwrap_command(limits: SandboxLimits, uid: int | None, python: str) -> list[str]:
    """bubblewrap around the bootstrap. As root: no user namespace (it would map the program to root, which
    RLIMIT_NPROC exempts); the program drops to `uid` with setpriv after the mounts are made."""
    bwrap = _find_bwrap()
    assert bwrap is not None
    command = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if uid is None:
        command += ["--unshare-user", "--disable-userns"]
    command += ["--die-with-parent", "--new-session", "--clearenv"]
    for name, value in _environment("/tmp").items():
        command += ["--setenv", name, value]
    command += ["--ro-bind", "/", "/", "--proc", "/proc"]
    command += ["--dev", "/dev", "--perms", "1777", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm"]
    command += ["--remount-ro", "/dev"]
    command += ["--perms", "1777", "--size", str(limits.scratch_mb << 20), "--tmpfs", "/tmp"]
    needed = _interpreter_dirs(python)
    # A virtual environment may itself live under /tmp (a CI checkout): bring it back, read-only.
    for path in needed:
        if path.startswith("/tmp/"):
            command += _bind_back(path, "/tmp")
    for hidden in HIDDEN_DIRS:
        if not os.path.isdir(hidden):
            continue
        command += ["--tmpfs", hidden]
        for path in needed:
            if path == hidden or path.startswith(hidden + "/"):
                command += _bind_back(path, hidden)
        command += ["--remount-ro", hidden]
    command += ["--chdir", "/tmp", "--"]
    if uid is not None:
        command += [
            shutil.which("setpriv") or "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--no-new-privs",  # setuid binaries give it nothing
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ]
    return command + _python_command(limits, python)


def _bind_back(path: str, under: str) -> list[str]:
    """Read-only bind of `path` inside the fresh tmpfs `under`, its parents made traversable (0755) first:
    bwrap would otherwise create them 0700 root-owned, which the unprivileged program cannot enter."""
    parents = []
    parent = os.path.dirname(path)
    while parent.startswith(under + "/"):
        parents.append(parent)
        parent = os.path.dirname(parent)
    arguments = [arg for folder in reversed(parents) for arg in ("--perms", "0755", "--dir", folder)]
    return [*arguments, "--ro-bind", path, path]


@functools.cache
def _interpreter_dirs(python: str) -> tuple[str, ...]:
    """Folders the interpreter needs, mounted back read-only where they sit under a hidden folder."""
    real = os.path.realpath(python)
    paths = {os.path.dirname(os.path.dirname(python)), os.path.dirname(os.path.dirname(real))}
    if python == sys.executable:
        paths |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(sorted(os.path.realpath(path) for path in paths) + sorted(paths))


def _run(
    command: list[str], payload: bytes, limits: SandboxLimits, uid: int | None, cwd: str, mode: str
) -> SandboxResult:
    """Start `command` (bubblewrap starts as the caller and drops to `uid` itself; the plain
    interpreter starts as `uid`), exchange the pipes, then kill whatever is left of it."""
    run_as = uid if mode == "rlimits" else None
    started = time.monotonic()
    deadline = started + limits.wall_s
    try:
        process = _start(command, cwd, mode, run_as)
    except OSError as error:
        return SandboxResult(
            success=False,
            stdout="",
            stderr="",
            error=f"could not start the sandbox: {error}",
            timed_out=False,
            returncode=None,
            output_truncated=False,
            isolation=mode,
            wall_s=time.monotonic() - started,
        )
    try:
        stdout, stderr, truncated, timed_out = _exchange(process, payload, deadline, limits.max_output_bytes)
    finally:
        _kill_tree(process, run_as)
    returncode = process.wait()
    elapsed = time.monotonic() - started
    error = _error(returncode, stderr, truncated, timed_out, limits, mode)
    return SandboxResult(
        success=error is None,
        stdout=stdout.decode("utf-8", errors="replace"),
        stderr=stderr.decode("utf-8", errors="replace"),
        error=error,
        timed_out=timed_out,
        returncode=returncode,
        output_truncated=truncated,
        isolation=mode,
        wall_s=elapsed,
    )


def _start(command: list[str], cwd: str, mode: str, run_as: int | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=_environment(cwd if mode == "rlimits" else "/tmp"),
        start_new_session=True,  # its own process group: one signal reaches the whole tree
        user=run_as,
        group=run_as,
        extra_groups=[] if run_as is not None else None,
    )


def _exchange(
    process: subprocess.Popen[bytes], payload: bytes, deadline: float, max_output: int
) -> tuple[bytes, bytes, bool, bool]:
    """Feed stdin and read stdout/stderr until both close, the deadline passes or the output cap is hit."""
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    buffers = {process.stdout.fileno(): bytearray(), process.stderr.fileno(): bytearray()}
    selector = selectors.DefaultSelector()
    for stream in (process.stdout, process.stderr):
        selector.register(stream.fileno(), selectors.EVENT_READ)
    stdin_fd = process.stdin.fileno()
    os.set_blocking(stdin_fd, False)
    selector.register(stdin_fd, selectors.EVENT_WRITE)
    pending = memoryview(payload)
    exited_at: float | None = None
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                return bytes(buffers[process.stdout.fileno()]), bytes(buffers[process.stderr.fileno()]), False, True
            if exited_at is None and process.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > KILL_GRACE_S:
                break  # the program is gone; a descendant still holds its pipes
            if not any(fd in selector.get_map() for fd in buffers):
                break
            for key, _ in selector.select(timeout=min(deadline - now, 0.05)):
                if key.fd == stdin_fd:
                    try:
                        written = os.write(stdin_fd, pending[: 1 << 16])
                    except (BrokenPipeError, BlockingIOError) as error:
                        if isinstance(error, BlockingIOError):
                            continue
                        written = len(pending)
                    pending = pending[written:]
                    if not pending:
                        selector.unregister(stdin_fd)
                        process.stdin.close()
                    continue
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffers[key.fd] += chunk
                if sum(len(buffer) for buffer in buffers.values()) > max_output:
                    out, err = buffers[process.stdout.fileno()], buffers[process.stderr.fileno()]
                    return bytes(out[:max_output]), bytes(err[:max_output]), True, False
        return bytes(buffers[process.stdout.fileno()]), bytes(buffers[process.stderr.fileno()]), False, False
    finally:
        selector.close()
        for stream in (process.stdin, process.stdout, process.stderr):
            if not stream.closed:
                stream.close()


def _kill_tree(process: subprocess.Popen[bytes], uid: int | None) -> None:
    """Kill the process group; with `uid`, also every process of that uid (those that left the group).

    Under bubblewrap the PID namespace dies with its first process, taking every descendant along.
    """
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if uid is not None:
        # kill(-1) sent by a process of that uid reaches every process of that uid and nothing else
        subprocess.run(
            ["kill", "-KILL", "-1"],
            user=uid,
            group=uid,
            extra_groups=[],
            env={"PATH": "/usr/bin:/bin"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )


def _error(
    returncode: int, stderr: bytes, truncated: bool, timed_out: bool, limits: SandboxLimits, mode: str
) -> str | None:
    if timed_out:
        return f"timed out after {limits.wall_s:g} s (wall clock)"
    if truncated:
        return f"output limit exceeded ({limits.max_output_bytes} bytes of stdout + stderr)"
    if returncode == 0:
        return None
    # bubblewrap reports a program killed by signal N as exit status 128 + N
    signal_number = -returncode if returncode < 0 else (returncode - 128 if mode == "bwrap" and returncode > 128 else 0)
    if signal_number == signal.SIGXCPU:
        return f"CPU time limit exceeded ({limits.cpu_s:g} s)"
    if signal_number == signal.SIGXFSZ:
        return f"file size limit exceeded ({limits.max_file_mb} MB)"
    tail = stderr[-2000:].decode("utf-8", errors="replace")
    if "MemoryError" in tail:
        return f"memory limit exceeded ({limits.memory_mb} MB)"
    if signal_number:
        return f"killed by signal {signal.Signals(signal_number).name}"
    last_line = tail.strip().splitlines()[-1] if tail.strip() else ""
    return f"exit status {returncode}" + (f": {last_line[:200]}" if last_line else "")


class _UidSlots:
    """Slots of this process's uid block; a slot is in use by at most one running sandbox."""

    def __init__(self, count: int) -> None:
        self._free: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in range(count):
            self._free.put(slot)

    def acquire(self) -> int:
        return self._free.get()

    def release(self, slot: int) -> None:
        self._free.put(slot)


_UID_SLOTS = _UidSlots(UIDS_PER_PROCESS)


def _uid_for_slot(slot: int) -> int:
    # pids are below 2**22 on Linux, so live processes never share a block
    return SANDBOX_UID_BASE + (os.getpid() % (1 << 22)) * UIDS_PER_PROCESS + slot


def _make_scratch_dir(uid: int | None) -> str:
    """A fresh private folder for one run, owned by the program's uid."""
    path = tempfile.mkdtemp(prefix="flywheel-sandbox-")
    if uid is not None:
        os.chown(path, uid, uid)
    return path


def _remove_tree(path: str) -> None:
    """Remove the scratch folder, opening up folders the program made unreadable; log, never raise."""

    def open_up_and_retry(function: Callable[..., object], failed: str, _error: object) -> None:
        os.chmod(os.path.dirname(failed), 0o700)
        if os.path.isdir(failed) and not os.path.islink(failed):
            os.chmod(failed, 0o700)
        function(failed)

    try:
        shutil.rmtree(path, onerror=open_up_and_retry)
    except OSError as error:
        logger.warning("sandbox: could not remove scratch folder %s: %s", path, error)
