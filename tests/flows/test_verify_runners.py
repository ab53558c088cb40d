"""Verify tasks on the task runners of flows/runners.py: threads, a real local Dask cluster and, when it starts,
a real local Ray instance; every runner must give the verdicts the flow process gives by itself."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from prefect import flow

from configs import ArithmeticConfig, TaskRunnerConfig, VerifyConfig
from flows.opening import missing_runner_package
from flows.ray_connection import AUTH_MODE_VARIABLE
from flows.runners import DAEMON_ADVICE, campaign_task_runner, verify_shard
from stages.problems import PROBLEMS_SCHEMA, generate_arithmetic, split_of
from stages.sample import TRACES_SCHEMA
from stages.verify import VERIFIED_TRACES_SCHEMA, verify_traces
from tests.conftest import REPO, tiny_config

VERIFY = VerifyConfig(workers=1, timeout_s=5.0)
SHARD_SIZE = 8


def _shards() -> list[tuple[pa.Table, pa.Table]]:
    """Three shards of arithmetic problems with completions that are right, wrong, empty or not an answer."""
    problems = split_of(generate_arithmetic(ArithmeticConfig(digits=2, n_seed=0, n_test=4, n_train=24), 3), "train")
    rows = []
    for index, problem in enumerate(problems.to_pylist()):
        right = problem["answer"]
        for sample_idx, completion in enumerate([right, str(int(right) + 1), "", "the answer is " + right, "x/0"]):
            rows.append(
                {
                    "round": 1,
                    "problem_id": problem["problem_id"],
                    "sample_idx": sample_idx,
                    "model_ref": "round:0",
                    "prompt": problem["prompt"],
                    "completion": completion,
                    "completion_tokens": len(completion),
                    "finish_reason": "stop",
                    "seed": index,
                }
            )
    traces = pa.Table.from_pylist(rows, schema=TRACES_SCHEMA)
    shards = []
    for start in range(0, problems.num_rows, SHARD_SIZE):
        shard = problems.slice(start, SHARD_SIZE)
        ids = pc.is_in(traces.column("problem_id"), value_set=shard.column("problem_id"))
        shards.append((traces.filter(ids), shard))
    return shards


def _verify_on(runner_config: TaskRunnerConfig, shards: list[tuple[pa.Table, pa.Table]]) -> list[pa.Table]:
    @flow(name="verify-on-task-runner")
    def submit_all() -> list[pa.Table]:
        futures = [verify_shard.submit(traces, problems, VERIFY) for traces, problems in shards]
        return [future.result().traces for future in futures]

    from prefect.client.orchestration import get_client

    with campaign_task_runner(runner_config, str(get_client(sync_client=True).api_url)) as runner:
        return submit_all.with_options(task_runner=runner)()


@pytest.fixture(scope="module")
def shards_and_reference() -> tuple[list[tuple[pa.Table, pa.Table]], list[pa.Table]]:
    shards = _shards()
    reference = [verify_traces(traces, problems, config=VERIFY) for traces, problems in shards]
    correct = pa.concat_tables(reference).column("correct").to_pylist()
    assert True in correct and False in correct  # the shards exercise both verdicts
    return shards, reference


def test_threads_give_the_flow_process_verdicts(shards_and_reference: tuple[list, list]) -> None:
    shards, reference = shards_and_reference
    assert _verify_on(TaskRunnerConfig(kind="local", workers=2), shards) == reference


@pytest.mark.slow
def test_local_dask_cluster_gives_the_same_verdicts(shards_and_reference: tuple[list, list]) -> None:
    shards, reference = shards_and_reference
    assert _verify_on(TaskRunnerConfig(kind="dask", workers=2), shards) == reference


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs ray: pip install 'flywheel[ray]'")
def test_local_ray_gives_the_same_verdicts(shards_and_reference: tuple[list, list]) -> None:
    """...and stopping the local instance leaves this process's Ray authentication mode as it found it (a local
    `ray.init` turns token mode on; left on, a later connection to a cluster without tokens loses its actors)."""
    from ray._raylet import get_authentication_mode

    shards, reference = shards_and_reference
    authentication = os.environ.get(AUTH_MODE_VARIABLE), get_authentication_mode()
    assert _verify_on(TaskRunnerConfig(kind="ray", workers=2), shards) == reference
    assert (os.environ.get(AUTH_MODE_VARIABLE), get_authentication_mode()) == authentication


@pytest.mark.slow
def test_a_tiny_run_verifies_on_a_local_dask_cluster(tmp_path: Path) -> None:
    """The whole campaign on Dask: its verdicts are the ones the flow process gives to the same traces."""
    config = tiny_config(tmp_path / "runs", orchestration={"task_runner": {"kind": "dask", "workers": 2}})
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", str(tmp_path / "tiny.yaml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    round_1 = tmp_path / "runs" / "tiny" / "rounds" / "r0001"
    assert (
        json.loads((round_1 / "manifest.json").read_text())["config"]["orchestration"]["task_runner"]["kind"] == "dask"
    )
    verified = pq.read_table(round_1 / "traces").select(VERIFIED_TRACES_SCHEMA.names).cast(VERIFIED_TRACES_SCHEMA)
    assert verified.num_rows == 40 * 3
    problems = pq.read_table(round_1 / "problems.parquet").cast(PROBLEMS_SCHEMA)
    again = verify_traces(verified.select(TRACES_SCHEMA.names), problems, config=VerifyConfig())
    assert again == verified


def test_a_daemonic_worker_gets_the_fix_in_its_error() -> None:
    traces, problems = _shards()[0]
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:  # multiprocessing.Pool workers are daemonic, like Dask's by default
        with pytest.raises(RuntimeError, match="DASK_DISTRIBUTED__WORKER__DAEMON=False"):
            pool.apply(verify_shard.fn, (traces, problems, VERIFY))
    assert "cannot start the verifier pool" in DAEMON_ADVICE


def test_missing_runner_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "prefect_dask" else real_find_spec(name, *a)
    )
    message = missing_runner_package(TaskRunnerConfig(kind="dask"))
    assert message is not None and "pip install 'flywheel[dask]'" in message
    assert missing_runner_package(TaskRunnerConfig(kind="local")) is None
