"""`engine.backend: replicas`: N vLLM engines, each a `stages.sample.Sampler` in a process of its own.

Each replica is a single-worker `concurrent.futures.ProcessPoolExecutor` (spawned, so no CUDA or OpenMP state is
inherited) whose process holds one engine for its lifetime. A `sample` call splits the problems it is given (one
shard of the round) into N contiguous slices, one per replica, samples them at once and concatenates the results
in row order. Seeds depend on (run seed, round, problem) alone, so the traces are the ones the in-process engine
gives, whatever the split: the shard stays the unit of resume, and the part files are the same. On GPU each
replica sees its own `tensor_parallel_size` devices, on CPU its own share of the cores (`flows.serving`).
A replica that dies raises `ReplicaError` naming it; the round's retry of the shard then starts fresh replicas.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pyarrow as pa

from configs import EngineConfig, ModelConfig
from flows.serving import replica_environments
from stages.sample import TRACES_SCHEMA, ReplicaUsage, Sampler, SamplingSpec
from storage.models import load_tokenizer

_ENGINE: Sampler | None = None  # the engine of a replica process, made by _start


class ReplicaError(RuntimeError):
    """A replica process died or its engine failed."""


def _start(
    environment: dict[str, str], model_path: str, model: ModelConfig, engine: EngineConfig, seed: int
) -> list[str]:
    """In the replica's process: its devices or cores, then its engine; returns the engine's notes."""
    global _ENGINE
    for name, value in environment.items():
        os.environ.setdefault(name, value)
    # This process is the replica: its engine core runs in it rather than in yet another process (one import
    # of vLLM and torch fewer per replica, and no engine process left behind when a replica dies).
    replica = engine.model_copy(update={"backend": "vllm", "replicas": 1, "core_in_process": True})
    _ENGINE = Sampler(model_path, model, replica, seed)
    return _ENGINE.notes


def _sample(problems: pa.Table, spec: SamplingSpec, options: dict[str, Any]) -> tuple[pa.Table, ReplicaUsage]:
    assert _ENGINE is not None, "replica engine not started"
    traces = _ENGINE.sample(problems, spec, **options)
    (usage,) = _ENGINE.take_usage()
    return traces, usage


def _stop() -> None:
    global _ENGINE
    if _ENGINE is not None:
        _ENGINE.close()
        _ENGINE = None


class ReplicaSampler:
    """`engine.replicas` engines of `model_path`, in processes of their own, with `Sampler.sample`'s contract."""

    def __init__(self, model_path: str, model: ModelConfig, engine: EngineConfig, seed: int) -> None:
        import torch

        cuda = torch.cuda.is_available()
        environments = replica_environments(
            engine.replicas, engine.tensor_parallel_size, cuda=cuda, devices=torch.cuda.device_count() if cuda else 0
        )
        self.model_path = model_path
        self.tokenizer = load_tokenizer(model_path)
        self._pools = [
            ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            for _ in environments
        ]
        self.usage = [ReplicaUsage(f"replica {i}") for i in range(len(self._pools))]
        self.notes: list[str] = []
        try:
            started = [
                pool.submit(_start, environment, model_path, model, engine, seed)
                for pool, environment in zip(self._pools, environments, strict=True)
            ]
            for replica, (future, environment) in enumerate(zip(started, environments, strict=True)):
                notes = self._result(replica, future)
                if replica == 0:
                    self.notes += notes
                self.notes.append(f"replica {replica}: an engine process of its own {environment or ''}")
        except BaseException:
            self.close()
            raise

    def process_ids(self) -> list[int]:
        """The process id of each replica's engine process, in replica order."""
        return [pool.submit(os.getpid).result(timeout=60) for pool in self._pools]

    def take_usage(self) -> list[ReplicaUsage]:
        """Usage per replica since the last call, and reset."""
        taken, self.usage = self.usage, [ReplicaUsage(f"replica {i}") for i in range(len(self._pools))]
        return taken

    def sample(
        self,
        problems: pa.Table,
        spec: SamplingSpec,
        *,
        round_id: int,
        model_ref: str,
        run_seed: int,
        system_prompt: str | None = None,
        purpose: str = "sample",
    ) -> pa.Table:
        options = {
            "round_id": round_id,
            "model_ref": model_ref,
            "run_seed": run_seed,
            "system_prompt": system_prompt,
            "purpose": purpose,
        }
        per_replica, extra = divmod(problems.num_rows, len(self._pools))
        futures: list[tuple[int, Future[tuple[pa.Table, ReplicaUsage]]]] = []
        start = 0
        for replica, pool in enumerate(self._pools):
            rows = per_replica + (1 if replica < extra else 0)
            if rows:
                futures.append((replica, pool.submit(_sample, problems.slice(start, rows), spec, options)))
            start += rows
        tables = []
        for replica, future in futures:
            traces, usage = self._result(replica, future)
            self.usage[replica].add(usage)
            tables.append(traces)
        return pa.concat_tables(tables) if tables else TRACES_SCHEMA.empty_table()

    def _result(self, replica: int, future: Future[Any]) -> Any:
        try:
            return future.result()
        except BrokenProcessPool as error:
            raise ReplicaError(f"replica {replica} of {len(self._pools)}: its engine process died ({error})") from error

    def close(self) -> None:
        """Stop every replica's engine, then its process; a replica already dead is skipped."""
        stopping = []
        for pool in self._pools:
            try:
                stopping.append(pool.submit(_stop))
            except (BrokenProcessPool, RuntimeError):
                continue
        deadline = time.monotonic() + 30.0
        for future in stopping:
            try:
                future.result(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:  # a replica that cannot stop cleanly is ended with its pool below
                continue
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)
        self._pools = []

