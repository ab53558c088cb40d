"""How long the read-only commands take: `status`, `inspect`, `diff`, `report`, against `python -c pass`.

Each command runs as a user runs it (a fresh `python -m flows.cli` process), `--repeat` times; the median
wall time is printed with its ratio to the median start-up of a bare interpreter measured in the same run.
Target: under 2 s each. They import neither Prefect nor vLLM nor torch, and write nothing.

    .venv/bin/python -m bench.cli [--store DIR --run NAME] [--repeat 5]

Without `--store`, a run of two rounds of the tests' tiny config is created first in a temporary folder
(a few minutes on 2 cores, not timed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _seconds(command: list[str], cwd: Path, repeat: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FLYWHEEL_HOME", None)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _create_run(folder: Path) -> tuple[str, str]:
    sys.path.insert(0, str(REPO))
    from tests.conftest import tiny_config

    config = folder / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(folder / "runs")))
    env = {**os.environ, "PYTHONPATH": str(REPO), "FLYWHEEL_HOME": str(folder / "home")}
    subprocess.run([sys.executable, "-m", "flows.cli", "run", str(config)], cwd=folder, env=env, check=True)
    return str(folder / "runs"), "tiny"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="a store with a run of at least two committed rounds")
    parser.add_argument("--run", default="tiny")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    store, run = (args.store, args.run) if args.store else _create_run(workdir)
    empty = workdir / "cwd"
    empty.mkdir()
    baseline = _seconds([sys.executable, "-c", "pass"], empty, args.repeat)
    cli = [sys.executable, "-m", "flows.cli"]
    commands = {
        "status": [*cli, "status", run, "--store", store],
        "inspect": [*cli, "inspect", run, "1", "--store", store],
        "diff": [*cli, "diff", run, "0", "1", "--store", store],
        "report": [*cli, "report", run, "--store", store],
    }
    print(f"python -c pass: {baseline:.3f} s (median of {args.repeat})")
    print(f"{'command':>8}  {'seconds':>8}  {'x python -c pass':>16}  {'under 2 s':>9}")
    for name, command in commands.items():
        seconds = _seconds(command, empty, args.repeat)
        print(f"{name:>8}  {seconds:>8.3f}  {seconds / baseline:>16.1f}  {'yes' if seconds < 2 else 'NO':>9}")
    written = sorted(str(path.relative_to(empty)) for path in empty.rglob("*"))
    print(f"files written in the working directory: {written or 'none'}")


if __name__ == "__main__":
    main()
