"""Hostile programs through the code verifier and the sandbox: each is contained, judged incorrect with a
reason, and the host is checked afterwards (files, processes, sockets, the caller's memory).

Each hostile program prints the expected output only if its attack worked, so `correct=False` means the
attack failed, not merely that the program printed something else.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from verifiers import sandbox
from verifiers.code import verify
from verifiers.sandbox import (
    SANDBOX_UID_BASE,
    SandboxLimits,
    SandboxUnavailableError,
    available_isolation,
    run_python,
)

TIMEOUT_S = 1.5
# The plain-rlimits mode as root needs an interpreter other users can run (the test venv may live in /root).
SYSTEM_PYTHON = "/usr/bin/python3"


def problem_expecting(output: str, timeout_s: float = TIMEOUT_S) -> dict[str, str]:
    return {"tests": json.dumps({"stdio": [{"input": "", "output": output}], "timeout_s": timeout_s})}


def completion(program: str) -> str:
    return f"<think>plan</think>\n```python\n{program}\n```"


def unsandboxed(program: str) -> str:
    """The control: what the same program prints when run without the sandbox."""
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=10).stdout.strip()


def leftover_processes(marker: str = "sandbox bootstrap") -> list[int]:
    """Processes of a sandbox still alive: the bootstrap's command line, the marker, or a sandbox uid."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        if "State:\tZ" in status:
            continue
        uid = int(status.split("Uid:\t", 1)[1].split()[0])
        if marker in cmdline or "sandbox bootstrap" in cmdline or uid >= SANDBOX_UID_BASE:
            found.append(int(entry))
    return found


def assert_no_leftovers(marker: str = "sandbox bootstrap", within_s: float = 3.0) -> None:
    deadline = time.monotonic() + within_s
    while leftover_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftover_processes(marker) == [], "sandboxed processes outlived the run"


@pytest.fixture
def planted(tmp_path: Path) -> Iterator[list[Path]]:
    """Files the program must neither change nor delete: in the project folder, the home folder, /tmp."""
    token = secrets.token_hex(6)
    paths = [REPO / f".sandbox-test-{token}", Path.home() / f".sandbox-test-{token}", tmp_path / "planted.txt"]
    for path in paths:
        path.write_text("original")
    yield paths
    for path in paths:
        path.unlink(missing_ok=True)


def test_bubblewrap_works_here_or_the_fallback_is_announced() -> None:
    mode = available_isolation()
    assert mode in ("bwrap", "rlimits")
    if mode == "rlimits":
        pytest.skip(f"bubblewrap unavailable here: {sandbox._bwrap_problem(sys.executable)}")
    result = run_python("import os; print(os.getuid())")
    assert result.success and result.isolation == "bwrap", result
    if os.geteuid() == 0:
        assert int(result.stdout) >= SANDBOX_UID_BASE  # never root inside


def test_infinite_loop_times_out() -> None:
    started = time.monotonic()
    verdict = verify(completion("while True:\n    pass"), problem_expecting("never"))
    assert verdict.correct is False and verdict.timed_out
    assert "timed out" in verdict.reason
    assert time.monotonic() - started < TIMEOUT_S + 2.0
    assert_no_leftovers()


def test_fork_bomb_is_bounded_and_cleaned_up() -> None:
    program = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    verdict = verify(completion(program), problem_expecting("never"))
    assert verdict.correct is False and verdict.timed_out, verdict.reason
    assert_no_leftovers()


def test_process_limit_really_stops_forks() -> None:
    # Each child sleeps, so every successful fork is a live process that counts against the limit.
    program = (
        "import os, time\nn = 0\ntry:\n    while n < 500:\n        if os.fork() == 0:\n            time.sleep(3)\n"
        "            os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint(n, flush=True)\nos._exit(0)"
    )
    result = run_python(program, limits=SandboxLimits(wall_s=3.0, max_processes=8))
    assert result.success, result
    assert int(result.stdout) < 8
    verdict = verify(completion(program), problem_expecting("500"))
    assert verdict.correct is False
    assert_no_leftovers()


def test_memory_bomb_hits_the_memory_limit() -> None:
    program = "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024 * 1024))"
    started = time.monotonic()
    verdict = verify(completion(program), problem_expecting("never"))
    assert verdict.correct is False and not verdict.timed_out
    assert "memory limit exceeded" in verdict.reason
    assert time.monotonic() - started < TIMEOUT_S + 2.0
    one_shot = run_python("x = bytearray(8 * 1024**3)", limits=SandboxLimits(memory_mb=256))
    assert one_shot.error is not None and "memory limit exceeded" in one_shot.error


def test_writes_to_project_and_home_do_not_land(planted: list[Path]) -> None:
    token = secrets.token_hex(6)
    targets = [REPO / f"escaped-{token}.txt", Path.home() / f"escaped-{token}.txt", *planted]
    program = (
        f"targets = {[str(path) for path in targets]!r}\nwrote = []\nfor path in targets:\n    try:\n"
        "        with open(path, 'w') as f:\n            f.write('pwned')\n        wrote.append(path)\n"
        "    except OSError:\n        pass\nprint('wrote' if wrote else 'blocked')"
    )
    try:
        verdict = verify(completion(program), problem_expecting("wrote"))
        assert verdict.correct is False, verdict.reason
        for path in targets[:2]:
            assert not path.exists(), f"{path} was created from inside the sandbox"
        for path in planted:
            assert path.read_text() == "original"
    finally:
        for path in targets[:2]:
            path.unlink(missing_ok=True)


def test_deleting_files_fails(planted: list[Path]) -> None:
    program = (
        f"import os\ndeleted = []\nfor path in {[str(path) for path in planted]!r}:\n    try:\n"
        "        os.remove(path)\n        deleted.append(path)\n    except OSError:\n        pass\n"
        "print('deleted' if deleted else 'kept')"
    )
    verdict = verify(completion(program), problem_expecting("deleted"))
    assert verdict.correct is False, verdict.reason
    assert all(path.read_text() == "original" for path in planted)
    control_program = program.replace(str(planted[0]), str(planted[2])).replace(str(planted[1]), str(planted[2]))
    assert unsandboxed(control_program) == "deleted" and not planted[2].exists()


def test_parent_environment_secret_is_not_readable(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cret-" + secrets.token_hex(8)
    monkeypatch.setenv("FLYWHEEL_TEST_SECRET", secret)
    program = (
        "import os\nfound = os.environ.get('FLYWHEEL_TEST_SECRET')\n"
        f"for pid in [os.getppid(), {os.getpid()}, 1] + [int(p) for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    try:\n        with open(f'/proc/{pid}/environ', 'rb') as f:\n            data = f.read().decode()\n"
        "    except OSError:\n        continue\n"
        "    for item in data.split('\\0'):\n        if item.startswith('FLYWHEEL_TEST_SECRET='):\n"
        "            found = item.split('=', 1)[1]\nprint(found)"
    )
    assert unsandboxed(program) == secret  # the program does find it when nothing stops it
    verdict = verify(completion(program), problem_expecting(secret))
    assert verdict.correct is False, verdict.reason
    result = run_python(program)
    assert secret not in result.stdout + result.stderr


def test_no_connection_to_a_host_socket() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    program = (
        f"import socket\ntry:\n    s = socket.create_connection(('127.0.0.1', {port}), timeout=0.5)\n"
        "    s.sendall(b'hello')\n    print('connected')\nexcept OSError as e:\n    print('refused', e)"
    )
    try:
        assert unsandboxed(program) == "connected"
        accepted, _ = listener.accept()  # the control's connection, taken off the backlog
        accepted.close()
        verdict = verify(completion(program), problem_expecting("connected"))
        assert verdict.correct is False, verdict.reason
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
    finally:
        listener.close()


def test_printing_a_gigabyte_is_cut_off() -> None:
    program = "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)"
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    verdict = verify(completion(program), problem_expecting("x"))
    assert verdict.correct is False
    assert "output limit exceeded" in verdict.reason
    assert time.monotonic() - started < 3.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 100 * 1024  # KiB: under 100 MB
    assert_no_leftovers()


def test_killing_the_parent_and_other_processes_fails() -> None:
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    program = (
        "import os, signal\nkilled = []\n"
        f"for pid in [os.getppid(), {os.getpid()}, {decoy.pid}, 1]:\n    try:\n"
        "        os.kill(pid, signal.SIGKILL)\n        killed.append(pid)\n    except OSError:\n        pass\n"
        "print('killed' if killed else 'alive', flush=True)\n"
        "try:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass"
    )
    try:
        verdict = verify(completion(program), problem_expecting("killed"))
        assert verdict.correct is False, verdict.reason
        assert decoy.poll() is None, "a process outside the sandbox was killed"
        os.kill(os.getpid(), 0)  # the caller is alive (it is running this line)
    finally:
        decoy.kill()
        decoy.wait()


def test_child_sleeping_past_the_limit_is_killed() -> None:
    marker = f"{30 + secrets.randbelow(1000) / 1000:.3f}"
    program = (
        "import subprocess, sys\n"
        f"child = subprocess.Popen(['sleep', '{marker}'])\nprint('waiting', flush=True)\nchild.wait()\nprint('done')"
    )
    started = time.monotonic()
    verdict = verify(completion(program), problem_expecting("waiting\ndone"))
    assert verdict.correct is False and verdict.timed_out, verdict.reason
    assert time.monotonic() - started < TIMEOUT_S + 2.0
    assert_no_leftovers(f"sleep {marker}")


def test_detached_grandchild_dies_with_the_run() -> None:
    marker = f"{40 + secrets.randbelow(1000) / 1000:.3f}"
    program = (
        "import os, subprocess\nif os.fork() == 0:\n    os.setsid()\n"
        f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n    os._exit(0)\nprint('parent exits')"
    )
    result = run_python(program, limits=SandboxLimits(wall_s=3.0))
    assert result.success and result.stdout == "parent exits\n"
    assert_no_leftovers(f"sleep {marker}")


def test_cpu_limit_kills_a_busy_program() -> None:
    result = run_python("while True:\n    pass", limits=SandboxLimits(wall_s=5.0, cpu_s=1.0))
    assert not result.success and not result.timed_out
    assert result.error == "CPU time limit exceeded (1 s)"


def test_environment_is_scrubbed_and_working_directory_is_throwaway() -> None:
    program = (
        "import os\nprint(sorted(os.environ))\nprint(os.path.exists('left-behind'))\n"
        "open('left-behind', 'w').write('x')\nprint(os.getcwd() == os.environ['HOME'])"
    )
    first, second = run_python(program), run_python(program)
    assert first.success and second.success
    names = set(json.loads(first.stdout.splitlines()[0].replace("'", '"'))) - {"PWD"}  # bwrap sets PWD
    assert names == {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
    }
    assert first.stdout.splitlines()[1:] == ["False", "True"]
    assert second.stdout.splitlines()[1] == "False"  # nothing carries over from the first run


def test_failures_come_back_as_data() -> None:
    crashed = run_python("raise ValueError('boom')")
    assert not crashed.success and crashed.error == "exit status 1: ValueError: boom"
    segfault = run_python("import ctypes\nctypes.string_at(0)")
    assert not segfault.success and segfault.error == "killed by signal SIGSEGV"
    echoed = run_python("import sys\nprint(sys.stdin.read().upper())", stdin="abc")
    assert echoed.success and echoed.stdout == "ABC\n"


def test_missing_bubblewrap_falls_back_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() == 0 and not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"the rlimits mode as root needs {SYSTEM_PYTHON}")
    monkeypatch.setattr(sandbox, "_bwrap_problem", lambda python: "no `bwrap` executable on PATH")
    sandbox._warn_fallback.cache_clear()
    interpreter = SYSTEM_PYTHON if os.geteuid() == 0 else None
    with pytest.warns(RuntimeWarning, match="SANDBOX FALLBACK"):
        result = run_python("print('hi')", interpreter=interpreter)
    assert result.success and result.isolation == "rlimits"
    with pytest.raises(SandboxUnavailableError, match="bubblewrap"):
        run_python("print('hi')", isolation="bwrap")


@pytest.mark.skipif(not os.access(SYSTEM_PYTHON, os.X_OK), reason=f"needs {SYSTEM_PYTHON}")
def test_rlimits_mode_still_bounds_time_memory_output_and_processes(planted: list[Path]) -> None:
    interpreter = SYSTEM_PYTHON if os.geteuid() == 0 else None
    limits = SandboxLimits(wall_s=1.0, max_processes=8)
    looping = run_python("while True:\n    pass", limits=limits, isolation="rlimits", interpreter=interpreter)
    assert looping.timed_out and looping.isolation == "rlimits"
    memory = run_python("x = bytearray(8 * 1024**3)", limits=limits, isolation="rlimits", interpreter=interpreter)
    assert memory.error is not None and "memory limit" in memory.error
    flood = run_python(
        "while True:\n    print('x' * 4096)", limits=limits, isolation="rlimits", interpreter=interpreter
    )
    assert flood.output_truncated
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    assert run_python(bomb, limits=limits, isolation="rlimits", interpreter=interpreter).timed_out
    assert_no_leftovers()
    if os.geteuid() == 0:  # as an unprivileged uid, the caller's files are out of reach
        program = f"import os\nos.remove({str(planted[0])!r})"
        removal = run_python(program, limits=limits, isolation="rlimits", interpreter=interpreter)
        assert not removal.success and "PermissionError" in removal.error
        assert planted[0].read_text() == "original"
