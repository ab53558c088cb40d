"""vLLM engine starts inside a Prefect flow, one after another: none may hang, and each costs about what a bare
start costs.

Each start is a Prefect task of one flow (as the evaluate stage starts its engine), logs through Prefect's log
handler while vLLM starts, samples a few problems and shuts the engine down. A start that takes longer than
`--hang-after` seconds counts as a hang: the stacks of every thread are printed and the benchmark fails.
Baseline: the same start outside any flow, measured in the same run.

    .venv/bin/python -m bench.engine_starts [--starts 20] [--hang-after 300]
"""

from __future__ import annotations

import argparse
import faulthandler
import statistics
import sys
import tempfile
import time

from flows.env import configure_environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--baseline-starts", type=int, default=2)
    parser.add_argument("--hang-after", type=float, default=300.0)
    args = parser.parse_args()
    configure_environment()

    from prefect import flow, get_run_logger, task

    from configs import ArithmeticConfig, EngineConfig, ModelConfig
    from stages.problems import generate_arithmetic, split_of
    from stages.sample import Sampler, SamplingSpec
    from stages.tiny_model import build_tiny_arithmetic_model

    problems = split_of(generate_arithmetic(ArithmeticConfig(n_seed=0, n_test=1), seed=0), "train").slice(0, 16)
    model, tokenizer = build_tiny_arithmetic_model(seed=0)
    folder = tempfile.mkdtemp(prefix="bench-engine-starts-")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    model_config = ModelConfig(init="tiny-arithmetic", dtype="float32", max_model_len=32)

    def start_sample_close() -> float:
        started = time.perf_counter()
        faulthandler.dump_traceback_later(args.hang_after, exit=True, file=sys.stderr)
        sampler = Sampler(folder, model_config, EngineConfig(), seed=0)
        sampler.sample(problems, SamplingSpec(2, 1.0, 1.0, 4), round_id=0, model_ref="bench", run_seed=0)
        sampler.close()
        faulthandler.cancel_dump_traceback_later()
        return time.perf_counter() - started

    bare = [start_sample_close() for _ in range(args.baseline_starts)]

    @task(name="engine-start")
    def engine_start(index: int) -> float:
        get_run_logger().info("engine start %d", index)
        return start_sample_close()

    @flow(name="bench-engine-starts")
    def starts() -> list[float]:
        return [engine_start(index) for index in range(args.starts)]

    in_flow = starts()
    print(f"bare starts (no flow):      {len(bare)}, median {statistics.median(bare):.1f} s")
    print(
        f"starts in one Prefect flow: {len(in_flow)}, median {statistics.median(in_flow):.1f} s, "
        f"max {max(in_flow):.1f} s, hangs 0 (a start over {args.hang_after:.0f} s would have ended the run)"
    )
    print(f"ratio median start in flow / bare: {statistics.median(in_flow) / statistics.median(bare):.2f}")


if __name__ == "__main__":
    main()
