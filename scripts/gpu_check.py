"""GPU readiness: check that a machine can run flywheel's training (SFT, LoRA, GRPO) before a run is put on it.

    python scripts/gpu_check.py                 # on CUDA (the default); exits 1 if there is none
    python scripts/gpu_check.py --device cpu    # the same checks on CPU, smaller (seconds)
    python scripts/gpu_check.py --json out.json # also write the results as JSON

Needs only torch, transformers, peft and accelerate: no TRL, no vLLM, nothing of flywheel, no downloads (every
model is a small Llama built from a config with random weights), so it runs on an offline machine as it comes.
The checks, each timed:
- device: the device is there (name, compute capability, bf16 support, memory);
- matmul bf16 / fp16: a product agrees with float64 to the precision's tolerance; its TFLOP/s;
- sft: a Llama trained through accelerate (bf16 mixed precision on CUDA) on a next-token task: the loss halves;
- lora: a peft LoRA adapter trained the same way: the loss falls, the base weights stay as they were, and
  `merge_and_unload` gives a plain model with the adapter's logits;
- grpo: group-relative policy-gradient steps (samples of each prompt scored, advantages = reward minus the group's
  mean over the group's deviation, as GRPO computes them, written out here since TRL is not needed): the reward
  rises;
- memory: the peak memory the checks took.
It prints a pass/fail table and exits 1 if any check failed. It is a readiness check, not a benchmark.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

# OpenMP's default spinning makes torch several times slower on a CPU that other processes share; set before torch
# is imported, which reads it then.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

VOCAB = 32
TARGET_TOKEN = 5  # the token the GRPO reward asks for


@dataclass
class Check:
    name: str
    passed: bool
    seconds: float
    detail: str


@dataclass(frozen=True)
class Scale:
    """Sizes for the device: the CPU run is small enough for a test."""

    matmul: int
    hidden: int
    layers: int
    batch: int
    sequence: int
    steps: int

    @classmethod
    def of(cls, device: str) -> Scale:
        if device == "cuda":
            return cls(matmul=8192, hidden=256, layers=4, batch=32, sequence=64, steps=80)
        return cls(matmul=256, hidden=64, layers=2, batch=8, sequence=16, steps=40)


def tiny_llama(scale: Scale, seed: int) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=scale.hidden,
        intermediate_size=scale.hidden * 2,
        num_hidden_layers=scale.layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=scale.sequence * 2,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    return LlamaForCausalLM(config)


def periodic_batch(scale: Scale, generator: torch.Generator, device: str) -> torch.Tensor:
    """Rows counting up modulo 8 from a random start: every token after the first is predictable."""
    starts = torch.randint(0, 8, (scale.batch, 1), generator=generator)
    return (3 + (starts + torch.arange(scale.sequence)) % 8).to(device)


def check_device(device: str) -> str:
    if device == "cpu":
        return f"cpu, {torch.get_num_threads()} threads, torch {torch.__version__}"
    if not torch.cuda.is_available():
        raise RuntimeError(f"CUDA is not available to torch {torch.__version__} (built for CUDA {torch.version.cuda})")
    properties = torch.cuda.get_device_properties(0)
    return (
        f"{properties.name}, compute capability {properties.major}.{properties.minor}, "
        f"{properties.total_memory / 2**30:.0f} GiB, bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}, "
        f"torch {torch.__version__} (CUDA {torch.version.cuda})"
    )


def check_matmul(device: str, scale: Scale, dtype: torch.dtype, tolerance: float) -> str:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(scale.matmul, scale.matmul, generator=generator).to(device)
    b = torch.randn(scale.matmul, scale.matmul, generator=generator).to(device)
    low_a, low_b = a.to(dtype), b.to(dtype)
    product = low_a @ low_b
    exact = low_a.double() @ low_b.double()  # the inputs as rounded: only the product's own error is measured
    error = (torch.linalg.norm(product.double() - exact) / torch.linalg.norm(exact)).item()
    repeats = 10 if device == "cuda" else 3
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        low_a @ low_b
    _synchronize(device)
    tflops = 2 * scale.matmul**3 * repeats / (time.perf_counter() - started) / 1e12
    detail = f"{scale.matmul}^3, relative error {error:.1e} (tolerance {tolerance:.0e}), {tflops:.3g} TFLOP/s"
    if not error < tolerance:
        raise AssertionError(detail)
    return detail


def _train_next_token(model: Any, parameters: list[Any], accelerator: Any, scale: Scale, lr: float) -> list[float]:
    """Next-token training on periodic rows through `accelerator`; the loss of every step."""
    optimizer = torch.optim.AdamW(parameters, lr=lr)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    generator = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(scale.steps):
        batch = periodic_batch(scale, generator, accelerator.device.type)
        loss = model(input_ids=batch, labels=batch).loss
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def _falls(losses: list[float], by: float) -> tuple[float, float]:
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    if not (math.isfinite(last) and last < first * by):
        raise AssertionError(f"loss {first:.3f} -> {last:.3f}: did not fall below {by:g} x its start")
    return first, last


def check_sft(accelerator: Any, scale: Scale) -> str:
    model = tiny_llama(scale, seed=0)
    started = time.perf_counter()
    losses = _train_next_token(model, list(model.parameters()), accelerator, scale, lr=3e-3)
    seconds = time.perf_counter() - started
    first, last = _falls(losses, 0.5)
    parameters = sum(p.numel() for p in model.parameters()) / 1e6
    return (
        f"{parameters:.2f}M parameters, {scale.steps} steps, mixed precision {accelerator.mixed_precision}: "
        f"loss {first:.3f} -> {last:.3f}, {scale.steps / seconds:.1f} steps/s"
    )


def check_lora(accelerator: Any, scale: Scale) -> str:
    from peft import LoraConfig, get_peft_model

    base = tiny_llama(scale, seed=0)
    frozen_before = base.model.layers[0].self_attn.q_proj.weight.detach().clone()
    adapter = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )  # fmt: skip
    model = get_peft_model(base, adapter)
    trainable = [p for p in model.parameters() if p.requires_grad]
    losses = _train_next_token(model, trainable, accelerator, scale, lr=1e-2)
    first, last = _falls(losses, 0.85)
    model = accelerator.unwrap_model(model)
    if not torch.equal(model.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight, frozen_before):
        raise AssertionError("a base weight changed while only the adapter was trained")
    model.eval()
    probe = periodic_batch(scale, torch.Generator().manual_seed(2), accelerator.device.type)
    with torch.no_grad():
        adapted = model(input_ids=probe).logits.float()
        merged = model.merge_and_unload()
        plain = merged(input_ids=probe).logits.float()
    leftover = [name for name in merged.state_dict() if "lora_" in name]
    if leftover:
        raise AssertionError(f"the merged model still has adapter weights: {leftover[0]}")
    difference = (adapted - plain).abs().max().item()
    if not difference < 1e-3:
        raise AssertionError(f"merged logits differ from the adapter's by {difference:.2e}")
    share = sum(p.numel() for p in trainable) / sum(p.numel() for p in base.parameters())
    return (
        f"{share:.1%} of the parameters trainable: loss {first:.3f} -> {last:.3f}; merged, logits within "
        f"{difference:.1e} of the adapter's"
    )


def check_grpo(device: str, scale: Scale) -> str:
    """GRPO's update on a policy that should learn to emit TARGET_TOKEN: reward = share of that token."""
    model = tiny_llama(scale, seed=3).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    prompts, group, length, prompt_length = 4, 8, 8, 4
    generator = torch.Generator().manual_seed(4)
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=bf16)
    rewards_per_step = []
    steps = scale.steps // 2
    for _ in range(steps):
        prompt = torch.randint(3, VOCAB, (prompts, prompt_length), generator=generator).to(device)
        model.eval()
        with torch.no_grad(), autocast:
            sequences = model.generate(
                input_ids=prompt.repeat_interleave(group, dim=0), attention_mask=torch.ones_like(
                    prompt.repeat_interleave(group, dim=0)
                ), do_sample=True, temperature=1.0, top_k=0, max_new_tokens=length, min_new_tokens=length,
                pad_token_id=0, eos_token_id=None,
            )  # fmt: skip
        completion = sequences[:, prompt_length:]
        rewards = (completion == TARGET_TOKEN).float().mean(dim=1).view(prompts, group)
        advantages = (rewards - rewards.mean(dim=1, keepdim=True)) / (rewards.std(dim=1, keepdim=True) + 1e-4)
        model.train()
        with autocast:
            logits = model(input_ids=sequences).logits[:, prompt_length - 1 : -1].float()
        log_probs = torch.log_softmax(logits, dim=-1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)
        loss = -(advantages.view(-1, 1) * log_probs).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        if not math.isfinite(loss.item()):
            raise AssertionError(f"the policy loss is {loss.item()}")
        rewards_per_step.append(rewards.mean().item())
    first, last = sum(rewards_per_step[:3]) / 3, sum(rewards_per_step[-3:]) / 3
    detail = f"{steps} steps of {prompts} prompts x {group} samples: mean reward {first:.3f} -> {last:.3f}"
    if not last > first + 0.1:
        raise AssertionError(detail + " (did not rise by 0.1)")
    return detail


def memory_detail(device: str) -> str:
    if device == "cuda":
        return f"peak {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB allocated by torch on the GPU"
    import resource

    return f"peak resident memory of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"


def run_checks(device: str) -> list[Check]:
    scale = Scale.of(device)
    results: list[Check] = []

    def run(name: str, check: Callable[[], str]) -> bool:
        started = time.perf_counter()
        try:
            detail, passed = check(), True
        except Exception as error:  # a readiness check reports every failure and goes on to the next check
            detail, passed = f"{type(error).__name__}: {error}", False
            traceback.print_exc(file=sys.stderr)
        results.append(Check(name, passed, time.perf_counter() - started, detail))
        return passed

    if not run("device", lambda: check_device(device)):
        return results
    from accelerate import Accelerator

    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    accelerator = Accelerator(cpu=device == "cpu", mixed_precision="bf16" if bf16 else "no")
    run("matmul bf16", lambda: check_matmul(device, scale, torch.bfloat16, 2e-2))
    run("matmul fp16", lambda: check_matmul(device, scale, torch.float16, 5e-3))
    run("sft", lambda: check_sft(accelerator, scale))
    run("lora", lambda: check_lora(accelerator, scale))
    run("grpo", lambda: check_grpo(device, scale))
    run("memory", lambda: memory_detail(device))
    return results


def render(results: list[Check]) -> str:
    width = max(len(result.name) for result in results)
    lines = [f"{'check':<{width}}  result  seconds  detail"]
    for result in results:
        verdict = "PASS" if result.passed else "FAIL"
        lines.append(f"{result.name:<{width}}  {verdict:<6}  {result.seconds:>7.1f}  {result.detail}")
    failed = [result.name for result in results if not result.passed]
    lines.append(f"FAILED: {', '.join(failed)}" if failed else "all checks passed")
    return "\n".join(lines)


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="where to run the checks")
    parser.add_argument("--json", help="also write the results to this file as JSON")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    results = run_checks(args.device)
    print(render(results))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([asdict(result) for result in results], handle, indent=2)
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
