"""`flywheel schedule` against a real Prefect server started here: the deployment, its cron schedule, a
triggered run that commits a round; and the errors for a bad cron string, no server and an unreachable one."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.schedule import _pause
from tests.conftest import PROCESS_TOKEN, REPO, processes_with, tiny_config
from tests.prefect_server import free_port, stop, wait_for

DEPLOYMENT = "flywheel-scheduled-rounds/nightly"


def _env(**changes: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PREFECT_API_URL", None)
    return env | changes


@pytest.fixture(scope="module")
def prefect_server(prefect_api: str | None) -> str:
    """The session's real Prefect server (tests/conftest.py), its scheduler visiting deployments every second."""
    assert prefect_api is not None
    return prefect_api


def _running_spans(client: Any, flow_run_id: Any) -> list[tuple[float, float]]:
    """(start, end) of every Running state of a flow run, from the server's state history."""
    states = sorted(client.read_flow_run_states(flow_run_id), key=lambda state: state.timestamp)
    spans = []
    for state, following in zip(states, [*states[1:], None], strict=True):
        if state.is_running():
            end = following.timestamp.timestamp() if following is not None else time.time()
            spans.append((state.timestamp.timestamp(), end))
    return spans


@pytest.mark.slow
def test_the_scheduler_triggers_rounds_one_at_a_time_and_ctrl_c_pauses_it(prefect_server: str, tmp_path: Path) -> None:
    """Only Prefect's scheduler creates runs here: a cron schedule every 20 seconds, so the second trigger
    fires while the first one's round is still running and must wait for it (the deployment's limit of 1)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tmp_path / "runs")))
    run = tmp_path / "runs" / "tiny"
    log = tmp_path / "schedule.log"
    token = uuid.uuid4().hex
    command = ["schedule", str(config), "--cron", "* * * * * */20", "--timezone", "Europe/Paris", "--name", "nightly"]
    with log.open("wb") as output:
        serving = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", *command],
            cwd=tmp_path,
            env=_env(PREFECT_API_URL=prefect_server, PREFECT_RUNNER_POLL_FREQUENCY="2", **{PROCESS_TOKEN: token}),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    with temporary_settings({PREFECT_API_URL: prefect_server}), get_client(sync_client=True) as client:

        def flow_runs() -> list[Any]:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["nightly"]))
            )
            return sorted(runs, key=lambda flow_run: flow_run.expected_start_time)

        def round_0_committed_and_a_trigger_waited() -> bool:
            states = {flow_run.state_name for flow_run in flow_runs()}
            return (run / "HEAD").exists() and "Completed" in states and "AwaitingConcurrencySlot" in states

        try:
            wait_for(
                "round 0 committed, a later trigger waiting", round_0_committed_and_a_trigger_waited, serving, log, 600
            )
            deployment = client.read_deployment_by_name(DEPLOYMENT)
            assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == [
                ("* * * * * */20", "Europe/Paris")
            ]
            assert not deployment.paused
        finally:
            stop(serving)
        runs = flow_runs()
        assert runs and all(flow_run.auto_scheduled for flow_run in runs), "every run was created by the scheduler"
        completed = [flow_run for flow_run in runs if flow_run.state_name == "Completed"]
        assert completed[0].id == runs[0].id, "the first trigger is the one that committed round 0"
        spans = sorted(span for flow_run in runs for span in _running_spans(client, flow_run.id))
        overlaps = [(a, b) for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1] - 0.5]
        assert not overlaps, f"two triggers ran at once: {overlaps}"
        waited = [
            flow_run
            for flow_run in runs
            if "AwaitingConcurrencySlot" in {state.name for state in client.read_flow_run_states(flow_run.id)}
        ]
        assert waited, "no trigger had to wait for the one before"
        assert client.read_deployment_by_name(DEPLOYMENT).paused, "Ctrl-C pauses the schedule"
    # The first trigger of a fresh run commits round 0 (the baseline).
    manifest = json.loads((run / "rounds" / "r0000" / "manifest.json").read_text())
    assert manifest["status"] == "committed"
    assert "serving deployment flywheel-scheduled-rounds/nightly" in log.read_text()
    assert not (run / "LOCK").exists(), "a stopped trigger releases the run's lock"
    assert not processes_with(token), "a process of the schedule (a trigger, vLLM, a verifier) outlived it"


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
    url = f"http://127.0.0.1:{free_port()}/api"
    result = _schedule(tmp_path, "0 3 * * *", PREFECT_API_URL=url)
    assert result.returncode == 2, result.stderr
    assert f"cannot reach the Prefect server at {url} (PREFECT_API_URL)" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_bad_cron_string_is_refused_before_anything_starts(tmp_path: Path) -> None:
    result = _schedule(tmp_path, "61 3 * * *")  # checked before the server, so no server is needed to see it
    assert result.returncode == 2, result.stderr
    assert "--cron '61 3 * * *': Invalid cron string" in result.stderr and "'0 3 * * *'" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_pausing_when_the_server_is_gone_warns_instead_of_raising(caplog: pytest.LogCaptureFixture) -> None:
    """The pause after serving must not replace the error that stopped serving, e.g. a server that went away."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    gone = f"http://127.0.0.1:{free_port()}/api"
    with temporary_settings({PREFECT_API_URL: gone}), caplog.at_level(logging.WARNING, logger="flywheel"):
        _pause("nightly")
    assert "could not pause the schedule of deployment flywheel-scheduled-rounds/nightly" in caplog.text
    assert "prefect deployment pause flywheel-scheduled-rounds/nightly" in caplog.text
