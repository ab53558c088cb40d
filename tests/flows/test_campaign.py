"""The campaign: early stop on a plateau (a real tiny run whose training cannot move the model), and retries
with back-off of the stages that only move data, never of training."""

from __future__ import annotations

import errno
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from prefect import flow

from configs import EarlyStopConfig, RunConfig, parse_config
from flows.journal import RoundJournal, StageOutput, run_stage
from flows.opening import plateau
from storage import RunStore
from tests.conftest import run_flywheel, tiny_config


@pytest.mark.parametrize(
    ("values", "rule", "stale"),
    [
        ([0.5, 0.5, 0.5], EarlyStopConfig(patience=2), [1, 2]),
        ([0.5, 0.6, 0.6], EarlyStopConfig(patience=2), None),  # round 1 improved: one stale round only
        ([0.5, 0.6, 0.55, 0.6], EarlyStopConfig(patience=2), [2, 3]),  # equal to the best is no improvement
        ([0.5, 0.52, 0.53], EarlyStopConfig(patience=2, min_delta=0.05), [1, 2]),  # gains within min_delta
        ([0.5, 0.4, 0.45], EarlyStopConfig(patience=2, mode="min"), None),  # lower is better: round 1 improved
        ([0.5], EarlyStopConfig(patience=1), None),
    ],
)
def test_plateau(values: list[float], rule: EarlyStopConfig, stale: list[int] | None) -> None:
    stop = plateau(list(enumerate(values)), rule)
    if stale is None:
        assert stop is None
    else:
        assert stop is not None and stop["rounds_without_improvement"] == stale
        assert stop["round"] == len(values) - 1 and stop["metric"] == "pass@1"


def _run_stage_in_a_flow(
    tmp_path: Path,
    stage: str,
    failures: int,
    retries: int,
    error: Callable[[int], BaseException] = lambda attempt: OSError("the object store hiccuped"),
) -> tuple[list[float], Any]:
    """Run `stage` through run_stage in a real flow; its work fails `failures` times, attempt n raising
    `error(n)`. Returns attempt times."""
    config = parse_config(
        tiny_config(tmp_path / "runs", orchestration={"retries": retries, "retry_delay_s": 0.5}),
        source="test",
    )
    store = RunStore(config.store, config.run_name)
    attempts: list[float] = []

    def work() -> StageOutput:
        import time

        attempts.append(time.perf_counter())
        if len(attempts) <= failures:
            raise error(len(attempts))
        table = pa.table({"problem_id": ["p1"]})
        return StageOutput([store.write_table(1, "problems", table)], {"problems": 1.0})

    @flow(name="one-stage")
    def one_stage(config: RunConfig) -> None:
        run_stage(RoundJournal(store, 1, (stage,)), stage, work, config.orchestration)

    state = one_stage(config, return_state=True)
    return attempts, (state, store)


def test_an_io_stage_is_retried_with_backoff_and_journals_its_real_time(tmp_path: Path) -> None:
    attempts, (state, store) = _run_stage_in_a_flow(tmp_path, "select", failures=2, retries=2)
    assert state.is_completed()
    assert len(attempts) == 3
    assert attempts[1] - attempts[0] >= 0.5 and attempts[2] - attempts[1] >= 1.0  # 0.5 s, then doubled
    journaled = store.read_progress(1)["stages"]["select"]
    assert journaled["seconds"] >= attempts[2] - attempts[0]  # every attempt and delay, not the last attempt


def test_an_io_stage_fails_once_its_retries_are_spent(tmp_path: Path) -> None:
    attempts, (state, store) = _run_stage_in_a_flow(tmp_path, "curate", failures=2, retries=1)
    assert state.is_failed() and len(attempts) == 2
    assert "curate" not in store.read_progress(1)["stages"]


def test_a_failure_a_retry_would_repeat_is_not_retried(tmp_path: Path) -> None:
    def bad_input(attempt: int) -> BaseException:
        return ValueError("row 3: field 'answer' is missing")

    attempts, (state, _) = _run_stage_in_a_flow(tmp_path, "select", failures=3, retries=3, error=bad_input)
    assert state.is_failed() and len(attempts) == 1

    def disk_full(attempt: int) -> BaseException:
        return OSError(errno.ENOSPC, "No space left on device", "/runs/tiny/rounds/r0001/problems.parquet")

    attempts, (state, _) = _run_stage_in_a_flow(tmp_path / "b", "select", failures=3, retries=3, error=disk_full)
    assert state.is_failed() and len(attempts) == 1


def test_an_error_that_recurs_on_a_fresh_attempt_is_not_retried_again(tmp_path: Path) -> None:
    def engine_crash(attempt: int) -> BaseException:
        return RuntimeError("EngineCore encountered an issue: CPU Generator does not use offset")

    attempts, (state, _) = _run_stage_in_a_flow(tmp_path, "select", failures=5, retries=4, error=engine_crash)
    assert state.is_failed() and len(attempts) == 2  # seen once: retried; the same again: given up

    def a_new_error_each_time(attempt: int) -> BaseException:
        return RuntimeError(f"worker {attempt} went away")

    attempts, (state, _) = _run_stage_in_a_flow(
        tmp_path / "b", "select", failures=2, retries=2, error=a_new_error_each_time
    )
    assert state.is_completed() and len(attempts) == 3


def test_training_is_never_retried(tmp_path: Path) -> None:
    attempts, (state, store) = _run_stage_in_a_flow(tmp_path, "train", failures=1, retries=3)
    assert state.is_failed() and len(attempts) == 1
    assert "train" not in store.read_progress(1)["stages"]


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """Planned rounds 0..2; training with a learning rate too small to change a float32 weight keeps pass@1
    flat, so with patience 1 the campaign commits rounds 0 and 1 and stops before round 2."""
    workdir = tmp_path_factory.mktemp("early-stop")
    config = tiny_config(workdir / "runs", rounds=2, orchestration={"early_stop": {"patience": 1}})
    config["train"]["learning_rate"] = 1e-12
    path = workdir / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_flywheel("run", str(path), cwd=workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return workdir, path, result


@pytest.mark.slow
def test_a_plateau_stops_the_campaign_and_says_why(stopped_run: tuple[Path, Path, Any]) -> None:
    workdir, _, result = stopped_run
    run = workdir / "runs" / "tiny"
    assert sorted(p.name for p in (run / "rounds").iterdir()) == ["r0000", "r0001"]
    assert all((run / "rounds" / name / "manifest.json").exists() for name in ("r0000", "r0001"))
    assert (run / "HEAD").read_text().strip() == "1"
    pass_at_1 = [
        json.loads((run / "rounds" / n / "manifest.json").read_text())["metrics"]["pass@1"] for n in ("r0000", "r0001")
    ]
    stop = json.loads((run / "early_stop.json").read_text())
    assert stop["round"] == 1 and stop["best_round"] == 0 and stop["rounds_without_improvement"] == [1]
    assert stop["best"] == pass_at_1[0] and stop["value"] == pass_at_1[1]
    assert "campaign stopped before round 2: pass@1 has not improved" in result.stdout + result.stderr

    status = run_flywheel("status", "tiny", "--store", str(workdir / "runs"), cwd=workdir)
    assert status.returncode == 0, status.stderr
    assert "campaign stopped early after round 1" in status.stdout and "planned rounds: 0..2" in status.stdout


@pytest.mark.slow
def test_a_stopped_campaign_stays_stopped_until_asked(stopped_run: tuple[Path, Path, Any]) -> None:
    workdir, _, _ = stopped_run
    run = workdir / "runs" / "tiny"
    store = str(workdir / "runs")

    resumed = run_flywheel("resume", "tiny", "--store", store, cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "stopped early after round 1" in resumed.stdout and "--no-early-stop" in resumed.stdout
    assert not (run / "rounds" / "r0002").exists()

    forced = run_flywheel("resume", "tiny", "--store", store, "--no-early-stop", cwd=workdir)
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert (run / "HEAD").read_text().strip() == "2" and (run / "rounds" / "r0002" / "manifest.json").exists()
    assert sorted(p.name for p in (run / "rounds").iterdir()) == ["r0000", "r0001", "r0002"]  # the plan: 0..2
    status = run_flywheel("status", "tiny", "--store", store, cwd=workdir)
    assert "stopped early" not in status.stdout
