"""Where a round's verify tasks run: Prefect's thread pool (`local`), a Dask cluster or a Ray cluster.

What scales out is verification: `_sample_shards` in flows/round.py submits each sampled shard's verification
as the `verify-shard` task to the flow's task runner and samples the next shard meanwhile. vLLM stays in the
flow's process (it holds the accelerator and one engine serves every shard), and so does file I/O: a task
returns its verdicts, and the flow writes and journals the part files in shard order, so resume works the
same whatever runs the verification. Curation also stays in the flow's process: it is one pass over the
whole round's table (MinHash signatures against each other and against earlier rounds' stored ones), fast
next to sampling (see bench/dedup.py), and splitting it by shard would miss duplicates across shards.

`campaign_task_runner` starts a local cluster once per campaign (or connects to `address`) and hands out a
task runner for every round. Each Dask or Ray worker process verifies with its own verifier pool
(`flows.engines.VERIFIER_POOLS`, `verify.workers` processes per worker). A pool starts child processes, which
multiprocessing refuses in a daemonic process, and Dask starts its worker processes daemonic by default:
local clusters here are started with `distributed.worker.daemon` off; the workers of a cluster you start
yourself need `DASK_DISTRIBUTED__WORKER__DAEMON=False`, or the task fails saying so. Ray's workers are not
multiprocessing children and need nothing. Workers of a local cluster report their task runs to the flow's
Prefect API (its URL is passed to them); remote workers need flywheel installed and reach whatever Prefect
API their own environment names.

A local Ray instance is started and stopped through `flows.ray_connection.RayConnection`, so that stopping it
leaves no authentication mode behind for a later connection to a cluster of this process.

What it does not do: autoscaling, GPU workers, or sampling: that is `engine.backend` (flows/engines.py), whose
Ray backend (flows/ray_sampling.py) uses the Ray connection started here when there is one.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from configs import TaskRunnerConfig, VerifyConfig

if TYPE_CHECKING:
    from verifiers.cache import VerdictCache

DEFAULT_WORKERS = 2
DAEMON_ADVICE = (
    "this Dask worker process is daemonic, so it cannot start the verifier pool's processes; start the "
    "workers with DASK_DISTRIBUTED__WORKER__DAEMON=False in their environment (or `distributed.worker.daemon: "
    "false` in their Dask config)"
)
_POOL_START = threading.Lock()


@dataclass(frozen=True)
class VerifiedShard:
    """A verify task's result: the shard's traces with their verdicts, the verdicts the task judged (rows of
    `verifiers.cache.CACHE_FIELDS`, for the run's verdict cache), the number of distinct answers (verdict keys)
    among the traces and how many of them `known` held."""

    traces: pa.Table
    judged: list[dict[str, Any]]
    answers: int
    from_cache: int


def verify_in_this_process(
    traces: pa.Table, problems: pa.Table, config: VerifyConfig, known: VerdictCache | None = None
) -> VerifiedShard:
    """Verdicts for one shard, from this process's verifier pool (started on first use, kept for later shards).
    `known`: verdicts judged before (the run's verdict cache, for this shard's problems), never judged again."""
    from flows.engines import VERIFIER_POOLS
    from flows.faults import crash_point
    from stages.verify import verdict_keys, verify_traces
    from verifiers.cache import VerdictCache

    if traces.num_rows:
        crash_point("verify", traces.column("round")[0].as_py())
    if multiprocessing.current_process().daemon:
        raise RuntimeError(DAEMON_ADVICE)
    with _POOL_START:  # two threads verifying their first shards at once must not start two pools
        pool = VERIFIER_POOLS.get(config)
    cache = VerdictCache(known.to_rows() if known is not None else ())  # a copy: `known` may be shared
    before = cache.keys()
    verified = verify_traces(traces, problems, config=config, pool=pool, cache=cache)
    answers = verdict_keys(traces, problems)
    return VerifiedShard(verified, cache.to_rows(leave_out=before), len(answers), len(answers & before))


verify_shard = task(name="verify-shard", cache_policy=NO_CACHE, persist_result=False)(verify_in_this_process)


@contextlib.contextmanager
def campaign_task_runner(config: TaskRunnerConfig, api_url: str | None) -> Iterator[TaskRunner[Any]]:
    """A task runner for every round of a campaign; a local Dask/Ray cluster lives as long as this block.

    `api_url` is the flow's Prefect API, handed to the workers of a local cluster so their task runs are
    recorded there (without it each worker would start a throwaway API server of its own)."""
    workers = config.workers or DEFAULT_WORKERS
    if config.kind == "local":
        yield ThreadPoolTaskRunner(max_workers=workers)
    elif config.kind == "dask":
        with _dask_runner(config, workers, api_url) as runner:
            yield runner
    else:
        with _ray_runner(config, workers, api_url) as runner:
            yield runner


@contextlib.contextmanager
def _dask_runner(config: TaskRunnerConfig, workers: int, api_url: str | None) -> Iterator[TaskRunner[Any]]:
    from prefect_dask import DaskTaskRunner

    if config.address is not None:
        yield DaskTaskRunner(address=config.address)
        return
    import dask
    import distributed

    environment = {"PREFECT_API_URL": api_url} if api_url else {}
    # The nannies read this flag, in this process, whenever they (re)start a worker process; left set for good.
    dask.config.set({"distributed.worker.daemon": False})
    cluster = distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, env=environment
    )
    with cluster:
        yield DaskTaskRunner(address=cluster.scheduler_address)


@contextlib.contextmanager
def _ray_runner(config: TaskRunnerConfig, workers: int, api_url: str | None) -> Iterator[TaskRunner[Any]]:
    from prefect_ray import RayTaskRunner

    from flows.ray_connection import RayConnection

    if config.address is not None:
        connection = RayConnection(config.address)
    else:
        environment = {"PREFECT_API_URL": api_url} if api_url else {}
        connection = RayConnection(num_cpus=workers, include_dashboard=False, runtime_env={"env_vars": environment})
    with connection:
        yield RayTaskRunner()  # finds the Ray instance started above and leaves it running between rounds
