"""Training throughput: flywheel's SFT and GRPO steps (TRL through `stages.train`) on the tiny arithmetic model.

SFT: `train_sft` on labelled 2-digit additions against the baseline of a plain PyTorch loop over the same data
(fresh model of the same seed, same batch size, AdamW with the same learning rate, linear warm-up/decay, gradient
clipping, loss on completion tokens only, batches padded to their longest row). The ratio shows what TRL's
trainer and flywheel's wrapper cost over the bare loop. Tokens are non-padding prompt + completion tokens, the
way TRL counts `num_tokens`; the flywheel time is `trainer.train()` (including the final checkpoint flywheel
writes), with trainer construction (dataset tokenisation) reported apart.

GRPO: `train_grpo` on 1-digit additions, rewarded by `CorrectnessReward` over a `VerifierPool`, starting from a
model warm-started briefly by SFT so that rewards are neither all 0 nor all 1. Tokens are TRL's count (prompt +
completion tokens of every completion). A GRPO step is split into generation (the model's `generate`, timed by
wrapping it on the instance), reward (`CorrectnessReward.seconds`) and the rest of the train wall time, called
update here: log-prob forward, loss, backward, optimizer step, logging and the final checkpoint.

The table gives wall seconds and, beside them, this process's CPU seconds over the same span: with one torch
thread (the default) the CPU-time ratio is the steadier one when other jobs share the cores.

    .venv/bin/python -m bench.train [--steps 500] [--grpo-steps 40] [--device cpu|cuda] [--threads 1]

Without `--device` it runs on the CPU, and also on the GPU when torch sees one.
"""

from __future__ import annotations

import argparse
import functools
import math
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from flows.env import configure_environment

SEED = 0


@dataclass
class Row:
    phase: str
    steps: int
    tokens: float
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds


def _train_clock() -> Any:
    """A trainer callback: logs at the last step, so TRL's running `num_tokens` covers every step, and keeps the
    process CPU seconds between the start and the end of `trainer.train()` in `cpu_seconds`."""
    from transformers import TrainerCallback

    class TrainClock(TrainerCallback):
        def __init__(self) -> None:
            self.cpu_seconds = 0.0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.cpu_seconds = -time.process_time()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if state.global_step >= state.max_steps:
                control.should_log = True
            return control

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.cpu_seconds += time.process_time()

    return TrainClock()


def sft_flywheel(data: Any, steps: int, batch: int, device: str, output_dir: str) -> tuple[Row, float]:
    """`train_sft` on a fresh tiny model; the row's seconds are `trainer.train()`; also returns the call's wall time."""
    from stages.tiny_model import build_tiny_arithmetic_model
    from stages.train import train_sft

    model, tokenizer = build_tiny_arithmetic_model(seed=SEED)
    config = _sft_config(steps, batch, device)
    started = time.perf_counter()
    clock = _train_clock()
    result = train_sft(model, tokenizer, data, config, seed=SEED, output_dir=output_dir, callbacks=[clock])
    wall = time.perf_counter() - started
    if result.metrics["sft_steps"] != steps or result.metrics["sft_resumed_from_step"] != 0:
        raise RuntimeError(f"bench: SFT ran {result.metrics} instead of {steps} fresh steps")
    metrics = result.metrics
    return Row(
        f"sft flywheel ({device})", steps, metrics["sft_tokens"], metrics["sft_seconds"], clock.cpu_seconds
    ), wall


def sft_baseline(data: Any, steps: int, batch: int, device: str) -> tuple[Row, float]:
    """A bare PyTorch loop with the same model, data, batch size and optimizer; also returns tokenisation time."""
    import torch

    from stages.sample import chat_messages
    from stages.tiny_model import build_tiny_arithmetic_model

    model, tokenizer = build_tiny_arithmetic_model(seed=SEED)
    model.to(device).train()
    started = time.perf_counter()
    examples = []
    for prompt, completion in zip(
        data.column("prompt").to_pylist(), data.column("completion").to_pylist(), strict=True
    ):
        messages = chat_messages(prompt, None)
        prompt_text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        full_text = tokenizer.apply_chat_template(
            [*messages, {"role": "assistant", "content": completion}], tokenize=False
        )
        prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
        full_ids = tokenizer(full_text, add_special_tokens=False)["input_ids"]
        if full_ids[: len(prompt_ids)] != prompt_ids:
            raise ValueError(f"bench: prompt {prompt!r} does not tokenise to a prefix of its conversation")
        examples.append((full_ids, len(prompt_ids)))
    tokenize_seconds = time.perf_counter() - started

    config = _sft_config(steps, batch, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    warmup = config.warmup_steps
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: step / warmup if step < warmup else max(0.0, (steps - step) / max(1, steps - warmup))
    )
    generator = torch.Generator().manual_seed(SEED)
    batches: list[list[int]] = []
    tokens = 0
    _synchronize(device)
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(steps):
        if not batches:  # a new epoch, batched like the trainer's data loader: the last batch may be short
            order = torch.randperm(len(examples), generator=generator).tolist()
            batches = [order[start : start + batch] for start in range(0, len(order), batch)]
        chosen = [examples[i] for i in batches.pop(0)]
        width = max(len(ids) for ids, _ in chosen)
        input_ids = torch.full((len(chosen), width), tokenizer.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(chosen), width), dtype=torch.long)
        labels = torch.full((len(chosen), width), -100, dtype=torch.long)
        for row, (ids, prompt_length) in enumerate(chosen):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention[row, : len(ids)] = 1
            labels[row, prompt_length : len(ids)] = torch.tensor(ids[prompt_length:])
        tokens += int(attention.sum())
        loss = model(input_ids=input_ids.to(device), attention_mask=attention.to(device), labels=labels.to(device)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    _synchronize(device)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    if not math.isfinite(loss.item()):
        raise RuntimeError(f"bench: the baseline loop's loss is {loss.item()}")
    return Row(f"sft plain loop ({device})", steps, tokens, seconds, cpu_seconds), tokenize_seconds


@dataclass
class GrpoOutcome:
    row: Row
    generation_seconds: float
    generate_calls: int
    reward_seconds: float
    reward_first: float
    reward_last: float


def grpo(steps: int, device: str, workdir: str) -> tuple[Row, GrpoOutcome]:
    """Warm-start the tiny model by SFT on 1-digit additions, then time `train_grpo` with the verifier reward."""
    from configs import ArithmeticConfig, GrpoConfig, TrainConfig, VerifyConfig
    from stages.curate import labelled_dataset
    from stages.problems import generate_arithmetic, split_of
    from stages.rewards import CorrectnessReward
    from stages.tiny_model import build_tiny_arithmetic_model
    from stages.train import train_grpo, train_sft
    from verifiers.pool import VerifierPool

    use_cpu = device == "cpu"
    problems = generate_arithmetic(ArithmeticConfig(digits=1, n_seed=59, n_test=1, n_train=40), seed=SEED)
    model, tokenizer = build_tiny_arithmetic_model(seed=SEED)
    warm = TrainConfig(
        max_steps=80, learning_rate=3e-3, warmup_steps=5, per_device_train_batch_size=32, use_cpu=use_cpu
    )
    warm_clock = _train_clock()
    warm_result = train_sft(
        model,
        tokenizer,
        labelled_dataset(split_of(problems, "seed"), round_id=0),
        warm,
        seed=SEED,
        output_dir=f"{workdir}/warm-{device}",
        callbacks=[warm_clock],
    )
    metrics = warm_result.metrics
    warm_row = Row(
        f"sft warm-start ({device})", 80, metrics["sft_tokens"], metrics["sft_seconds"], warm_clock.cpu_seconds
    )
    model = warm_result.model
    timer = _GenerateTimer(model, device)
    train = split_of(problems, "train")
    config = TrainConfig(
        use_cpu=use_cpu,
        grpo=GrpoConfig(max_steps=steps, learning_rate=1e-4, per_device_train_batch_size=16, num_generations=4),
    )
    clock = _train_clock()
    with VerifierPool(1, timeout_s=5.0, memory_limit_mb=1024) as pool:
        reward = CorrectnessReward(
            {row["problem_id"]: row for row in train.to_pylist()}, config=VerifyConfig(), pool=pool
        )
        result = train_grpo(
            model,
            tokenizer,
            train,
            config,
            [reward],
            seed=SEED,
            output_dir=f"{workdir}/grpo-{device}",
            max_completion_length=4,
            callbacks=[clock],
        )
    if timer.calls == 0:
        raise RuntimeError("bench: TRL did not call the model's own generate(); generation time cannot be measured")
    if reward.calls != steps * 16:
        raise RuntimeError(f"bench: the verifier judged {reward.calls} completions, expected {steps * 16}")
    metrics = result.metrics
    row = Row(f"grpo flywheel ({device})", steps, metrics["grpo_tokens"], metrics["grpo_seconds"], clock.cpu_seconds)
    outcome = GrpoOutcome(
        row,
        timer.seconds,
        timer.calls,
        reward.seconds,
        result.metrics.get("grpo_reward_first", float("nan")),
        result.metrics.get("grpo_reward_last", float("nan")),
    )
    return warm_row, outcome


class _GenerateTimer:
    """Replaces `model.generate` on the instance with a wrapper that adds up its wall time."""

    def __init__(self, model: Any, device: str) -> None:
        self.seconds = 0.0
        self.calls = 0
        self.device = device
        original = model.generate

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            output = original(*args, **kwargs)
            _synchronize(self.device)
            self.seconds += time.perf_counter() - started
            self.calls += 1
            return output

        model.generate = timed


def _warm_up(device: str) -> None:
    """A few untimed steps of a throwaway model, so one-off start-up costs (kernels, allocator) fall on neither side."""
    import torch

    from stages.tiny_model import build_tiny_arithmetic_model

    model, _ = build_tiny_arithmetic_model(seed=SEED)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters())
    ids = torch.randint(4, 20, (8, 10), device=device)
    for _ in range(3):
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    _synchronize(device)


def _sft_config(steps: int, batch: int, device: str) -> Any:
    from configs import TrainConfig

    return TrainConfig(
        max_steps=steps,
        learning_rate=3e-3,
        warmup_steps=min(20, steps // 10),
        per_device_train_batch_size=batch,
        use_cpu=device == "cpu",
        save_steps=steps,
    )


def _cpu_ratio(row: Row, baseline: Row) -> float:
    """Tokens per CPU second of `row` over the baseline's: steadier than wall time when others share the CPU."""
    return (row.tokens / row.cpu_seconds) / (baseline.tokens / baseline.cpu_seconds)


def _synchronize(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=500, help="SFT optimizer steps, flywheel and baseline each")
    parser.add_argument("--batch", type=int, default=64, help="SFT examples per step")
    parser.add_argument("--grpo-steps", type=int, default=40, help="GRPO steps (16 completions: 4 prompts x 4)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cpu, plus cuda when torch sees a GPU")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads; the tiny model gains nothing from more, and on a shared CPU more threads make the "
        "numbers slow and noisy (0: torch's own choice)",
    )
    args = parser.parse_args()
    configure_environment()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from configs import ArithmeticConfig
    from stages.curate import labelled_dataset
    from stages.problems import generate_arithmetic, split_of

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no GPU (install a CUDA build of torch, or leave --device out)")
    devices = [args.device] if args.device else ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    data = labelled_dataset(split_of(generate_arithmetic(ArithmeticConfig(n_test=1), seed=SEED), "seed"), round_id=0)
    print(
        f"tiny model (0.26M parameters); SFT on {data.num_rows} labelled 2-digit additions, batch {args.batch}; "
        f"GRPO on 1-digit additions, 4 prompts x 4 completions per step; torch threads={torch.get_num_threads()}"
    )
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as workdir:
        for device in devices:
            _warm_up(device)
            flywheel, call_seconds = sft_flywheel(data, args.steps, args.batch, device, f"{workdir}/sft-{device}")
            baseline, tokenize_seconds = sft_baseline(data, args.steps, args.batch, device)
            warm_row, outcome = grpo(args.grpo_steps, device, workdir)
            rows += [flywheel, baseline, warm_row, outcome.row]
            update = outcome.row.seconds - outcome.generation_seconds - outcome.reward_seconds
            notes += [
                f"[{device}] ratio SFT flywheel / plain PyTorch loop: {flywheel.rate / baseline.rate:.2f}x tokens/s "
                f"({_cpu_ratio(flywheel, baseline):.2f}x by CPU time; tokens per step "
                f"{flywheel.tokens / flywheel.steps:.0f} vs {baseline.tokens / baseline.steps:.0f})",
                f"[{device}] not in the SFT rows: train_sft set-up (trainer, dataset tokenisation) "
                f"{call_seconds - flywheel.seconds:.2f}s; plain loop tokenisation {tokenize_seconds:.2f}s",
                f"[{device}] GRPO step shares: generation {outcome.generation_seconds / outcome.row.seconds:.0%} "
                f"({outcome.generate_calls} generate calls, {outcome.generation_seconds:.2f}s), "
                f"reward {outcome.reward_seconds / outcome.row.seconds:.0%} ({outcome.reward_seconds:.2f}s), "
                f"update {update / outcome.row.seconds:.0%} ({update:.2f}s; the rest of the train wall time: "
                "log-probs, loss, backward, optimizer, logging, final checkpoint)",
                f"[{device}] GRPO mean reward first logged {outcome.reward_first:.2f}, last {outcome.reward_last:.2f}",
            ]
    print(f"{'phase':26s} {'steps':>6s} {'tokens':>9s} {'seconds':>8s} {'tokens/s':>10s} {'cpu s':>7s}")
    for row in rows:
        print(
            f"{row.phase:26s} {row.steps:6d} {row.tokens:9.0f} {row.seconds:8.2f} {row.rate:10.0f} "
            f"{row.cpu_seconds:7.2f}"
        )
    print("seconds: wall time; cpu s: this process's CPU time over the same span (verifier workers not included)")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
