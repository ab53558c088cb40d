"""Stopping a round on Ctrl-C, SIGTERM or SIGHUP: discard the work in flight, keep everything journaled.

The command's process turns a stop signal into an exception in its main thread (`StopRequested`, or
Prefect's own `TerminationSignal` for SIGTERM inside a flow, or `KeyboardInterrupt`), so the round unwinds
like any failure: the shard or stage in flight is discarded (only finished shards and stages are
journaled, so `flywheel resume` continues exactly once), vLLM and the verifier pool are shut down and the
run's lock is released by their `finally` blocks, and each flow returns a Cancelled state, so Prefect shows
the run as Cancelled rather than Crashed or Running. A process that has not finished stopping
`STOP_DEADLINE_S` after the signal (its main thread stuck, say, in a call to a slow Prefect server) ends its
helpers, releases the run's lock and exits anyway.

A flow run whose process was SIGKILLed (no chance to say anything) stays Running in Prefect; the next
campaign of the same run marks it Crashed (`mark_abandoned_runs_crashed`): holding the run's lock proves
that no other process is working on the run.
"""

from __future__ import annotations

import faulthandler
import hashlib
import logging
import os
import signal
import sys
import threading
from typing import Any

from prefect.exceptions import CancelledRun, TerminationSignal
from prefect.states import Cancelled, Crashed

from storage.lock import release_held_locks

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOP_DEADLINE_S = 7.0
LOG_FLUSH_S = 2.0
# What a stop looks like from inside a flow: our handler's exception, Ctrl-C, Prefect's SIGTERM bridge, or
# a subflow that was cancelled by one of these.
STOP_EXCEPTIONS: tuple[type[BaseException], ...] = (KeyboardInterrupt, TerminationSignal, CancelledRun)

logger = logging.getLogger(__name__)
_stop_signals: list[int] = []  # the first stop signal this process received, once it has


class StopRequested(KeyboardInterrupt):
    """A stop signal arrived; raised in the main thread by `install_stop_handlers`' handler."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def install_stop_handlers() -> None:
    """Raise `StopRequested` in the main thread on the first stop signal; later ones are left to the deadline."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _on_stop_signal)


def _on_stop_signal(signum: int, _frame: object) -> None:
    if begin_stop(signum):
        raise StopRequested(signum)


def begin_stop(signum: int) -> bool:
    """Note that the process is stopping and arm the deadline; False if it already was."""
    if _stop_signals:
        return False
    _stop_signals.append(signum)
    threading.Thread(target=_stop_deadline, args=(signum,), name="flywheel-stop-deadline", daemon=True).start()
    return True


def _stop_deadline(signum: int) -> None:
    threading.Event().wait(STOP_DEADLINE_S)
    print(
        f"flywheel: not stopped {STOP_DEADLINE_S:.0f} s after {signal.Signals(signum).name}; ending its helpers and "
        "exiting. Finished shards and stages are kept: `flywheel resume RUN` continues. Where it was:",
        file=sys.stderr,
        flush=True,
    )
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    from flows.supervise import end_descendants

    end_descendants(0.5)
    release_held_locks()  # the main thread never reached the `finally` that releases them
    os._exit(128 + signum)


def exit_now(code: int) -> None:
    """Leave at once once a stop is handled: the flow runs are Cancelled and the lock released, so what is left
    is Prefect's log queue (sent now, for at most `LOG_FLUSH_S`) and helper processes (ended here). Python's
    normal exit would instead wait seconds for Prefect's temporary server, which shuts down gracefully only
    after every connection this process still holds to it has closed."""
    from prefect.logging.handlers import APILogWorker

    from flows.supervise import HELPER_GRACE_S, end_descendants

    flushing = threading.Thread(target=APILogWorker.drain_all, kwargs={"timeout": LOG_FLUSH_S}, daemon=True)
    flushing.start()
    flushing.join(LOG_FLUSH_S)
    end_descendants(HELPER_GRACE_S)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def signal_of(stop: BaseException) -> int:
    if isinstance(stop, StopRequested):
        return stop.signum
    if isinstance(stop, TerminationSignal):
        return stop.signal
    return signal.SIGINT


def cancelled(stop: BaseException, what: str) -> Any:
    """The Cancelled state a flow returns when `stop` (one of STOP_EXCEPTIONS) ended it."""
    if not isinstance(stop, CancelledRun):
        begin_stop(signal_of(stop))
    signum = stop_signal()
    cause = f"by {signal.Signals(signum).name}" if signum is not None else str(stop)
    message = f"{what} stopped ({cause}); finished shards and stages are kept, `flywheel resume` continues"
    logger.warning(message)
    return Cancelled(message=message)


def stop_signal() -> int | None:
    """The stop signal this process received, if any."""
    return _stop_signals[0] if _stop_signals else None


def run_tag(store_root: str, run_name: str) -> str:
    """The Prefect tag of every flow run that works on one run of one store."""
    return f"flywheel-run:{run_name}@{hashlib.sha256(store_root.encode()).hexdigest()[:10]}"


def mark_abandoned_runs_crashed(run_tag: str) -> list[str]:
    """Mark Crashed every flow run tagged `run_tag` that Prefect still shows as Running or Pending, except the
    runs this process is inside; returns their names. Call it holding the run's lock."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    with get_client(sync_client=True) as client:
        mine = _ancestry(client, context.flow_run.id if context and context.flow_run else None)
        stale = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[run_tag]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])),
            )
        )
        marked = []
        for flow_run in stale:
            if flow_run.id in mine:
                continue
            message = "its process died without reporting (found when the run was next opened)"
            client.set_flow_run_state(flow_run.id, Crashed(message=message), force=True)
            marked.append(flow_run.name)
    return marked


def _ancestry(client: Any, flow_run_id: Any) -> set[Any]:
    """This flow run and the flow runs it is a subflow of."""
    found = set()
    while flow_run_id is not None and flow_run_id not in found:
        found.add(flow_run_id)
        parent_task = client.read_flow_run(flow_run_id).parent_task_run_id
        flow_run_id = client.read_task_run(parent_task).flow_run_id if parent_task else None
    return found
