"""Bad input through the real `flywheel` command: exit code 2, a message naming file and field, no run written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import run_flywheel, tiny_config


def _flywheel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_flywheel(*args, cwd=cwd, timeout=300)


def _write(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def test_missing_config_file(tmp_path: Path) -> None:
    result = _flywheel("run", "absent.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "absent.yaml" in result.stderr and "file not found" in result.stderr


def test_invalid_config_lists_every_field(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "runs")
    config["sample"]["k"] = -1
    config["train"]["learning_rat"] = 0.1
    result = _flywheel("run", str(_write(tmp_path / "bad.yaml", config)), cwd=tmp_path)
    assert result.returncode == 2
    assert "bad.yaml (2 error(s))" in result.stderr
    assert "sample.k: Input should be greater than or equal to 1 (got -1)" in result.stderr
    assert "train.learning_rat: Extra inputs are not permitted" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_model_path_that_does_not_exist(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "runs", model={"path": str(tmp_path / "no-such-model")})
    result = _flywheel("run", str(_write(tmp_path / "c.yaml", config)), cwd=tmp_path)
    assert result.returncode == 2
    assert f"model.path: {tmp_path / 'no-such-model'} does not exist" in result.stderr
    assert not (tmp_path / "runs").exists()


def _dataset_config(tmp_path: Path, rows: list[dict[str, str]], **source: Any) -> Path:
    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    problems = {
        "source": "dataset",
        "dataset": {"path": "json", "data_files": str(data), "splits": {"train": "train", "test": "train"}, **source},
    }
    return _write(tmp_path / "c.yaml", tiny_config(tmp_path / "runs", problems=problems, warm_start=None))


def test_problems_file_without_answer_column(tmp_path: Path) -> None:
    config = _dataset_config(tmp_path, [{"prompt": "1+1=", "solution": "2"}])
    result = _flywheel("run", str(config), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "problems.jsonl split 'train': no column 'answer' (problems.dataset.answer_field)" in result.stderr
    assert not (tmp_path / "runs" / "tiny").exists()


def test_unknown_verifier_name(tmp_path: Path) -> None:
    config = _dataset_config(tmp_path, [{"prompt": "1+1=", "answer": "2"}], domain="chess")
    result = _flywheel("run", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "problems.dataset.domain: unknown verifier 'chess'; known: code, countdown, format, math" in result.stderr
    assert not (tmp_path / "runs").exists()
