"""Which failures a retry can fix: Prefect's `retry_condition_fn` for the retried stages and shards.

Retried: flaky I/O (a connection reset, a timeout, an object store that answered 503) and any other error
the first time it is seen. Not retried, since a retry would spend the same time only to fail the same way:
bad input and bugs (a config error, a ValueError or KeyError, an assertion), running out of memory, a full
or read-only disk, and an error that recurs on a fresh attempt with the same type and message (an engine
crash that a fresh engine repeats). Each decision is logged with its reason.
"""

from __future__ import annotations

import errno
import logging
import threading
from typing import Any

from configs import ConfigError
from storage import StoreIntegrityError
from storage.space import DiskFullError

# Bad input or a bug: the same call fails the same way.
DETERMINISTIC = (
    ConfigError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    AssertionError,
    ImportError,
    NotImplementedError,
    MemoryError,
)
PERMANENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
OUT_OF_MEMORY_MARKERS = ("out of memory", "outofmemory", "cuda oom")

_last_errors: dict[Any, str] = {}  # task run id -> signature of its last failed attempt
_lock = threading.Lock()


def retry_reason(error: BaseException, previous: str | None) -> tuple[bool, str]:
    """(retry?, why) for a failed attempt whose error is `error`; `previous` is the last attempt's signature."""
    signature = _signature(error)
    if isinstance(error, DiskFullError | StoreIntegrityError):
        return False, f"{type(error).__name__} does not go away on a retry"
    if isinstance(error, OSError) and error.errno in PERMANENT_ERRNOS:
        return False, f"{errno.errorcode.get(error.errno, error.errno)} does not go away on a retry"
    if any(marker in signature.lower() for marker in OUT_OF_MEMORY_MARKERS) or isinstance(error, MemoryError):
        return False, "out of memory recurs on a retry"
    if isinstance(error, DETERMINISTIC):
        return False, f"{type(error).__name__} is bad input or a bug, which a retry repeats"
    if isinstance(error, OSError | ConnectionError | TimeoutError):
        return True, "flaky I/O may succeed on a retry"
    if previous == signature:
        return False, "the same error recurred on a fresh attempt"
    return True, "first time this error was seen"


def should_retry(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: classify the attempt's exception and log the decision."""
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        return True
    with _lock:
        previous = _last_errors.get(task_run.id)
        _last_errors[task_run.id] = _signature(error)
    retry, why = retry_reason(error, previous)
    _logger().warning(
        "%s attempt %d failed with %s: %s; %s: %s",
        task.name,
        task_run.run_count,
        type(error).__name__,
        str(error)[:300],
        "retrying" if retry else "not retrying",
        why,
    )
    return retry


def _signature(error: BaseException) -> str:
    return f"{type(error).__module__}.{type(error).__qualname__}: {error}"


def _logger() -> Any:
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)
