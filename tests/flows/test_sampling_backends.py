"""The sampling backends for real: two managed `vllm serve` servers of the tiny model (one killed mid-round, then
the other), an external endpoint, a flaky HTTP proxy in front of a server, two engine replicas in processes of their
own, and two engine actors on a local Ray cluster. The two servers serve the whole module, and their traces are what
every backend must give."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyarrow as pa
import pytest
import ray

from configs import ArithmeticConfig, EngineConfig, ModelConfig
from flows.engines import ENGINES, ManagedEndpointSampler, replica_metrics, start_backend
from flows.ray_sampling import RaySampler
from flows.replicas import ReplicaSampler
from flows.serving import ManagedServers, free_port
from stages.problems import generate_arithmetic, split_of
from stages.sample import TRACES_SCHEMA, SamplingSpec
from stages.sample_openai import EndpointError, EndpointSampler
from stages.tiny_model import build_tiny_arithmetic_model
from tests.conftest import PROCESS_TOKEN, REPO, processes_with

pytestmark = pytest.mark.slow

MODEL = ModelConfig(init="tiny-arithmetic", dtype="float32", max_model_len=32)
SPEC = SamplingSpec(3, 1.0, 1.0, 6)
SECRET = "sk-test-credential-0123456789"
KEY = ["problem_id", "sample_idx"]


def _engine(**changes: Any) -> EngineConfig:
    return EngineConfig(enforce_eager=True, extra={"distributed_executor_backend": "uni"}, **changes)


def _problems(rows: int = 10) -> pa.Table:
    return split_of(generate_arithmetic(ArithmeticConfig(n_seed=0, n_test=1, n_train=rows), seed=0), "train")


def _sample(sampler: Any, problems: pa.Table | None = None) -> pa.Table:
    traces = sampler.sample(_problems() if problems is None else problems, SPEC, round_id=1, model_ref="m", run_seed=0)
    return traces.sort_by([(k, "ascending") for k in KEY])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-model")
    model, tokenizer = build_tiny_arithmetic_model(seed=0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def managed(tiny_model: Path) -> Iterator[ManagedEndpointSampler]:
    """Two `vllm serve` servers of the tiny model, started and stopped by the openai backend in mode managed. The
    module's last test kills them."""
    backend = start_backend("openai", str(tiny_model), MODEL, _engine(backend="openai", replicas=2), seed=0)
    assert isinstance(backend, ManagedEndpointSampler)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def managed_traces(managed: ManagedEndpointSampler) -> pa.Table:
    return _sample(managed)


def test_managed_server_samples_the_traces_table_with_exact_token_counts(
    managed: ManagedEndpointSampler, managed_traces: pa.Table
) -> None:
    assert managed_traces.schema == TRACES_SCHEMA
    rows = managed_traces.to_pylist()
    assert len(rows) == 10 * SPEC.k
    assert {r["sample_idx"] for r in rows} == {0, 1, 2}
    assert all(0 < r["completion_tokens"] <= SPEC.max_tokens for r in rows)
    assert set(managed_traces.column("finish_reason").to_pylist()) <= {"stop", "length"}
    usage = managed.take_usage()
    assert [used.label for used in usage] == managed.endpoints and len(set(managed.endpoints)) == 2
    assert [used.requests for used in usage] == [5, 5]  # the problems are spread round-robin over the servers
    assert sum(used.completion_tokens for used in usage) == sum(r["completion_tokens"] for r in rows)
    assert all(used.seconds > 0 for used in usage)
    metrics = replica_metrics(usage)
    assert metrics["sample_replica1_completion_tokens"] == float(usage[1].completion_tokens)


def test_managed_server_is_seeded_per_sample(managed: ManagedEndpointSampler, managed_traces: pa.Table) -> None:
    """The same seeds give the same traces, whether the k samples come in one request or in k requests."""
    assert _sample(managed).equals(managed_traces)
    one_per_request = EndpointSampler(
        managed.endpoints,
        managed.served_model,
        tokenizer=managed.tokenizer,
        api_key=None,
        concurrency=4,
        request_n=False,
        timeout_s=60,
        max_retries=0,
        model_path=managed.model_path,
    )
    assert _sample(one_per_request).equals(managed_traces)


def test_two_replicas_sample_what_the_server_samples_and_outlive_a_dead_replica(
    tiny_model: Path, managed_traces: pa.Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two engine processes, each with half of the shard, give the traces of the same seeds. Replica 1's first
    process is SIGKILLed mid-shard, with its half sampled and not handed back: only that half is sampled again, by
    the other replica or by the fresh one started in its place, and every (problem_id, sample_idx) comes once. A
    replica killed between shards is replaced the same way."""
    monkeypatch.setenv("FLYWHEEL_KILL_AT", "replica:1.0@1")
    replicas = ReplicaSampler(str(tiny_model), MODEL, _engine(backend="replicas", replicas=2), seed=0)
    try:
        started = replicas.process_ids()
        # Each engine core runs in its replica's process, so a killed replica leaves no engine process behind.
        assert all(psutil.Process(pid).children() == [] for pid in started)
        traces = _sample(replicas)
        usage = replicas.take_usage()
        after_kill = replicas.process_ids()
        os.kill(after_kill[0], signal.SIGKILL)
        again = _sample(replicas)
        after_second_kill = replicas.process_ids()
    finally:
        replicas.close()
    assert traces.equals(managed_traces) and again.equals(managed_traces)
    assert after_kill[0] == started[0] and after_kill[1] != started[1] and not psutil.pid_exists(started[1])
    assert after_second_kill[0] != after_kill[0] and after_second_kill[1] == after_kill[1]
    # The dead replica's half was never handed back, so it is counted once: for the replica that sampled it again.
    assert sum(u.requests for u in usage) == 10 and sorted(u.requests for u in usage) in ([0, 10], [5, 5])
    assert sum(u.completion_tokens for u in usage) == sum(traces.column("completion_tokens").to_pylist())


def test_two_ray_actors_sample_what_the_server_samples_and_outlive_a_dead_actor(
    ray_cluster: str, tiny_model: Path, managed_traces: pa.Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ray backend on a local Ray cluster of 2 CPUs: two engine actors give the traces of the same seeds, and
    an actor SIGKILLed mid-shard costs only its half of the shard."""
    monkeypatch.setenv("FLYWHEEL_KILL_AT", "replica:0.0@1")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # as the cluster was started (see ray_cluster)
    engine = _engine(backend="ray", replicas=2, ray={"address": ray_cluster})
    backend = ENGINES.get(str(tiny_model), MODEL, engine, 0, purpose="sample")
    try:
        assert isinstance(backend, RaySampler)
        started = backend.process_ids()
        traces = _sample(backend)
        usage = ENGINES.take_usage()
        after_kill = backend.process_ids()
        record = ENGINES.sampling_record(engine)
        nodes = [node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]]
    finally:
        ENGINES.close()
    assert traces.equals(managed_traces)
    assert after_kill[0] != started[0] and after_kill[1] == started[1] and not psutil.pid_exists(started[0])
    assert sum(u.requests for u in usage) == 10
    assert sum(u.completion_tokens for u in usage) == sum(traces.column("completion_tokens").to_pylist())
    assert len(nodes) == 1  # the cluster's one node holds both replicas, as the manifest and the log say
    assert record == {"backend": "ray", "replicas": 2, "ray_address": ray_cluster, "nodes": nodes * 2}
    assert f"replica 1 runs on node {nodes[0]}" in backend.notes


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A Ray cluster of one node on this machine (`ray start --head`, 2 CPUs), as a user starts one; its address.
    Its processes, and those alone, are stopped afterwards: those of the session `ray start` was started in, and
    those that carry a token in their environment (Ray's agents get an environment of their own)."""
    token = f"ray-{os.getpid()}-{time.monotonic_ns()}"
    temp_dir = tempfile.mkdtemp(prefix="fw-ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    port = free_port()
    # Without token authentication: `ray start` turns it on when ~/.ray/auth_token exists, and a driver connects
    # only with the same RAY_AUTH_MODE; a cluster reachable from 127.0.0.1 alone needs none.
    env = {**os.environ, PROCESS_TOKEN: token, "PYTHONPATH": str(REPO), "RAY_AUTH_MODE": "disabled"}
    command = [
        str(Path(sys.executable).parent / "ray"), "start", "--head", "--num-cpus", "2", "--num-gpus", "0",
        "--include-dashboard=false", "--disable-usage-stats", "--node-ip-address", "127.0.0.1",
        "--port", str(port), "--ray-client-server-port", str(free_port()), "--temp-dir", temp_dir,
    ]  # fmt: skip
    head = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = head.communicate(timeout=300)
        assert head.returncode == 0, output[-5000:]
        yield f"127.0.0.1:{port}"
    finally:
        stop_processes([*processes_with(token), *processes_of_session(head.pid)])
        shutil.rmtree(temp_dir, ignore_errors=True)


def processes_of_session(session: int) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getsid(process.pid) == session:
                found.append(process)
    return found


def stop_processes(processes: list[psutil.Process]) -> None:
    processes = list({process.pid: process for process in processes}.values())
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=15)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def test_external_endpoint_records_its_model_and_never_the_key(
    managed: ManagedEndpointSampler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEACHER_API_KEY", SECRET)
    with _Proxy(managed.endpoints[0], failures=0) as proxy:
        engine = _engine(
            backend="openai", openai={"mode": "external", "endpoints": [proxy.url], "api_key_env": "TEACHER_API_KEY"}
        )
        backend = ENGINES.get("round:0-path-unused", MODEL, engine, 0, purpose="sample")
        try:
            traces = _sample(backend)
            record = ENGINES.sampling_record(engine)
        finally:
            ENGINES.close()
    assert set(traces.column("model_ref").to_pylist()) == {f"external:{managed.served_model}"}
    assert traces.num_rows == 10 * SPEC.k
    assert record["served_model"] == managed.served_model and record["endpoints"] == [proxy.url]
    assert record["traces_from"] == "external endpoints" and record["api_key_env"] == "TEACHER_API_KEY"
    # The key reached the server, and is in nothing flywheel keeps.
    assert proxy.authorizations and set(proxy.authorizations) == {f"Bearer {SECRET}"}
    kept = json.dumps(record) + json.dumps(traces.to_pylist()) + json.dumps(backend.notes)
    assert SECRET not in kept


def test_transient_errors_are_retried_with_back_off(managed: ManagedEndpointSampler, managed_traces: pa.Table) -> None:
    """A proxy that answers 503, then 429, then forwards: the client retries and the traces are the server's."""
    with _Proxy(managed.endpoints[0], failures=2) as proxy:
        flaky = _endpoint_sampler(proxy.url, managed, max_retries=3, concurrency=1)
        traces = _sample(flaky)
    assert traces.equals(managed_traces)
    assert proxy.statuses[:2] == [503, 429] and proxy.statuses[2:] == [200] * 10
    assert proxy.times[1] - proxy.times[0] >= 0.3  # the client backs off (0.5 s less jitter) before retrying


@pytest.mark.parametrize(
    ("behaviour", "message"),
    [("error", "InternalServerError"), ("garbage", "APIResponseValidationError|JSON"), ("slow", "Timeout")],
)
def test_bad_endpoints_raise_an_error_naming_the_url(
    managed: ManagedEndpointSampler, behaviour: str, message: str
) -> None:
    with _Proxy(managed.endpoints[0], failures=1000, behaviour=behaviour) as proxy:
        bad = _endpoint_sampler(proxy.url, managed, max_retries=1, concurrency=2, timeout_s=1.0)
        started = time.monotonic()
        with pytest.raises(EndpointError, match=rf"endpoint {proxy.url}") as raised:
            _sample(bad, _problems().slice(0, 1))
    assert any(part in str(raised.value) for part in message.split("|")), str(raised.value)
    assert time.monotonic() - started < 20


def test_connection_refused_names_the_url(managed: ManagedEndpointSampler) -> None:
    url = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there
    with pytest.raises(EndpointError, match=rf"endpoint {url}: APIConnectionError"):
        _sample(_endpoint_sampler(url, managed, max_retries=0, concurrency=1), _problems().slice(0, 1))


def _endpoint_sampler(url: str, managed: ManagedEndpointSampler, **settings: Any) -> EndpointSampler:
    options = {"request_n": True, "timeout_s": 60.0, **settings}
    return EndpointSampler(
        [url], managed.served_model, tokenizer=managed.tokenizer, api_key=None, model_path=managed.model_path, **options
    )


@dataclass
class _Proxy:
    """An HTTP server on 127.0.0.1 that misbehaves for its first `failures` requests (503 then 429, a 500, a body
    that is not JSON, or an answer slower than the client waits), then forwards requests to `upstream`."""

    upstream: str
    failures: int
    behaviour: str = "transient"
    statuses: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)

    def __enter__(self) -> _Proxy:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                self._forward(self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def _forward(self, body: bytes | None) -> None:
                proxy.times.append(time.monotonic())
                proxy.authorizations.append(self.headers.get("Authorization", ""))
                failing = len(proxy.statuses) < proxy.failures
                if failing and proxy.behaviour == "slow":
                    time.sleep(3)
                    return self._reply(200, b"{}")
                if failing and proxy.behaviour == "garbage":
                    return self._reply(200, b"{not json")
                if failing:
                    transient = proxy.behaviour == "transient"
                    return self._reply((503, 429)[len(proxy.statuses) % 2] if transient else 500, b'{"error": "no"}')
                target = proxy.upstream.removesuffix("/v1") + self.path
                with httpx.Client(timeout=60) as client:
                    answer = client.request(
                        self.command, target, content=body, headers={"Content-Type": "application/json"}
                    )
                self._reply(answer.status_code, answer.content)

            def _reply(self, status: int, body: bytes) -> None:
                proxy.statuses.append(status)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the slow case)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# Last in the module: it kills the module's servers.
def test_managed_servers_outlive_a_server_killed_mid_round(
    managed: ManagedEndpointSampler, caplog: pytest.LogCaptureFixture
) -> None:
    """Server 1 is SIGKILLed (its whole process group) just after its third request was sent, with one request in
    flight at a time on each server: its requests, the one in flight and those to come, go to server 0, each
    (problem_id, sample_idx) comes once, with the traces of the same seeds, and the servers' token counts sum to the
    traces'. The next shard sends nothing to the dead server. With both dead, the error names each URL."""
    problems = _problems(40)
    expected = _sample(managed, problems)
    managed.take_usage()
    one_at_a_time = _engine(backend="openai", replicas=2, openai={"concurrency": 1, "max_retries": 1})
    sampler = _KillingSampler(managed.servers, one_at_a_time, managed.tokenizer, victim=1, at_request=3)
    traces = _sample(sampler, problems)
    usage = sampler.take_usage()
    again = _sample(sampler, problems)
    usage_again = sampler.take_usage()

    assert sampler.killed
    assert traces.equals(expected) and again.equals(expected)
    keys = list(zip(*(traces.column(k).to_pylist() for k in KEY), strict=True))
    assert len(set(keys)) == len(keys) == 40 * SPEC.k
    # Its gate (one request at a time) is held until the kill has ended: at most the request in flight got through.
    assert 2 <= usage[1].requests <= 3, "server 1 was not killed mid-round"
    assert usage[0].requests + usage[1].requests == 40
    assert sum(u.completion_tokens for u in usage) == sum(traces.column("completion_tokens").to_pylist())
    dead = managed.endpoints[1]
    assert f"endpoint {dead} is down (APIConnectionError" in caplog.text
    assert [u.requests for u in usage_again] == [40, 0]  # its process is known to have exited: not tried again

    _kill_group(managed.servers, 0)
    both = "; ".join(
        f"endpoint {re.escape(url)}: its vllm serve process exited with code -9" for url in managed.endpoints
    )
    with pytest.raises(EndpointError, match=f"no endpoint is left to sample from: {both}"):
        _sample(sampler, problems.slice(0, 2))


class _KillingSampler(ManagedEndpointSampler):
    """Kills server `victim`'s process group once its request number `at_request` has been on the wire for a
    moment, while that request is in flight, then lets the request meet its fate. Driven by the sampler's own
    requests, so the kill lands mid-round however fast or slow the machine is."""

    def __init__(self, servers: ManagedServers, engine: EngineConfig, tokenizer: Any, *, victim: int, at_request: int):
        super().__init__(servers, engine, tokenizer)
        self._victim = victim
        self._at_request = at_request
        self._sent = 0
        self.killed = False

    async def _send(self, endpoint: Any, *args: Any) -> Any:
        if endpoint.url != self.servers.urls[self._victim] or self.killed:
            return await super()._send(endpoint, *args)
        self._sent += 1
        if self._sent < self._at_request:
            return await super()._send(endpoint, *args)
        in_flight = asyncio.ensure_future(super()._send(endpoint, *args))
        await asyncio.sleep(0.02)
        await asyncio.to_thread(_kill_group, self.servers, self._victim)
        self.killed = True
        return await in_flight


def _kill_group(servers: ManagedServers, replica: int) -> None:
    """SIGKILL a server's whole process group (its API server and engine core) and wait until it has exited."""
    os.killpg(servers.process_ids()[replica], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while servers.urls[replica] not in servers.exited() and time.monotonic() < deadline:
        time.sleep(0.05)
