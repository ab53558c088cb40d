"""Engine replicas: N vLLM engines, each a `stages.sample.Sampler` in a process of its own, sampling one shard together.

`ReplicatedSampler` holds the replicas and gives them `Sampler.sample`'s contract. A `sample` call splits the
problems it is given (one shard of the round) into N contiguous slices, one per replica (`split_rows`), samples
them at once and concatenates the results in row order. Seeds depend on (run seed, round, problem) alone, so the
traces are the ones the in-process engine gives, whatever the split: the shard stays the unit of resume, and the
part files are the same.

A replica whose process dies costs only its slice: the slice goes to the first replica free to take it (a live
one that has finished its own slice, or the fresh replica started at once in the dead one's place), and the
shard's result holds each slice's rows once, from the replica that returned them. A slice that has killed
`MAX_SLICE_ATTEMPTS` replicas fails the shard with `ReplicaError` (one of its prompts may be what crashes the
engine), and the round's retry of the shard then starts fresh replicas. An engine that raises (rather than dies)
fails the shard as the in-process engine would.

Where a replica runs is a `Replica`: `ProcessReplica` here, a single-worker `concurrent.futures.ProcessPoolExecutor`
(spawned, so no CUDA or OpenMP state is inherited) whose process holds one engine for its lifetime, on its own
`tensor_parallel_size` GPUs or its own share of the cores (`flows.serving.replica_environments`); `flows.ray_sampling`
places them as actors on a Ray cluster. Replicas are not restarted when the engine hangs (no heartbeat).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from configs import EngineConfig, ModelConfig
from flows.faults import crash_point
from flows.serving import replica_environments
from stages.sample import TRACES_SCHEMA, ReplicaUsage, Sampler, SamplingSpec
from storage.models import load_tokenizer

MAX_SLICE_ATTEMPTS = 2
STOP_TIMEOUT_S = 30.0

_ENGINE: Sampler | None = None  # the engine of a replica process, made by start_engine
_NAME = ""  # the replica this process is, e.g. "replica 1.0" (replica 1, first process), for fault injection


class ReplicaError(RuntimeError):
    """A replica died or could not start, and the shard cannot be sampled without it."""


def split_rows(rows: int, parts: int) -> list[tuple[int, int]]:
    """(start, rows) of `parts` contiguous slices of `rows` rows, the first ones one row longer; empty ones left out."""
    size, extra = divmod(rows, parts)
    slices, start = [], 0
    for part in range(parts):
        length = size + (1 if part < extra else 0)
        if length:
            slices.append((start, length))
        start += length
    return slices


def start_engine(
    name: str, environment: dict[str, str], model_path: str, model: ModelConfig, engine: EngineConfig, seed: int
) -> list[str]:
    """In the replica's process: its devices or cores, then its engine; returns the engine's notes."""
    global _ENGINE, _NAME
    _NAME = name
    for variable, value in environment.items():
        os.environ.setdefault(variable, value)
    logging.getLogger("vllm").setLevel(os.environ.get("VLLM_LOGGING_LEVEL", "INFO").upper())  # as flows.env sets it
    # This process is the replica: its engine core runs in it rather than in yet another process (one import
    # of vLLM and torch fewer per replica, and no engine process left behind when a replica dies).
    replica = engine.model_copy(update={"backend": "vllm", "replicas": 1, "core_in_process": True})
    _ENGINE = Sampler(model_path, model, replica, seed)
    return _ENGINE.notes


def sample_slice(problems: pa.Table, spec: SamplingSpec, options: dict[str, Any]) -> tuple[pa.Table, ReplicaUsage]:
    """In the replica's process: one slice's traces and what sampling them took."""
    if _ENGINE is None:
        raise ReplicaError(f"{_NAME}: its engine did not start")
    traces = _ENGINE.sample(problems, spec, **options)
    (usage,) = _ENGINE.take_usage()
    # FLYWHEEL_KILL_AT=replica:<i>.<n>@<round>: replica i's n-th process dies with its slice sampled, not returned.
    crash_point(_NAME.replace(" ", ":"), options["round_id"])
    return traces, usage


def stop_engine() -> None:
    global _ENGINE
    if _ENGINE is not None:
        _ENGINE.close()
        _ENGINE = None


class Replica(Protocol):
    """One engine replica wherever it runs. Its calls return at once; their futures resolve in call order."""

    started: Future[list[str]]  # the engine's start: its notes for the log
    where: str  # for the log: where it runs and on what

    def sample(
        self, problems: pa.Table, spec: SamplingSpec, options: dict[str, Any]
    ) -> Future[tuple[pa.Table, ReplicaUsage]]: ...

    def died(self, error: BaseException) -> bool:
        """Whether `error`, raised by one of this replica's futures, means that its process is gone."""
        ...

    def process_id(self) -> int: ...

    def stop(self) -> None: ...


class ProcessReplica:
    """A replica in a spawned process of this machine (a single-worker process pool)."""

    def __init__(
        self,
        name: str,
        environment: dict[str, str],
        model_path: str,
        model: ModelConfig,
        engine: EngineConfig,
        seed: int,
    ) -> None:
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        self.started = self._pool.submit(start_engine, name, environment, model_path, model, engine, seed)
        self.where = f"an engine process of its own {environment or ''}".rstrip()

    def sample(
        self, problems: pa.Table, spec: SamplingSpec, options: dict[str, Any]
    ) -> Future[tuple[pa.Table, ReplicaUsage]]:
        try:
            return self._pool.submit(sample_slice, problems, spec, options)
        except BrokenProcessPool as error:  # it died while idle: say so through the future, as for a busy one
            failed: Future[tuple[pa.Table, ReplicaUsage]] = Future()
            failed.set_exception(error)
            return failed

    def died(self, error: BaseException) -> bool:
        return isinstance(error, BrokenProcessPool)

    def process_id(self) -> int:
        self.started.result()  # a replica started in place of a dead one may still be starting
        return self._pool.submit(os.getpid).result(timeout=60)

    def stop(self) -> None:
        """Stop its engine, then its process; one already dead is only reaped."""
        try:
            self._pool.submit(stop_engine).result(timeout=STOP_TIMEOUT_S)
        except Exception:  # dead, or it cannot stop cleanly: its pool ends it below
            pass
        self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Slot:
    replica: Replica
    generation: int = 0  # how many processes this replica has had before this one
    busy: bool = False


class ReplicatedSampler:
    """`replicas` engines made by `make_replica(index, generation)`, with `Sampler.sample`'s contract. Replica
    `i.n` is replica i's process n (0 the first, 1 the one started when it died, ...).

    `start_timeout_s` bounds how long a replica may take to start (None: no bound)."""

    def __init__(
        self,
        model_path: str,
        replicas: int,
        make_replica: Callable[[int, int], Replica],
        *,
        start_timeout_s: float | None = None,
    ) -> None:
        self.model_path = model_path
        self.tokenizer = load_tokenizer(model_path)
        self.notes: list[str] = []
        self._make_replica = make_replica
        self._start_timeout_s = start_timeout_s
        self._slots: list[_Slot] = []
        self.usage = self._fresh_usage(replicas)
        try:
            self._slots = [_Slot(make_replica(index, 0)) for index in range(replicas)]
            for index, slot in enumerate(self._slots):
                notes = self._started(index, slot)
                if index == 0:
                    self.notes += notes
                self.notes.append(f"replica {index}: {slot.replica.where}")
        except BaseException:
            self.close()
            raise

    def _started(self, index: int, slot: _Slot) -> list[str]:
        try:
            return slot.replica.started.result(timeout=self._start_timeout_s)
        except TimeoutError as error:
            raise ReplicaError(
                f"replica {index} of {len(self._slots)} did not start in {self._start_timeout_s:g} s "
                f"({slot.replica.where})"
            ) from error
        except Exception as error:
            if slot.replica.died(error):
                raise ReplicaError(f"replica {index} of {len(self._slots)}: it died starting ({error})") from error
            raise

    @staticmethod
    def _fresh_usage(replicas: int) -> list[ReplicaUsage]:
        return [ReplicaUsage(f"replica {i}") for i in range(replicas)]

    def replicas(self) -> list[Replica]:
        """The replicas now in use, in replica order."""
        return [slot.replica for slot in self._slots]

    def process_ids(self) -> list[int]:
        """The process id of each replica's engine, in replica order."""
        return [replica.process_id() for replica in self.replicas()]

    def take_usage(self) -> list[ReplicaUsage]:
        """Usage per replica since the last call, and reset."""
        taken, self.usage = self.usage, self._fresh_usage(len(self._slots))
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
        slices = [problems.slice(start, rows) for start, rows in split_rows(problems.num_rows, len(self._slots))]
        results: list[pa.Table | None] = [None] * len(slices)
        killed: list[list[str]] = [[] for _ in slices]  # the replicas that died holding each slice
        waiting: deque[int] = deque()  # slices whose replica died, for the next replica free to take them
        in_flight: dict[Future[Any], tuple[int, int | None]] = {}  # a slice's sampling, or a replacement's start
        starting_since: dict[int, float] = {}

        def hand_out(index: int, part: int) -> None:
            slot = self._slots[index]
            slot.busy = True
            in_flight[slot.replica.sample(slices[part], spec, options)] = (index, part)

        def free_slots() -> list[int]:
            return [i for i, slot in enumerate(self._slots) if not slot.busy and i not in starting_since]

        for part in range(len(slices)):
            hand_out(part, part)
        while any(result is None for result in results):
            while waiting and free_slots():
                hand_out(free_slots()[0], waiting.popleft())
            if not in_flight:
                raise ReplicaError(f"no replica is left to sample {len(waiting)} slice(s) of the shard")
            done, _ = wait(list(in_flight), timeout=self._start_timeout_s, return_when=FIRST_COMPLETED)
            if not done:
                overdue = [i for i, since in starting_since.items() if time.monotonic() - since > self._start_timeout_s]
                if overdue and all(part is None for part in in_flight.values()):
                    raise ReplicaError(
                        f"replica {overdue[0]} did not start again in {self._start_timeout_s:g} s "
                        f"({self._slots[overdue[0]].replica.where})"
                    )
                continue
            for future in done:
                index, part = in_flight.pop(future)
                slot = self._slots[index]
                if part is None:  # a replacement's start finished
                    del starting_since[index]
                    self._started(index, slot)
                    continue
                slot.busy = False
                error = future.exception()
                if error is None:
                    traces, usage = future.result()
                    results[part] = traces
                    self.usage[index].add(usage)
                    continue
                if not slot.replica.died(error):
                    raise error
                killed[part].append(f"replica {index}.{slot.generation}")
                if len(killed[part]) >= MAX_SLICE_ATTEMPTS:
                    first = slices[part].column("problem_id")[0].as_py()
                    raise ReplicaError(
                        f"the shard's slice of {slices[part].num_rows} problems from {first!r}: the engine processes "
                        f"of {' and '.join(killed[part])} died sampling it ({error})"
                    ) from error
                waiting.append(part)
                from flows.logs import run_logger  # here: replica processes import this module, and need no Prefect

                run_logger().warning(
                    "replica %d.%d died sampling %d problems of the shard (%s); replica %d.%d starts in its place, "
                    "and the first replica free samples them again",
                    index, slot.generation, slices[part].num_rows, error, index, slot.generation + 1,
                )  # fmt: skip
                self._replace(index)
                in_flight[self._slots[index].replica.started] = (index, None)
                starting_since[index] = time.monotonic()
        tables = [table for table in results if table is not None]
        return pa.concat_tables(tables) if tables else TRACES_SCHEMA.empty_table()

    def _replace(self, index: int) -> None:
        """A fresh replica in the place of replica `index`, whose process died; it starts in the background."""
        dead = self._slots[index]
        dead.replica.stop()
        generation = dead.generation + 1
        self._slots[index] = _Slot(self._make_replica(index, generation), generation)

    def close(self) -> None:
        """Stop every replica's engine, then its process; a replica already dead is only reaped."""
        for slot in self._slots:
            slot.replica.stop()
        self._slots = []


class ReplicaSampler(ReplicatedSampler):
    """`engine.replicas` engines of `model_path`, in processes of their own on this machine."""

    def __init__(self, model_path: str, model: ModelConfig, engine: EngineConfig, seed: int) -> None:
        import torch

        cuda = torch.cuda.is_available()
        environments = replica_environments(
            engine.replicas, engine.tensor_parallel_size, cuda=cuda, devices=torch.cuda.device_count() if cuda else 0
        )

        def make_replica(index: int, generation: int) -> Replica:
            name = f"replica {index}.{generation}"
            return ProcessReplica(name, environments[index], model_path, model, engine, seed)

        super().__init__(model_path, engine.replicas, make_replica)
