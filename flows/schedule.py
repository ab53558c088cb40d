"""`flywheel schedule`: add rounds to a run on a cron schedule, through a Prefect deployment served here.

`serve_schedule` creates (or updates) the deployment `flywheel-scheduled-rounds/<name>` with a cron schedule
on a Prefect server and runs it in the foreground with a Prefect runner until interrupted; the runner starts
each triggered run in a child process. Each trigger commits `rounds_per_trigger` more rounds after the run's
newest committed one (on a fresh run, round 0, the baseline, counts as one): it raises the run's plan to that
round and runs the campaign, which first finishes a round left open by a crash. A campaign that stopped early
stays stopped: later triggers log why and commit nothing (see flows/campaign.py). The deployment runs one
trigger at a time (a concurrency limit of 1), so a trigger that fires while a round is still going waits for
it instead of failing on the run's lock. Interrupting the command pauses the schedule (Prefect's default), so
missed triggers do not pile up while nothing serves them.

The scheduler is a service of a Prefect server; Prefect's ephemeral API, which `flywheel run` uses, has
none. So this needs `PREFECT_API_URL` to name a running server, and says how to start one when it does not.

What it does not do: start a Prefect server, or use work pools and workers (the runner in this process
executes the runs; for a fleet, deploy `scheduled_rounds` to a work pool with Prefect's own tools).
"""

from __future__ import annotations

import logging
import signal
from typing import Any

from prefect import flow, get_run_logger

from configs import RunConfig, parse_config

DEPLOYMENT_FLOW = "flywheel-scheduled-rounds"
HEALTH_TIMEOUT_S = 5.0


class ScheduleError(RuntimeError):
    """A schedule that cannot be served: a bad cron string or time zone, or no reachable Prefect server."""


def no_server_message(home: str) -> str:
    return (
        "flywheel schedule needs a Prefect server, and PREFECT_API_URL is not set: Prefect's ephemeral API "
        '(what `flywheel run` uses) does not run the scheduler ("Cannot schedule flows on an ephemeral server").\n'
        "  1. start one, in another terminal or as a service:  prefect server start\n"
        "     (state in SQLite under PREFECT_HOME by default; for a team, a Postgres database via\n"
        "     PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://user:password@host:5432/prefect)\n"
        "  2. point flywheel at it:  export PREFECT_API_URL=http://127.0.0.1:4200/api\n"
        f"     or keep it in flywheel's Prefect profile:  PREFECT_HOME={home} prefect config set "
        "PREFECT_API_URL=http://127.0.0.1:4200/api"
    )


def check_cron(cron: str, timezone: str | None) -> Any:
    """Prefect's own cron schedule, or ScheduleError saying what is wrong with the string or time zone."""
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        return CronSchedule(cron=cron, timezone=timezone)
    except ValidationError as error:
        problems = "; ".join(str(item["msg"]).removeprefix("Value error, ") for item in error.errors())
        raise ScheduleError(
            f"--cron {cron!r}{f' --timezone {timezone!r}' if timezone else ''}: {problems}. A cron string has "
            "five fields, minute hour day-of-month month day-of-week, e.g. '0 3 * * *' (03:00 every day)"
        ) from None


def check_server(home: str) -> str:
    """The URL of a reachable Prefect server, or ScheduleError saying how to start or reach one."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise ScheduleError(no_server_message(home))
    health = f"{url.rstrip('/')}/health"
    try:
        response = httpx.get(health, timeout=HEALTH_TIMEOUT_S)
        response.raise_for_status()
    except httpx.HTTPError as error:
        raise ScheduleError(
            f"cannot reach the Prefect server at {url} (PREFECT_API_URL): {type(error).__name__}: {error}. "
            "Is `prefect server start` running there, and is the URL right (it ends in /api)?"
        ) from None
    return url


@flow(name=DEPLOYMENT_FLOW)
def scheduled_rounds(config: dict[str, Any], rounds_per_trigger: int = 1) -> list[int]:
    """One trigger: commit the next `rounds_per_trigger` rounds of the run; returns the rounds committed."""
    from flows.campaign import run_campaign
    from flows.opening import open_run
    from flows.stopping import STOP_EXCEPTIONS, cancelled

    run_config = parse_config(config, source="deployment parameters")
    store = open_run(run_config)
    committed = store.committed_rounds()
    target = committed[-1] + rounds_per_trigger if committed else rounds_per_trigger - 1
    get_run_logger().info(
        "run %r: newest committed round %s; this trigger runs up to round %d",
        run_config.run_name,
        committed[-1] if committed else "none",
        target,
    )
    try:
        manifests = run_campaign(run_config.model_copy(update={"rounds": target}))
    except STOP_EXCEPTIONS as stop:
        return cancelled(stop, f"the trigger of run {run_config.run_name!r}")
    return [manifest["round"] for manifest in manifests]


def serve_schedule(config: RunConfig, cron: str, timezone: str | None, name: str, rounds_per_trigger: int) -> None:
    """Create or update the deployment and serve it here until interrupted; an interrupt pauses its schedule."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    # asyncio's own SIGINT handler only cancels the runner's main task, which a runner busy submitting a flow run
    # can absorb, so a Ctrl-C neither stopped it nor paused the schedule: raise KeyboardInterrupt at once instead.
    previous = signal.signal(signal.SIGINT, _interrupt)
    try:
        scheduled_rounds.serve(
            name=name,
            schedules=[Cron(cron, timezone=timezone)],
            parameters={"config": config.model_dump(mode="json"), "rounds_per_trigger": rounds_per_trigger},
            description=f"Adds {rounds_per_trigger} round(s) to flywheel run {config.run_name!r} in {config.store}.",
            tags=["flywheel", config.run_name],
            global_limit=1,
            # Loaded by module path in the runner's child process, wherever flywheel is installed.
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
        _pause(name)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _pause(name: str) -> None:
    """Pause the deployment's schedule, whether or not the runner's own shutdown did. A server that is gone by now
    gets a warning saying how to pause it later: raising here would replace the error that stopped serving."""
    from prefect import get_client

    deployment = f"{DEPLOYMENT_FLOW}/{name}"
    try:
        with get_client(sync_client=True) as client:
            client.pause_deployment(client.read_deployment_by_name(deployment).id)
    except Exception as error:  # any failure of the client: the error that stopped serving matters more
        logging.getLogger("flywheel").warning(
            "could not pause the schedule of deployment %s (%s: %s); once the Prefect server is back, pause it "
            "with: prefect deployment pause %s",
            deployment, type(error).__name__, error, deployment,
        )  # fmt: skip
