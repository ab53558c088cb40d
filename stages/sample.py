"""Sample k completions per problem with vLLM.

`Sampler` holds one live vLLM engine for one model; callers reuse it across shards and close it when the
model changes. Prompts are the problem text as a user message, rendered with the model's chat template
and tokenised without extra special tokens (the template already places BOS), the same rendering TRL
uses for training. Every problem gets its own sampling seed derived from (run seed, round, problem_id), and
vLLM gives sample i of a problem the seed `seed + i`, so every (problem, sample) has its own seed and re-sampling
a shard after a crash reproduces it regardless of how problems were sharded or batched. On CPU that needs
chunked prefill off (`engine_options`).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from configs import EngineConfig, ModelConfig

TRACES_SCHEMA = pa.schema(
    [
        pa.field("round", pa.int32(), nullable=False),
        pa.field("problem_id", pa.string(), nullable=False),
        pa.field("sample_idx", pa.int32(), nullable=False),
        pa.field("model_ref", pa.string(), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("completion", pa.string(), nullable=False),
        pa.field("completion_tokens", pa.int32(), nullable=False),
        pa.field("finish_reason", pa.string()),
        pa.field("seed", pa.int64(), nullable=False),
    ]
)


PROGRESS_ENV = "FLYWHEEL_PROGRESS"


def show_progress() -> bool:
    """Progress bars (tqdm, on stderr) for a person at a terminal, not for logs: on when stderr is a TTY,
    off otherwise (CI, redirected output); FLYWHEEL_PROGRESS=1 forces them on, FLYWHEEL_PROGRESS=0 off."""
    forced = os.environ.get(PROGRESS_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return sys.stderr.isatty()


# The engine-core process gets this long to exit after SIGTERM before it is killed: it holds nothing that
# needs flushing, and vLLM's default of 5 s is most of what a stopping run has.
SHUTDOWN_TIMEOUT_S = 2.0


@dataclass
class ReplicaUsage:
    """What one replica (an endpoint, an engine process) produced: to compare replicas and compute tokens/s."""

    label: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def add(self, other: ReplicaUsage) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.seconds += other.seconds


@dataclass(frozen=True)
class SamplingSpec:
    k: int
    temperature: float
    top_p: float
    max_tokens: int
    stop: tuple[str, ...] = ()


def problem_seed(run_seed: int, round_id: int, problem_id: str, purpose: str = "sample") -> int:
    digest = hashlib.sha256(f"{run_seed}/{round_id}/{purpose}/{problem_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def problem_seeds(problems: pa.Table, *, run_seed: int, round_id: int, purpose: str) -> list[int]:
    """The sampling seed of every problem of `problems`, in row order (sample i of a problem gets seed + i)."""
    return [problem_seed(run_seed, round_id, pid, purpose) for pid in problems.column("problem_id").to_pylist()]


def chat_messages(prompt: str, system_prompt: str | None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*messages, {"role": "user", "content": prompt}]


def default_system_message(tokenizer: Any) -> str | None:
    """The system message the chat template inserts when a conversation has none (SmolLM2's and Qwen's templates
    do), found by rendering a probe conversation with and without a system turn; None if it inserts none."""
    probe_user, probe_system = "\x1fuser-probe\x1f", "\x1fsystem-probe\x1f"
    try:
        bare = tokenizer.apply_chat_template([{"role": "user", "content": probe_user}], tokenize=False)
        with_system = tokenizer.apply_chat_template(chat_messages(probe_user, probe_system), tokenize=False)
    except Exception:  # a template without a system role (it raises, as Jinja's raise_exception does) adds none
        return None
    bos = getattr(tokenizer, "bos_token", None) or ""
    system_at = with_system.index(probe_system)
    header = with_system[:system_at].removeprefix(bos)  # e.g. "<|im_start|>system\n"
    footer = with_system[system_at + len(probe_system) : with_system.index(probe_user)]  # up to the user's text
    before_user = bare[: bare.index(probe_user)]
    if not header or header not in before_user:  # no system turn at all, or the template inserts none
        return None
    inserted = before_user[before_user.index(header) + len(header) :]
    closing = footer[: footer.find("\n") + 1] if "\n" in footer else footer  # the system turn's end marker
    return inserted[: inserted.index(closing)] if closing and closing in inserted else inserted or None


def prompting_note(tokenizer: Any, system_prompt: str | None) -> str:
    """One log line on how prompts are rendered: the chat template's default system message, used or replaced."""
    default = default_system_message(tokenizer)
    if system_prompt:
        replaced = f", replacing the chat template's default {default!r}" if default else ""
        return f"prompting: chat template with problems.system_prompt {system_prompt!r}{replaced}"
    if default:
        return (
            f"prompting: problems.system_prompt is not set, so the chat template's default system message is used: "
            f"{default!r} (set problems.system_prompt to replace it)"
        )
    return "prompting: chat template without a system message (problems.system_prompt is not set)"


def prompting_record(
    tokenizer: Any, system_prompt: str | None, answer_instructions: dict[str, str | None]
) -> dict[str, Any]:
    """How prompts are rendered, for the round's manifest: which chat template (its sha256, first 12 digits), the
    system message and where it comes from (`problems.system_prompt`, the template's default, or none), the
    template's default system message (also when replaced), and each source's answer instruction."""
    template = getattr(tokenizer, "chat_template", None)
    default = default_system_message(tokenizer)
    origin = "problems.system_prompt" if system_prompt else ("chat template default" if default else None)
    digest = hashlib.sha256(template.encode()).hexdigest()[:12] if isinstance(template, str) else None
    return {
        "chat_template_sha256": digest,
        "system_message": system_prompt or default,
        "system_message_from": origin,
        "template_default_system_message": default,
        "answer_instructions": dict(answer_instructions),
    }


def describe_prompting(record: dict[str, Any]) -> list[str]:
    """A `prompting_record` as lines for people: the chat template, the system message and where it comes from,
    and each source's answer instruction."""
    digest = record.get("chat_template_sha256")
    lines = [f"chat template: the model's (sha256 {digest})" if digest else "chat template: none"]
    message, origin = record.get("system_message"), record.get("system_message_from")
    default = record.get("template_default_system_message")
    if origin == "problems.system_prompt":
        replaced = f", replacing the chat template's default {default!r}" if default else ""
        lines.append(f"system message: {message!r} (problems.system_prompt{replaced})")
    elif origin == "chat template default":
        lines.append(f"system message: {message!r} (the chat template's default; problems.system_prompt replaces it)")
    else:
        lines.append("system message: none")
    for source, instruction in sorted((record.get("answer_instructions") or {}).items()):
        said = repr(instruction) if instruction else "none (prompts as the source writes them)"
        lines.append(f"answer instruction ({source}): {said}")
    return lines


def render_prompt_ids(tokenizer: Any, prompt: str, system_prompt: str | None) -> list[int]:
    text = tokenizer.apply_chat_template(
        chat_messages(prompt, system_prompt), tokenize=False, add_generation_prompt=True
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


CPU_CHUNKED_PREFILL_NOTE = (
    "vLLM on CPU: chunked prefill is off. Every request is seeded, and after a partial (chunked) prefill vLLM "
    "rewinds the request's generator with set_offset, which CPU generators do not support ('CPU Generator does "
    "not use offset', then EngineDeadError); without chunking a prompt is prefilled in one engine step and "
    "max_num_batched_tokens is at least max_model_len"
)


def engine_options(
    model_path: str, model: ModelConfig, engine: EngineConfig, seed: int, *, cuda: bool
) -> tuple[dict[str, Any], list[str]]:
    """The `vllm.LLM` arguments for this model and machine, and a note for the log on each choice made for it.

    Raises ValueError for settings that cannot work: chunked prefill on CPU (see CPU_CHUNKED_PREFILL_NOTE)."""
    options: dict[str, Any] = {
        "model": model_path,
        "dtype": model.dtype,
        "seed": seed,
        "enable_prefix_caching": engine.enable_prefix_caching,
        "tensor_parallel_size": engine.tensor_parallel_size,
        "enforce_eager": engine.enforce_eager,
    }
    notes: list[str] = []
    if model.max_model_len is not None:
        options["max_model_len"] = model.max_model_len
    if cuda:
        options["gpu_memory_utilization"] = engine.gpu_memory_utilization
    if engine.enable_chunked_prefill is not None:
        options["enable_chunked_prefill"] = engine.enable_chunked_prefill
    elif not cuda:
        options["enable_chunked_prefill"] = False
        notes.append(CPU_CHUNKED_PREFILL_NOTE)
    options |= engine.extra
    if not cuda and options.get("enable_chunked_prefill", True):
        raise ValueError(
            "engine: chunked prefill cannot be enabled on CPU (engine.enable_chunked_prefill or "
            "engine.extra.enable_chunked_prefill): flywheel seeds every request, and vLLM's CPU backend crashes "
            "('CPU Generator does not use offset') when a seeded prompt is prefilled in chunks; leave it unset"
        )
    return options, notes


class Sampler:
    """A vLLM engine for one model. Construction takes tens of seconds; reuse it. `notes` says, for the log,
    which engine settings were chosen for this machine and why."""

    def __init__(self, model_path: str, model: ModelConfig, engine: EngineConfig, seed: int) -> None:
        import torch

        cuda = torch.cuda.is_available()
        options, self.notes = engine_options(model_path, model, engine, seed, cuda=cuda)
        if not cuda:
            # vLLM's CPU backend reads its KV cache size only from the environment.
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{engine.kv_cache_space_gib:g}")
        # Read by vLLM when an engine starts; set either way, so one engine's choice does not leak into the next.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0" if engine.core_in_process else "1"
        from vllm import LLM

        self.model_path = model_path
        self.llm = LLM(**options)
        self.tokenizer = self.llm.get_tokenizer()
        self.usage = [ReplicaUsage("in-process")]

    def take_usage(self) -> list[ReplicaUsage]:
        """What this engine sampled since the last call (one replica), and reset."""
        taken, self.usage = self.usage, [ReplicaUsage("in-process")]
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
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        problem_ids = problems.column("problem_id").to_pylist()
        prompts = problems.column("prompt").to_pylist()
        seeds = problem_seeds(problems, run_seed=run_seed, round_id=round_id, purpose=purpose)
        requests = [TokensPrompt(prompt_token_ids=render_prompt_ids(self.tokenizer, p, system_prompt)) for p in prompts]
        params = [
            SamplingParams(
                n=spec.k,
                temperature=spec.temperature,
                top_p=spec.top_p,
                max_tokens=spec.max_tokens,
                stop=list(spec.stop) or None,
                seed=seed,
            )
            for seed in seeds
        ]
        started = time.perf_counter()
        outputs = self.llm.generate(requests, params, use_tqdm=show_progress())
        usage = self.usage[0]
        usage.seconds += time.perf_counter() - started
        usage.requests += len(requests)
        usage.prompt_tokens += sum(len(request["prompt_token_ids"]) for request in requests)
        rows: list[dict[str, Any]] = []
        for problem_id, prompt, seed, output in zip(problem_ids, prompts, seeds, outputs, strict=True):
            for completion in output.outputs:
                rows.append(
                    {
                        "round": round_id,
                        "problem_id": problem_id,
                        "sample_idx": completion.index,
                        "model_ref": model_ref,
                        "prompt": prompt,
                        "completion": completion.text,
                        "completion_tokens": len(completion.token_ids),
                        "finish_reason": completion.finish_reason,
                        "seed": seed,
                    }
                )
        usage.completion_tokens += sum(row["completion_tokens"] for row in rows)
        return pa.Table.from_pylist(rows, schema=TRACES_SCHEMA)

    def close(self) -> None:
        """Shut the engine down (its engine-core process and the memory it holds). Collecting this process's
        garbage is left to the caller: a full collection can take seconds, which a stopping run cannot spare."""
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if callable(shutdown):
            shutdown(timeout=SHUTDOWN_TIMEOUT_S)
        del self.llm
