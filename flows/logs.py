"""The logger for a round's work: Prefect's run logger inside a flow or task (its lines reach the console and the
UI), else a plain `logging` logger, so a stage function called outside any flow (a test, a script) still logs."""

from __future__ import annotations

import logging

from prefect import get_run_logger
from prefect.exceptions import MissingContextError


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("flywheel")
