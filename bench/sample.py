"""Sampling throughput: flywheel's vLLM sampler vs Hugging Face `generate`, and the sampling backends, same model,
prompts and k.

Baseline: transformers `model.generate(do_sample=True, num_return_sequences=k)` over left-padded batches,
the usual way to sample without an inference engine. `--backends` adds `engine.backend`s, each started through
`flows.engines.start_backend` as a round starts it: `replicas` (`--replicas` engine processes of this machine) and
`ray` (`--replicas` actors of a local Ray instance, each reserving its share of the cores); their rate is compared
with the in-process sampler's, and their traces must be the in-process ones (same seeds). All sample the same
problems with the same k, temperature and max_tokens; start-up is reported apart from the steady-state rate.

    .venv/bin/python -m bench.sample [--problems 2000] [--k 4] [--batch 256] [--backends replicas,ray --replicas 2]
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
    parser.add_argument("--backends", default="", help="comma-separated engine.backends to add: replicas, ray")
    parser.add_argument("--replicas", type=int, default=2, help="engines of each added backend")
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
    started = time.perf_counter()
    traces = sampler.sample(problems, spec, round_id=0, model_ref="bench", run_seed=0)
    vllm_seconds = time.perf_counter() - started
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
    print(f"problems={problems.num_rows} k={args.k} max_tokens={args.max_tokens} threads={torch.get_num_threads()}")
    print(
        f"vLLM sampler      : {vllm_rate:10.0f} samples/s  ({traces.num_rows} in {vllm_seconds:.2f}s; "
        f"engine start-up {startup:.1f}s not counted)"
    )
    print(f"HF generate (base): {hf_rate:10.0f} samples/s  ({hf_samples} in {hf_seconds:.2f}s)")
    print(f"ratio vLLM / HF generate: {vllm_rate / hf_rate:.2f}x")
    for name in filter(None, args.backends.split(",")):
        rate = _backend_rate(name, args.replicas, args.eager, folder, problems, spec, traces)
        print(f"  / in-process vLLM sampler: {rate / vllm_rate:.2f}x")


def _backend_rate(name: str, replicas: int, eager: bool, folder: str, problems: Any, spec: Any, expected: Any) -> float:
    """Start `engine.backend: name` with `replicas` engines, sample the problems once, print and return samples/s."""
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
    try:
        started = time.perf_counter()
        traces = backend.sample(problems, spec, round_id=0, model_ref="bench", run_seed=0)
        seconds = time.perf_counter() - started
    finally:
        backend.close()
    same = traces.equals(expected)
    rate = traces.num_rows / seconds
    print(
        f"{name} x{replicas} ({share} of {cores} cores each): {rate:10.0f} samples/s  ({traces.num_rows} in "
        f"{seconds:.2f}s; start-up {startup:.1f}s not counted; traces {'the same' if same else 'DIFFERENT'})"
    )
    return rate


if __name__ == "__main__":
    main()
