"""Real signals to a real `flywheel run`: it stops within seconds at any point of a round, leaves no process
behind, and `flywheel resume` then finishes the round with every (problem_id, sample_idx) exactly once.

One run is stopped again and again, each time at another point of the same round (sampling, verification,
training, commit), by SIGTERM or Ctrl-C to the command, by SIGKILL of its supervising parent, and by SIGKILL
of the process running the flow; then it is resumed to the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import PROCESS_TOKEN as TOKEN
from tests.conftest import REPO, processes_with, run_flywheel, tiny_config

STOP_WITHIN_S = 10.0


class Command:
    """`flywheel ARGS` started as a user starts it, paused at `pause_at` (FLYWHEEL_PAUSE_AT)."""

    def __init__(self, args: list[str], cwd: Path, pause_at: str) -> None:
        self.token = uuid.uuid4().hex
        self.log = cwd / f"command-{self.token[:8]}.log"
        env = {**os.environ, "PYTHONPATH": str(REPO), "FLYWHEEL_PAUSE_AT": pause_at, TOKEN: self.token}
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flows.cli", *args], cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        self.pause_at = pause_at

    def wait_until_paused(self, seconds: float = 600) -> None:
        deadline = time.monotonic() + seconds
        while f"paused at {self.pause_at}" not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"never paused at {self.pause_at}:\n{self.log.read_text()[-4000:]}")
            time.sleep(0.5)

    def flow_process(self) -> psutil.Process:
        """The supervised child that runs the flow (the supervisor's only direct child)."""
        (child,) = psutil.Process(self.process.pid).children()
        return child

    def wait_for_no_process_left(self) -> float:
        """Seconds from now until no process of this command is left; fails after STOP_WITHIN_S."""
        started = time.monotonic()
        while processes_with(self.token):
            if time.monotonic() - started > STOP_WITHIN_S:
                left = [" ".join(p.cmdline())[:120] for p in processes_with(self.token)]
                pytest.fail(
                    f"still running {STOP_WITHIN_S:.0f} s after the stop: {left}\n{self.log.read_text()[-3000:]}"
                )
            time.sleep(0.1)
        return time.monotonic() - started

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _campaign_states(run_tag: str) -> list[str]:
    """The state of each campaign flow run of the run, in the order they started, as Prefect records them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[run_tag])), sort=FlowRunSort.START_TIME_ASC
        )
        flows = {flow_run.flow_id: client.read_flow(flow_run.flow_id).name for flow_run in runs}
    return [flow_run.state_name for flow_run in runs if flows[flow_run.flow_id] == "flywheel-campaign"]


@pytest.mark.slow
def test_stop_signals_at_every_point_of_a_round_then_resume_exactly_once(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    settings = tiny_config(tmp_path / "runs")
    settings["train"] |= {"save_steps": 2}
    config.write_text(yaml.safe_dump(settings))
    run = tmp_path / "runs" / "tiny"
    resume = ["resume", "tiny", "--store", str(tmp_path / "runs")]

    # SIGTERM while sampling (the first shard of round 1 is written, the next not yet sampled).
    command = Command(["run", str(config)], tmp_path, "shard:traces:0@1")
    command.wait_until_paused()
    command.process.send_signal(signal.SIGTERM)
    command.wait_for_no_process_left()
    assert command.process.wait(timeout=1) == 128 + signal.SIGTERM, command.output()
    assert "stopped by SIGTERM" in command.output() and "Traceback" not in command.output()
    assert not (run / "LOCK").exists()
    assert (run / "rounds" / "r0000" / "manifest.json").exists()
    assert not (run / "rounds" / "r0001" / "manifest.json").exists()

    # Ctrl-C while a shard is being verified.
    command = Command(resume, tmp_path, "verify@1")
    command.wait_until_paused()
    command.process.send_signal(signal.SIGINT)
    command.wait_for_no_process_left()
    assert command.process.wait(timeout=1) == 128 + signal.SIGINT, command.output()
    assert not (run / "LOCK").exists()

    # The supervising parent SIGKILLed while training: the flow process still stops cleanly, helpers and all.
    command = Command(resume, tmp_path, "checkpoint:sft:2@1")
    command.wait_until_paused()
    command.process.kill()
    command.wait_for_no_process_left()
    assert not (run / "LOCK").exists(), "the flow process released the lock although its parent was gone"

    # The flow process itself SIGKILLed after training: no cleanup at all; the supervisor ends the helpers.
    command = Command(resume, tmp_path, "stage:train@1")
    command.wait_until_paused()
    killed_flow_process = command.flow_process()
    killed_flow_process.kill()
    command.wait_for_no_process_left()
    assert command.process.wait(timeout=1) == -signal.SIGKILL
    assert (run / "LOCK").exists(), "SIGKILL leaves the lock, taken over by the next command"

    # Ctrl-C right before the commit.
    command = Command(resume, tmp_path, "commit@1")
    command.wait_until_paused()
    command.process.send_signal(signal.SIGINT)
    command.wait_for_no_process_left()
    assert command.process.wait(timeout=1) == 128 + signal.SIGINT, command.output()
    assert "marked Crashed" in command.output(), "the SIGKILLed flow run was found and marked Crashed"
    assert not (run / "rounds" / "r0001" / "manifest.json").exists()

    finished = run_flywheel(*resume, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert (run / "HEAD").read_text().strip() == "1"
    traces = pq.read_table(run / "rounds" / "r0001" / "traces").select(["problem_id", "sample_idx"]).to_pylist()
    problems = pq.read_table(run / "rounds" / "r0001" / "problems.parquet").num_rows
    pairs = {(row["problem_id"], row["sample_idx"]) for row in traces}
    assert len(traces) == len(pairs) == problems * settings["sample"]["k"], "every (problem, sample) exactly once"
    assert not (run / "rounds" / "r0001" / "progress.json").exists()
    # What Prefect shows of the six commands: stopped ones Cancelled, the SIGKILLed one Crashed (marked later).
    from flows.stopping import run_tag

    tag = run_tag(str(tmp_path / "runs" / "tiny"), "tiny")
    assert _campaign_states(tag) == ["Cancelled", "Cancelled", "Cancelled", "Crashed", "Cancelled", "Completed"]


STUCK_WRITER = """
import sys, time
from flows.stopping import install_stop_handlers
from storage import RunLock, RunStore

install_stop_handlers()
RunLock(RunStore(sys.argv[1], "run")).acquire()
announced = False
while True:  # a main thread that never unwinds, as one stuck in a call that swallows the interrupt
    try:  # the test signals once it reads the line, so the line is printed where the interrupt is swallowed
        if not announced:
            print("locked", flush=True)
            announced = True
        time.sleep(60)
    except KeyboardInterrupt:
        pass
"""


def test_a_stop_past_its_deadline_still_releases_the_runs_lock(tmp_path: Path) -> None:
    """The deadline's forced exit skips every `finally` block; the lock is released all the same."""
    from flows.stopping import STOP_DEADLINE_S

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    writer = subprocess.Popen([sys.executable, "-c", STUCK_WRITER, str(tmp_path)], cwd=REPO, env=env, **pipes)
    assert writer.stdout is not None
    first_line = writer.stdout.readline()
    assert first_line == "locked\n", first_line + writer.communicate(timeout=60)[1]
    lock = tmp_path / "run" / "LOCK"
    assert lock.exists()
    writer.send_signal(signal.SIGINT)
    stdout, stderr = writer.communicate(timeout=STOP_DEADLINE_S + 60)
    assert writer.returncode == 128 + signal.SIGINT, stdout + stderr
    assert f"not stopped {STOP_DEADLINE_S:.0f} s after SIGINT" in stderr
    assert not lock.exists()
