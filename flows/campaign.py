"""The campaign flow: create or reopen a run, then run its rounds in order, each committed before the next.

A run folder keeps the config it was created with; reopening it with a config that differs in anything
but the runtime fields (`configs.RUNTIME_FIELDS`: how rounds run, not what they compute) is refused,
naming every differing field, so one run never mixes two setups. The number of rounds asked for last is
the run's plan, which `flywheel resume` completes; a plan is never shorter than the committed rounds.
One process at a time holds a run's lock.

Early stop (`orchestration.early_stop`): before each round the committed rounds' metric is checked; when
it has not beaten the best round so far by more than `min_delta` for `patience` consecutive rounds, the
campaign ends there, logs why and records it in the store (`early_stop.json`, shown by `flywheel status`).
The rule is re-checked from the committed rounds every time, so `flywheel resume` (and a scheduled
trigger) of a stopped campaign does nothing, while `resume --no-early-stop`, a rollback to before the
plateau, or a config with another rule continues it.

Opening a run (these checks, and reading the early-stop rule) is flows/opening.py, which loads no heavy module.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, tags

from configs import RunConfig
from flows.engines import ENGINES, VERIFIER_POOLS
from flows.opening import early_stop, open_run
from flows.round import round_flow
from flows.runners import campaign_task_runner
from flows.stopping import STOP_EXCEPTIONS, cancelled, mark_abandoned_runs_crashed, run_tag
from flows.watchdog import WATCHDOG
from storage import RunLock, RunStore


def run_campaign(config: RunConfig) -> list[dict[str, Any]]:
    """The campaign flow, its flow runs (and its rounds') tagged with the run, so a later campaign can find them."""
    store = RunStore(config.store, config.run_name)
    with tags(run_tag(store.root, config.run_name)):
        return campaign_flow(config)


@flow(name="flywheel-campaign")
def campaign_flow(config: RunConfig) -> list[dict[str, Any]]:
    """Run (or resume) rounds HEAD+1 .. config.rounds, holding the run's lock; returns the new manifests.

    A stop signal ends it as a Cancelled flow run, the round in flight left open for `flywheel resume`."""
    logger = get_run_logger()
    store = open_run(config)
    manifests: list[dict[str, Any]] = []
    try:
        with RunLock(store), WATCHDOG.watching():
            for name in mark_abandoned_runs_crashed(run_tag(store.root, config.run_name)):
                logger.warning("flow run %r of this run was left Running by a process that died: marked Crashed", name)
            store.write_plan(config.rounds)
            head = store.repair_head()
            if early_stop(store, config) is None:
                store.clear_early_stop()
            runner_config = config.orchestration.task_runner
            api_url = None if runner_config.kind == "local" else _api_url()
            with campaign_task_runner(runner_config, api_url) as task_runner:
                # Closed before the task runner waits for its threads: a thread still verifying then fails at once.
                try:
                    for round_id in range(0 if head is None else head + 1, config.rounds + 1):
                        stop = early_stop(store, config)
                        if stop is not None:
                            store.write_early_stop(stop)
                            logger.warning("campaign stopped before round %d: %s", round_id, stop["reason"])
                            break
                        manifests.append(round_flow.with_options(task_runner=task_runner)(config, round_id))
                finally:
                    ENGINES.close()
                    VERIFIER_POOLS.close()
    except STOP_EXCEPTIONS as stop:
        return cancelled(stop, f"run {config.run_name!r}")
    return manifests


def _api_url() -> str | None:
    """The Prefect API this flow reports to (also the ephemeral one), for the workers of a local cluster."""
    from prefect.client.orchestration import get_client

    return str(get_client(sync_client=True).api_url)
