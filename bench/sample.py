"""Sampling throughput: flywheel's vLLM sampler vs Hugging Face `generate`, same model, prompts and k.

Baseline: transformers `model.generate(do_sample=True, num_return_sequences=k)` over left-padded batches,
the usual way to sample without an inference engine. Both sample the same problems with the same k,
temperature and max_tokens; the engine's start-up is reported apart from its steady-state rate.

    .venv/bin/python -m bench.sample [--problems 2000] [--k 4] [--batch 256]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from flows.env import configure_environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=2000)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--batch", type=int, default=256, help="prompts per generate() call for the baseline")
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
        folder, ModelConfig(init="tiny-arithmetic", dtype="float32", max_model_len=32), EngineConfig(), seed=0
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


if __name__ == "__main__":
    main()
