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


# Calls that read or write files. Outside storage/ only the named places below make them.
FILE_CALLS = {
    "open",
    "mkdir",
    "makedirs",
    "mkdtemp",
    "rmtree",
    "to_parquet",
    "write_table",
    "read_table",
    "write_text",
    "read_text",
    "write_bytes",
    "read_bytes",
    "from_pretrained",
    "save_pretrained",
    "load_from_json",
    "save",
}
# Store methods with the same names as file calls: the store's API, which is what the other packages use.
STORE_RECEIVERS = {"store", "self.store", "journal.store"}
FILE_CALL_EXEMPTIONS = {
    # The user's YAML config is read before any run store exists; the store keeps its own copy (run.yaml).
    ("configs", "loader.py"): {"read_text"},
    # FLYWHEEL_HOME holds Prefect's and vLLM's caches for the process, not the run's data.
    ("flows", "env.py"): {"mkdir"},
    # TRL's trainer writes its checkpoints into the scratch folder it is given; resuming a finished phase reads
    # the newest one's trainer_state.json with transformers' own loader.
    ("stages", "train.py"): {"load_from_json"},
    # The sandbox makes and removes a throwaway folder per untrusted program; that is not the run store.
    ("verifiers", "sandbox.py"): {"mkdtemp", "rmtree"},
}


def _file_calls(path: Path) -> list[tuple[int, str]]:
    """(line, name) of every call of a FILE_CALLS name in `path`, except the store's own methods."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Name) and function.id in FILE_CALLS:
            found.append((node.lineno, function.id))
        elif isinstance(function, ast.Attribute) and function.attr in FILE_CALLS:
            if ast.unparse(function.value) not in STORE_RECEIVERS:
                found.append((node.lineno, function.attr))
    return found


@pytest.mark.parametrize("package", sorted(PROJECT - {"storage"}))
def test_only_storage_touches_files(package: str) -> None:
    for path in (REPO / package).glob("*.py"):
        exempt = FILE_CALL_EXEMPTIONS.get((package, path.name), set())
        calls = [f"line {line}: {name}()" for line, name in _file_calls(path) if name not in exempt]
        assert not calls, f"{path.relative_to(REPO)} does file I/O outside storage/: {', '.join(calls)}"


def test_the_file_call_check_sees_a_file_call(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        "def f(path, store, model):\n    store.write_table(0, 'x', None)\n    model.save_pretrained(path)\n"
    )
    assert _file_calls(module) == [(3, "save_pretrained")]


def test_every_file_call_exemption_is_still_needed() -> None:
    for (package, name), exempt in FILE_CALL_EXEMPTIONS.items():
        used = {call for _, call in _file_calls(REPO / package / name)}
        assert exempt <= used, f"{package}/{name} no longer calls {sorted(exempt - used)}; drop the exemption"
