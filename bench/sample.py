"""Sampling throughput: flywheel's vLLM sampler vs bare `vllm.LLM.generate` and Hugging Face `generate`, and the
sampling backends, same model, prompts and k.

Baselines: bare `LLM.generate` on the sampler's own engine, with the prompts already rendered as token ids and one
seeded `SamplingParams(n=k)` per problem, which is what flywheel's sampler adds its prompt rendering and traces table
to (target: the sampler at >= 0.95 of it); each of the two runs `--repeats` times, alternating, and the fastest run
counts (the first run of the engine fills its prefix cache). And transformers
`model.generate(do_sample=True, num_return_sequences=k)` over left-padded batches, the usual way to sample without an
inference engine. `--backends` adds `engine.backend`s, each started through `flows.engines.start_backend` as a round
starts it, as `name` or `name:replicas` (default `--replicas`): `replicas` (engine processes of this machine), `ray`
(actors of a local Ray instance, each reserving its share of the cores) and `openai` (managed `vllm serve` servers
on 127.0.0.1, sampled over HTTP); their rate is compared with the in-process sampler's, and their traces must be the
in-process ones (same seeds). All sample the same problems with the same k, temperature and max_tokens; start-up
is reported apart from the steady-state rate.

    .venv/bin/python -m bench.sample [--problems 2000] [--k 4] [--batch 256] [--backends replicas,ray,openai:1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

from flows.env import configure_environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=2000)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--batch", type=int, default=256, help="prompts per generate() call for the baseline")
    parser.add_argument(
        "--backends", default="", help="comma-separated engine.backends to add: replicas, ray, openai (name[:replicas])"
    )
    parser.add_argument("--replicas", type=int, default=2, help="engines of an added backend that names none")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of the sampler and of bare LLM.generate")
    parser.add_argument("--eager", action="store_true", help="engine.enforce_eager: no compiling (a quick check)")
    args = parser.parse_args()
    configure_environment()

    import torch

    from configs import ArithmeticConfig, EngineConfig, ModelConfig
    from stages.problems import generate_arithmetic, split_of
    from stages.sample import Sampler, SamplingSpec, render_prompt_ids
    from stages.tiny_model import build_tiny_arithmetic_model

    problems = split_of(generate_arithmetic(ArithmeticConfig(n_seed=0, n_test=1), seed=0), "train")
    problems = problems.slice(0, args.problems)
    model, tokenizer = build_tiny_arithmetic_model(seed=0)
    folder = tempfile.mkdtemp(prefix="bench-sample-")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)

    started = time.perf_counter()
    sampler = Sampler(
        folder,
        ModelConfig(init="tiny-arithmetic", dtype="float32", max_model_len=32),
        EngineConfig(enforce_eager=args.eager),
        seed=0,
    )
    startup = time.perf_counter() - started
    spec = SamplingSpec(args.k, 1.0, 1.0, args.max_tokens)
    bare = _bare_generate(sampler, problems, spec)
    vllm_seconds, bare_seconds = float("inf"), float("inf")
    for _ in range(args.repeats):
        started = time.perf_counter()
        traces = sampler.sample(problems, spec, round_id=0, model_ref="bench", run_seed=0)
        vllm_seconds = min(vllm_seconds, time.perf_counter() - started)
        started = time.perf_counter()
        bare_samples = bare()
        bare_seconds = min(bare_seconds, time.perf_counter() - started)
    sampler.close()

    tokenizer.padding_side = "left"
    prompts = [render_prompt_ids(tokenizer, p, None) for p in problems.column("prompt").to_pylist()]
    started = time.perf_counter()
    hf_samples = 0
    with torch.no_grad():
        for start in range(0, len(prompts), args.batch):
            batch = tokenizer.pad({"input_ids": prompts[start : start + args.batch]}, return_tensors="pt")
            out = model.generate(
                **batch,
                do_sample=True,
                temperature=1.0,
                top_p=1.0,
                max_new_tokens=args.max_tokens,
                num_return_sequences=args.k,
                pad_token_id=tokenizer.pad_token_id,
            )
            hf_samples += out.shape[0]
    hf_seconds = time.perf_counter() - started

    vllm_rate, hf_rate = traces.num_rows / vllm_seconds, hf_samples / hf_seconds
    bare_rate = bare_samples / bare_seconds
    print(f"problems={problems.num_rows} k={args.k} max_tokens={args.max_tokens} threads={torch.get_num_threads()}")
    print(
        f"vLLM sampler      : {vllm_rate:10.0f} samples/s  ({traces.num_rows} in {vllm_seconds:.2f}s, fastest of "
        f"{args.repeats}; engine start-up {startup:.1f}s not counted)"
    )
    print(f"bare LLM.generate : {bare_rate:10.0f} samples/s  ({bare_samples} in {bare_seconds:.2f}s, same engine)")
    print(f"HF generate (base): {hf_rate:10.0f} samples/s  ({hf_samples} in {hf_seconds:.2f}s)")
    print(f"ratio vLLM sampler / bare LLM.generate: {vllm_rate / bare_rate:.2f}x (target >= 0.95)")
    print(f"ratio vLLM sampler / HF generate: {vllm_rate / hf_rate:.2f}x")
    for added in filter(None, args.backends.split(",")):
        name, _, replicas = added.partition(":")
        rate = _backend_rate(
            name, int(replicas or args.replicas), args.eager, folder, problems, spec, traces, args.repeats
        )
        print(f"  / in-process vLLM sampler: {rate / vllm_rate:.2f}x")


def _bare_generate(sampler: Any, problems: Any, spec: Any) -> Any:
    """A call of bare `LLM.generate` on the sampler's engine over the problems, as a user of vLLM would sample them:
    prompts rendered as token ids beforehand, one seeded `SamplingParams(n=k)` per problem; it returns the samples."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    from stages.sample import problem_seeds, render_prompt_ids

    requests = [
        TokensPrompt(prompt_token_ids=render_prompt_ids(sampler.tokenizer, prompt, None))
        for prompt in problems.column("prompt").to_pylist()
    ]
    seeds = problem_seeds(problems, run_seed=0, round_id=0, purpose="sample")
    params = [
        SamplingParams(n=spec.k, temperature=spec.temperature, top_p=spec.top_p, max_tokens=spec.max_tokens, seed=s)
        for s in seeds
    ]

    def generate() -> int:
        outputs = sampler.llm.generate(requests, params, use_tqdm=False)
        return sum(len(output.outputs) for output in outputs)

    return generate


def _backend_rate(
    name: str, replicas: int, eager: bool, folder: str, problems: Any, spec: Any, expected: Any, repeats: int
) -> float:
    """Start `engine.backend: name` with `replicas` engines, sample the problems `repeats` times, print and return
    the fastest run's samples/s."""
    import os

    from configs import EngineConfig, ModelConfig
    from flows.engines import start_backend

    cores = len(os.sched_getaffinity(0))
    share = max(1, cores // replicas)
    engine = EngineConfig(backend=name, replicas=replicas, enforce_eager=eager, ray={"num_cpus": share})
    model = ModelConfig(init="tiny-arithmetic", dtype="float32", max_model_len=32)
    started = time.perf_counter()
    backend = start_backend(name, folder, model, engine, seed=0)
    startup = time.perf_counter() - started
    seconds, same = float("inf"), True
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            traces = backend.sample(problems, spec, round_id=0, model_ref="bench", run_seed=0)
            seconds = min(seconds, time.perf_counter() - started)
            same = same and traces.equals(expected)
    finally:
        backend.close()
    rate = traces.num_rows / seconds
    print(
        f"{name} x{replicas} ({share} of {cores} cores each): {rate:10.0f} samples/s  ({traces.num_rows} in "
        f"{seconds:.2f}s, fastest of {repeats}; start-up {startup:.1f}s not counted; traces "
        f"{'the same' if same else 'DIFFERENT'})"
    )
    return rate


if __name__ == "__main__":
    main()
