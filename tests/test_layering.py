"""The direction of imports between the packages, as DESIGN.md fixes it, checked by reading the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PROJECT = {"configs", "verifiers", "stages", "storage", "flows"}
ALLOWED = {
    "configs": set(),
    "verifiers": set(),
    "storage": {"configs"},
    "stages": {"configs", "verifiers"},
    "flows": {"configs", "verifiers", "stages", "storage"},
}
NO_PREFECT = {"configs", "verifiers", "stages", "storage"}
FILE_IO_MODULES = {"fsspec", "pyarrow.parquet", "shutil", "tempfile"}
# The sandbox makes and removes a throwaway folder per untrusted program; that is not the run store.
SCRATCH_FOLDER_MODULES = {("verifiers", "sandbox.py"): {"shutil", "tempfile"}}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(PROJECT))
def test_imports_point_down_the_layers(package: str) -> None:
    for path in (REPO / package).glob("*.py"):
        for name in _imports(path):
            top = name.split(".")[0]
            if top in PROJECT and top != package:
                assert top in ALLOWED[package], f"{path.relative_to(REPO)} imports {name}"
            if package in NO_PREFECT:
                assert top != "prefect", f"{path.relative_to(REPO)} imports prefect"
            exempt = SCRATCH_FOLDER_MODULES.get((package, path.name), set())
            if package != "storage" and name not in exempt:
                assert name not in FILE_IO_MODULES, f"{path.relative_to(REPO)} imports {name}; only storage does I/O"
