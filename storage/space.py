"""A full disk as one clear error, and training checkpoints that a full disk (or a kill) left half-written.

`disk_space_guard(path)` turns a failure while writing under `path` into a `StoreError` naming the path and the
free space when the error is ENOSPC/EDQUOT anywhere in its chain, or when the disk is all but full (libraries
such as torch report a failed write as a RuntimeError without its errno). `discard_incomplete_checkpoints`
removes `checkpoint-N` folders a trainer did not finish saving, so resuming starts from the newest complete
one instead of failing on a missing `trainer_state.json`.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from storage.store import StoreError

logger = logging.getLogger(__name__)
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# Below this many free bytes a failed write is taken for a full disk even without ENOSPC in the error.
NEARLY_FULL_BYTES = 16 * 1024 * 1024
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
WEIGHTS = (".safetensors", ".bin", ".pt")


class DiskFullError(StoreError):
    """No space left where the store or a trainer writes."""


def free_bytes(path: str) -> int | None:
    """Free bytes on the disk holding `path` (its nearest existing folder); None where that cannot be told."""
    folder = os.path.abspath(path)
    while not os.path.exists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def is_disk_full(error: BaseException, path: str) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in FULL_ERRNOS:
            return True
        current = current.__cause__ or current.__context__
    free = free_bytes(path)
    return isinstance(error, (OSError, RuntimeError)) and free is not None and free < NEARLY_FULL_BYTES


def disk_full_message(path: str, error: BaseException) -> str:
    free = free_bytes(path)
    where = "unknown" if free is None else f"{free / 2**20:.1f} MiB"
    return (
        f"no space left on the disk holding {path} ({where} free; {type(error).__name__}: {str(error)[:200]}). "
        "Free some space (or move the run to a bigger disk and pass --store), then `flywheel resume` "
        "finishes the round; committed rounds are unchanged"
    )


@contextmanager
def disk_space_guard(path: str) -> Iterator[None]:
    try:
        yield
    except StoreError:
        raise
    except Exception as error:
        if is_disk_full(error, path):
            raise DiskFullError(disk_full_message(path, error)) from error
        raise


def checkpoint_problem(folder: str) -> str | None:
    """Why a trainer's checkpoint folder is not complete; None when it is."""
    state = os.path.join(folder, "trainer_state.json")
    try:
        with open(state, "rb") as handle:
            if "global_step" not in json.load(handle):
                return "trainer_state.json has no global_step"
    except FileNotFoundError:
        return "no trainer_state.json"
    except (OSError, ValueError) as error:
        return f"unreadable trainer_state.json ({error})"
    names = os.listdir(folder)
    if not any(name.endswith(WEIGHTS) for name in names):
        return "no weights file"
    empty = [
        name
        for name in names
        if os.path.isfile(os.path.join(folder, name)) and not os.path.getsize(os.path.join(folder, name))
    ]
    if empty:
        return f"empty file(s): {', '.join(sorted(empty))}"
    for name in names:
        if name.endswith(".safetensors"):
            from safetensors import safe_open

            try:
                with safe_open(os.path.join(folder, name), framework="pt") as weights:
                    weights.keys()
            except Exception as error:  # safetensors raises its own error types for a cut-short file
                return f"{name} is unreadable ({type(error).__name__}: {error})"
    return None


def discard_incomplete_checkpoints(output_dir: str) -> list[str]:
    """Remove the `checkpoint-N` folders of `output_dir` that are not complete; returns what was removed."""
    if not os.path.isdir(output_dir):
        return []
    removed = []
    for name in sorted(os.listdir(output_dir)):
        folder = os.path.join(output_dir, name)
        if not CHECKPOINT.match(name) or not os.path.isdir(folder):
            continue
        problem = checkpoint_problem(folder)
        if problem is not None:
            logger.warning(
                "discarding incomplete training checkpoint %s (%s); resuming from an earlier one", folder, problem
            )
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
