"""`flywheel schedule` against a real Prefect server started here: the deployment, its cron schedule, a
triggered run that commits a round; and the errors for a bad cron string, no server and an unreachable one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import REPO, tiny_config

DEPLOYMENT = "flywheel-scheduled-rounds/nightly"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**changes: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PREFECT_API_URL", None)
    return env | changes


def _descendants(pid: int) -> list[int]:
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in children.read_text().split():
            found += [int(child), *_descendants(int(child))]
    return found


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT first (a runner pauses its schedule then), then SIGKILL for whatever of its tree is left."""
    tree = _descendants(process.pid)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    for pid in [process.pid, *tree]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def _wait_for(what: str, check: object, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        if process.poll() is not None:
            pytest.fail(f"{what}: the process exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        time.sleep(1)
    pytest.fail(f"{what}: not within {seconds:.0f} s:\n{log.read_text()[-4000:]}")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("prefect-server")
    url = f"http://127.0.0.1:{_free_port()}/api"
    log = home / "server.log"
    port = url.rsplit(":", 1)[1].removesuffix("/api")
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", port],
            env=_env(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false"),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for("prefect server start", lambda: _healthy(url), server, log, 120)
        yield url
    finally:
        _stop(server)


@pytest.mark.slow
def test_a_triggered_run_of_the_deployment_commits_the_next_round(prefect_server: str, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tmp_path / "runs")))
    run = tmp_path / "runs" / "tiny"
    log = tmp_path / "schedule.log"
    command = ["schedule", str(config), "--cron", "0 3 * * *", "--timezone", "Europe/Paris", "--name", "nightly"]
    with log.open("wb") as output:
        serving = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", *command],
            cwd=tmp_path,
            env=_env(PREFECT_API_URL=prefect_server),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with temporary_settings({PREFECT_API_URL: prefect_server}):
            with get_client(sync_client=True) as client:

                def deployed() -> bool:
                    try:
                        client.read_deployment_by_name(DEPLOYMENT)
                        return True
                    except Exception:
                        return False

                _wait_for("the deployment", deployed, serving, log, 180)
                deployment = client.read_deployment_by_name(DEPLOYMENT)
                assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == [
                    ("0 3 * * *", "Europe/Paris")
                ]
                assert deployment.parameters["rounds_per_trigger"] == 1
                assert (run / "run.yaml").exists() and not (run / "HEAD").exists()  # created, nothing run yet

                flow_run = run_deployment(DEPLOYMENT, timeout=0, as_subflow=False)

                def committed() -> bool:
                    return (run / "HEAD").exists() and client.read_flow_run(flow_run.id).state.is_final()

                _wait_for("round 0 committed by the triggered run", committed, serving, log, 600)
                state = client.read_flow_run(flow_run.id).state
                assert state.is_completed(), f"{state}\n{log.read_text()[-4000:]}"
    finally:
        _stop(serving)
    # A fresh run's first trigger commits round 0 (the baseline) and nothing more.
    assert (run / "HEAD").read_text().strip() == "0"
    assert json.loads((run / "rounds" / "r0000" / "manifest.json").read_text())["status"] == "committed"
    assert json.loads((run / "plan.json").read_text()) == {"rounds": 0}
    assert not (run / "rounds" / "r0001").exists()
    assert "serving deployment flywheel-scheduled-rounds/nightly" in log.read_text()


def _schedule(tmp_path: Path, cron: str, **env: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tmp_path / "runs")))
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", "schedule", str(config), "--cron", cron],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(**env),
    )


def test_without_a_server_it_says_how_to_start_one(tmp_path: Path) -> None:
    result = _schedule(tmp_path, "0 3 * * *")
    assert result.returncode == 2, result.stderr
    assert "needs a Prefect server, and PREFECT_API_URL is not set" in result.stderr
    assert "prefect server start" in result.stderr
    assert "prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api" in result.stderr
    assert "PREFECT_API_DATABASE_CONNECTION_URL" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_an_unreachable_server_is_named(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}/api"
    result = _schedule(tmp_path, "0 3 * * *", PREFECT_API_URL=url)
    assert result.returncode == 2, result.stderr
    assert f"cannot reach the Prefect server at {url} (PREFECT_API_URL)" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_bad_cron_string_is_refused_before_anything_starts(tmp_path: Path) -> None:
    result = _schedule(tmp_path, "61 3 * * *")  # checked before the server, so no server is needed to see it
    assert result.returncode == 2, result.stderr
    assert "--cron '61 3 * * *': Invalid cron string" in result.stderr and "'0 3 * * *'" in result.stderr
    assert not (tmp_path / "runs").exists()
