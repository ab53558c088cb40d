"""The run store's share of a demo round's wall time: writing, hashing, manifests, journal, model saving.

Runs the demo config (round 0 and round 1, real vLLM and TRL) in a temporary store with every public
`RunStore` method timed, and prints store seconds / round wall seconds for each round. Target: < 2%.

    .venv/bin/python -m bench.store [--rounds 1] [--store DIR]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from importlib import resources
from typing import Any

from flows.env import configure_environment

STORE_SECONDS: dict[str, float] = defaultdict(float)
DEPTH = [0]


def _timed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        DEPTH[0] += 1
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            DEPTH[0] -= 1
            if DEPTH[0] == 0:  # count nested store calls once
                STORE_SECONDS[name] += time.perf_counter() - started

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--store", default=None, help="store folder (default: a temporary folder)")
    args = parser.parse_args()
    configure_environment()

    from configs import load_config
    from flows import campaign
    from storage import RunStore

    for name in [n for n, v in vars(RunStore).items() if callable(v) and not n.startswith("_")]:
        setattr(RunStore, name, _timed(name, getattr(RunStore, name)))

    walls: list[tuple[int, float, float]] = []
    original_round_flow = campaign.round_flow

    def measured_round(config: Any, round_id: int) -> dict[str, Any]:
        before = sum(STORE_SECONDS.values())
        started = time.perf_counter()
        manifest = original_round_flow(config, round_id)
        walls.append((round_id, time.perf_counter() - started, sum(STORE_SECONDS.values()) - before))
        return manifest

    campaign.round_flow = measured_round
    store_url = args.store or tempfile.mkdtemp(prefix="bench-store-")
    config = load_config(
        str(resources.files("configs").joinpath("demo.yaml")),
        {"rounds": args.rounds, "store": store_url, "run_name": "bench-store"},
    )
    campaign.campaign_flow(config)

    print(f"store: {store_url}")
    print(f"{'round':>5}  {'wall s':>8}  {'store s':>8}  {'store share':>11}")
    for round_id, wall, store_seconds in walls:
        print(f"{round_id:>5}  {wall:>8.2f}  {store_seconds:>8.3f}  {store_seconds / wall:>10.2%}")
    total_wall = sum(w for _, w, _ in walls)
    total_store = sum(s for _, _, s in walls)
    print("store time by method: " + ", ".join(f"{k}={v:.3f}s" for k, v in sorted(STORE_SECONDS.items())))
    share = total_store / total_wall
    print(f"ratio store / round wall time: {share:.4f} ({share:.2%}; target < 2%)")


if __name__ == "__main__":
    main()
