"""Files handed between the flow process and a distributed training job: its job spec, input table and result.

They live in the round's scratch folder (local disk; see `RunStore.scratch_dir`), at the paths `PhaseFiles`
names, are written atomically, and are gone when the round commits. A phase's result folder counts as finished only
once `result.json` is in it: the model files are written first and the result last, so a job killed while saving
leaves an unfinished folder.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

RESULT = "result.json"


@dataclass(frozen=True)
class PhaseFiles:
    """Where one training phase of a round works, in the round's scratch folder."""

    checkpoints: str  # the trainer's output_dir: its checkpoint-N folders
    job: str  # the job spec of a launched phase (its input table beside it, `.parquet` added)
    result: str  # the model a launched phase trained, with `result.json` once finished
    initial_model: str  # a model built in memory, saved as a folder for a launched job to load

    @classmethod
    def under(cls, scratch: str, phase: str) -> PhaseFiles:
        return cls(
            checkpoints=f"{scratch}/{phase}",
            job=f"{scratch}/{phase}-job.json",
            result=f"{scratch}/{phase}-model",
            initial_model=f"{scratch}/initial-model",
        )


def write_job(path: str, spec: dict[str, Any], table: pa.Table) -> str:
    """Write the job spec (`path`) and its input table (`path` + `.parquet`); returns the spec's path."""
    _atomic(f"{path}.parquet", lambda target: pq.write_table(table, target))
    _atomic(path, lambda target: _write_text(target, json.dumps({**spec, "input": f"{path}.parquet"}, indent=1)))
    return path


def read_job(path: str) -> tuple[dict[str, Any], pa.Table]:
    """The job spec and its input table (schema metadata removed; the caller checks the schema)."""
    with open(path) as handle:
        spec = json.load(handle)
    table = pq.read_table(spec["input"])
    return spec, table.replace_schema_metadata(None)


def staging_dir(final_dir: str) -> str:
    """An empty folder beside `final_dir` to save a model into before `finish_result` moves it in place."""
    staging = f"{final_dir}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    return staging


def finish_result(final_dir: str, metrics: dict[str, float]) -> None:
    """Mark the staged model finished (result.json last) and move it to `final_dir`."""
    staging = f"{final_dir}.staging"
    _write_text(os.path.join(staging, RESULT), json.dumps(metrics))
    shutil.rmtree(final_dir, ignore_errors=True)
    os.replace(staging, final_dir)


def read_result(final_dir: str) -> dict[str, float] | None:
    """The metrics of a finished phase, or None if `final_dir` holds no finished result."""
    path = os.path.join(final_dir, RESULT)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return {key: float(value) for key, value in json.load(handle).items()}


def _write_text(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _atomic(path: str, write: Any) -> None:
    temporary = f"{path}.tmp-{os.getpid()}"
    write(temporary)
    os.replace(temporary, path)


def save_trained(
    final_dir: str,
    tokenizer: Any,
    metrics: dict[str, float],
    *,
    model: Any = None,
    trainer: Any = None,
    main_rank: bool = True,
) -> None:
    """Save a job's trained model as the phase's finished result in `final_dir`.

    With `trainer`, through `trainer.save_model`, which is collective under DeepSpeed ZeRO-3: every rank calls this
    and takes part; else `model` (whole on every rank) is saved by the main rank alone. Only the main rank writes
    the tokenizer and `result.json`."""
    staging = staging_dir(final_dir) if main_rank else f"{final_dir}.staging"
    if trainer is not None:
        trainer.save_model(staging)
    elif main_rank:
        model.save_pretrained(staging)
    if main_rank:
        tokenizer.save_pretrained(staging)
        finish_result(final_dir, metrics)
