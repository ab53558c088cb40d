"""Sample k completions per problem from OpenAI-compatible servers (`vllm serve`, SGLang, TGI, a hosted API).

`EndpointSampler` has the contract of `stages.sample.Sampler.sample`: the same traces table, the same seed per
(problem, sample). Problems are spread round-robin over the endpoints, each with its own limit of requests in
flight, through the `openai` package's async client, whose retry policy (exponential back-off on connection
errors, timeouts, 408/409/429 and 5xx) and per-request timeout are used as they are. An endpoint that still cannot
be reached (connection refused or lost, a timeout) is down for the rest of the `sample` call: its requests, those in
flight and those to come, go to the endpoints still up, so each (problem, sample) is answered once, by one of them,
and its seed gives it the same trace wherever it is answered. An endpoint the caller knows to be gone
(`known_down`, e.g. a managed server whose process exited) is not tried at all. When no endpoint is left,
`EndpointError` names every URL and why it is down; any other failed request (an HTTP error the retries did not
clear, an answer that is not JSON or lacks what was asked for) raises `EndpointError` naming the URL at once.

Two ways to prompt. With a tokenizer (a server of the run's own checkpoint), the prompt goes to /completions as
the token ids `stages.sample.render_prompt_ids` gives, so a vLLM server samples exactly what the in-process engine
samples. Without one (an external model), it goes to /chat/completions as messages and the server applies its own
chat template. Sample i of a problem is asked for with seed+i, either in one request (`n`=k, `seed`: vLLM gives
sample i seed+i) or in k requests of n=1; servers that ignore `seed`, or batch requests differently, give other
traces on every call: their traces are reproducible only as far as the server is.

It opens no file and starts no server (flows/serving.py starts `vllm serve`); the API key is passed in by the
caller and never appears in a trace, a note or an error.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openai
import pyarrow as pa

from stages.sample import (
    TRACES_SCHEMA,
    ReplicaUsage,
    SamplingSpec,
    chat_messages,
    problem_seeds,
    render_prompt_ids,
)

T = TypeVar("T")


class EndpointError(RuntimeError):
    """A request to an endpoint failed after the client's retries, or its answer is not what was asked for."""


@dataclass(frozen=True)
class _Choice:
    index: int
    text: str
    tokens: int
    finish_reason: str | None


@dataclass
class _Endpoint:
    url: str
    usage: ReplicaUsage
    client: Any = None
    gate: asyncio.Semaphore | None = None
    busy_since: float | None = None
    in_flight: int = field(default=0)
    down: str | None = None  # why it is left out for the rest of the call


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to completion in an event loop of its own thread: the caller may be inside a running loop
    (a Prefect task, a notebook), where asyncio.run is refused."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class EndpointSampler:
    """Sampling from `endpoints` (base URLs ending in /v1) that serve `served_model`. `tokenizer` set: prompts
    are token ids on /completions; None: chat messages on /chat/completions. `traces_model_ref`, when set,
    replaces the caller's model_ref in the traces (an external model is not the round's). `warn` is told, once a
    `sample` call has ended, of each endpoint that went down during it."""

    def __init__(
        self,
        endpoints: list[str],
        served_model: str,
        *,
        tokenizer: Any | None,
        api_key: str | None,
        concurrency: int,
        request_n: bool,
        timeout_s: float,
        max_retries: int,
        model_path: str,
        traces_model_ref: str | None = None,
        notes: list[str] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("EndpointSampler needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.served_model = served_model
        self.tokenizer = tokenizer
        self.model_path = model_path
        self.traces_model_ref = traces_model_ref
        self.notes = list(notes or [])
        self._api_key = api_key or "EMPTY"  # servers without authentication accept any key; the client wants one
        self._concurrency = concurrency
        self._request_n = request_n
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._warn = warn
        self.usage = [ReplicaUsage(url) for url in self.endpoints]

    def known_down(self) -> dict[str, str]:
        """Endpoints known to be gone before any request is sent, and why; none here (a subclass that starts its
        servers knows when one has exited)."""
        return {}

    def take_usage(self) -> list[ReplicaUsage]:
        """Usage per endpoint since the last call, and reset."""
        taken, self.usage = self.usage, [ReplicaUsage(url) for url in self.endpoints]
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
        seeds = problem_seeds(problems, run_seed=run_seed, round_id=round_id, purpose=purpose)
        prompts = problems.column("prompt").to_pylist()
        problem_ids = problems.column("problem_id").to_pylist()
        went_down: list[str] = []
        try:
            results = run_coroutine(self._sample_all(prompts, seeds, spec, system_prompt, went_down))
        finally:
            for message in went_down if self._warn is not None else []:
                self._warn(message)
        rows = [
            {
                "round": round_id,
                "problem_id": problem_id,
                "sample_idx": choice.index,
                "model_ref": self.traces_model_ref or model_ref,
                "prompt": prompt,
                "completion": choice.text,
                "completion_tokens": choice.tokens,
                "finish_reason": choice.finish_reason,
                "seed": seed,
            }
            for problem_id, prompt, seed, choices in zip(problem_ids, prompts, seeds, results, strict=True)
            for choice in choices
        ]
        return pa.Table.from_pylist(rows, schema=TRACES_SCHEMA)

    async def _sample_all(
        self,
        prompts: list[str],
        seeds: list[int],
        spec: SamplingSpec,
        system_prompt: str | None,
        went_down: list[str],
    ) -> list[list[_Choice]]:
        known_down = self.known_down()
        endpoints = [
            _Endpoint(
                url,
                ReplicaUsage(url),
                openai.AsyncOpenAI(
                    base_url=url, api_key=self._api_key, timeout=self._timeout_s, max_retries=self._max_retries
                ),
                asyncio.Semaphore(self._concurrency),
            )
            for url in self.endpoints
        ]
        for endpoint in endpoints:
            endpoint.down = known_down.get(endpoint.url)
        router = _Router(endpoints, went_down)
        try:
            jobs = [
                self._sample_problem(router, row, prompt, seed, spec, system_prompt)
                for row, (prompt, seed) in enumerate(zip(prompts, seeds, strict=True))
            ]
            return list(await asyncio.gather(*jobs))
        finally:
            for endpoint in endpoints:
                await endpoint.client.close()
            for total, endpoint in zip(self.usage, endpoints, strict=True):
                total.add(endpoint.usage)

    async def _sample_problem(
        self, router: _Router, row: int, prompt: str, seed: int, spec: SamplingSpec, system_prompt: str | None
    ) -> list[_Choice]:
        if self._request_n:
            return await self._request(router, row, prompt, seed, spec.k, 0, spec, system_prompt)
        parts = await asyncio.gather(
            *(self._request(router, row, prompt, seed + i, 1, i, spec, system_prompt) for i in range(spec.k))
        )
        return [choice for part in parts for choice in part]

    async def _request(
        self,
        router: _Router,
        row: int,
        prompt: str,
        seed: int,
        n: int,
        first_index: int,
        spec: SamplingSpec,
        system_prompt: str | None,
    ) -> list[_Choice]:
        """One request for `n` samples seeded `seed` (vLLM: sample i gets seed+i), indexed from `first_index`, sent
        to row `row`'s endpoint, or to another one while the endpoint it went to is found down."""
        while True:
            endpoint = router.endpoint_for(row)
            assert endpoint.gate is not None
            async with endpoint.gate:
                if endpoint.down is not None:  # it went down while this request waited for its turn
                    continue
                try:
                    response = await self._send(endpoint, prompt, seed, n, spec, system_prompt)
                except openai.APIConnectionError as error:  # also a timeout: the server is gone or stuck
                    router.mark_down(endpoint, f"{type(error).__name__}: {error}")
                    continue
                except (openai.OpenAIError, ValueError) as error:  # ValueError: a body that is not JSON
                    raise EndpointError(f"endpoint {endpoint.url}: {type(error).__name__}: {error}") from error
            return self._choices(endpoint, response, n, first_index)

    async def _send(
        self, endpoint: _Endpoint, prompt: str, seed: int, n: int, spec: SamplingSpec, system_prompt: str | None
    ) -> Any:
        """The response of `endpoint` to one request, the client's retries included; the caller holds its gate."""
        options: dict[str, Any] = {
            "model": self.served_model,
            "n": n,
            "seed": seed,
            "temperature": spec.temperature,
            "top_p": spec.top_p,
            "max_tokens": spec.max_tokens,
            "stop": list(spec.stop) or None,
        }
        started = time.perf_counter()
        endpoint.in_flight += 1
        if endpoint.busy_since is None:
            endpoint.busy_since = started
        try:
            if self.tokenizer is not None:
                ids = render_prompt_ids(self.tokenizer, prompt, system_prompt)
                # vLLM's extension: each choice's token ids, so every sample's length is exact.
                return await endpoint.client.completions.create(
                    prompt=ids, extra_body={"return_token_ids": True}, **options
                )
            return await endpoint.client.chat.completions.create(
                messages=chat_messages(prompt, system_prompt), **options
            )
        finally:
            endpoint.in_flight -= 1
            if endpoint.in_flight == 0 and endpoint.busy_since is not None:
                endpoint.usage.seconds += time.perf_counter() - endpoint.busy_since
                endpoint.busy_since = None

    def _choices(self, endpoint: _Endpoint, response: Any, n: int, first_index: int) -> list[_Choice]:
        choices = list(getattr(response, "choices", None) or [])
        usage = getattr(response, "usage", None)
        if len(choices) != n or usage is None:
            raise EndpointError(
                f"endpoint {endpoint.url}: asked for {n} samples with usage, got {len(choices)} choices"
                f"{'' if usage is not None else ' and no usage'}: the server may not support `n` "
                "(set engine.openai.request_n: false)"
            )
        endpoint.usage.requests += 1
        endpoint.usage.prompt_tokens += int(usage.prompt_tokens or 0)
        endpoint.usage.completion_tokens += int(usage.completion_tokens or 0)
        parsed = []
        for choice in sorted(choices, key=lambda c: c.index):
            token_ids = getattr(choice, "token_ids", None)
            if token_ids is not None:
                tokens = len(token_ids)
            elif n == 1:
                tokens = int(usage.completion_tokens or 0)
            else:
                raise EndpointError(
                    f"endpoint {endpoint.url}: no token count per sample (only vLLM returns token_ids) with n={n}; "
                    "set engine.openai.request_n: false to count each sample's tokens from its own usage"
                )
            message = getattr(choice, "message", None)
            text = message.content if message is not None else choice.text
            parsed.append(_Choice(first_index + choice.index, text or "", tokens, choice.finish_reason))
        return parsed

    def close(self) -> None:
        """Nothing to release: every client is closed when its `sample` call ends."""


class _Router:
    """Which endpoint a request goes to: row i's own endpoint (i modulo their number) while it is up, else the
    endpoints still up, round-robin by row."""

    def __init__(self, endpoints: list[_Endpoint], went_down: list[str]) -> None:
        self._endpoints = endpoints
        self._went_down = went_down

    def endpoint_for(self, row: int) -> _Endpoint:
        own = self._endpoints[row % len(self._endpoints)]
        if own.down is None:
            return own
        up = [endpoint for endpoint in self._endpoints if endpoint.down is None]
        if not up:
            reasons = "; ".join(f"endpoint {endpoint.url}: {endpoint.down}" for endpoint in self._endpoints)
            raise EndpointError(f"no endpoint is left to sample from: {reasons}")
        return up[row % len(up)]

    def mark_down(self, endpoint: _Endpoint, reason: str) -> None:
        if endpoint.down is not None:
            return  # another of its requests found it down first
        endpoint.down = reason
        up = sum(other.down is None for other in self._endpoints)
        where = f"its requests go to the {up} endpoint(s) still up" if up else "no endpoint is left"
        self._went_down.append(f"endpoint {endpoint.url} is down ({reason}); {where}")


def served_models(url: str, api_key: str | None, timeout_s: float) -> list[str]:
    """The model names an endpoint lists at /models."""

    async def listing() -> list[str]:
        client = openai.AsyncOpenAI(base_url=url, api_key=api_key or "EMPTY", timeout=timeout_s, max_retries=2)
        try:
            return [model.id async for model in client.models.list()]
        except (openai.OpenAIError, ValueError) as error:
            raise EndpointError(f"endpoint {url}: listing /models: {type(error).__name__}: {error}") from error
        finally:
            await client.close()

    return run_coroutine(listing())
