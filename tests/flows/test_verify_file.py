"""`flywheel verify FILE` through the real command: verdict columns written, agreement table, clear errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import run_flywheel

MATH_ROWS = [
    {"id": "a", "completion": "So the total is \\boxed{17}.", "answer": "17"},
    {"id": "b", "completion": "\\boxed{5 = 17}", "answer": "17"},  # a false equation: wrong here, right for math-verify
    {"id": "c", "completion": "The answer is 3/4.", "answer": "0.75"},
    {"id": "d", "completion": "\\boxed{12}", "answer": "13"},
]


def _flywheel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_flywheel(*args, cwd=cwd, timeout=300)


def _write_jsonl(path: Path, rows: list[dict[str, object]], extra_lines: tuple[str, ...] = ()) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + "".join(line + "\n" for line in extra_lines))
    return path


def test_math_file_with_agreement_table(tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "answers.jsonl", MATH_ROWS)
    before = source.read_bytes()
    result = _flywheel("verify", "answers.jsonl", "--domain", "math", "--against", "math-verify", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert source.read_bytes() == before
    rows = [json.loads(line) for line in (tmp_path / "answers.verified.jsonl").read_text().splitlines()]
    assert [row["id"] for row in rows] == ["a", "b", "c", "d"]
    assert [row["verdict_correct"] for row in rows] == [True, False, True, False], rows
    assert [row["against_correct"] for row in rows] == [True, True, True, False], rows
    assert rows[1]["verdict_reason"].endswith("which is not shown to be true")
    assert "4 rows judged by math" in result.stdout and "2 correct, 2 wrong, 0 cannot judge" in result.stdout
    assert "agreement with math-verify: 3/4 (75.0%)" in result.stdout
    assert "line 2: gold '17', answer '5 = 17': flywheel wrong, math-verify correct" in result.stdout


def test_code_parquet_file_with_custom_fields(tmp_path: Path) -> None:
    tests = json.dumps({"asserts": ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]})
    table = pa.Table.from_pylist(
        [
            {"response": "```python\ndef add(a, b):\n    return a + b\n```", "checks": tests},
            {"response": "```python\ndef add(a, b):\n    return a * b\n```", "checks": tests},
        ]
    )
    pq.write_table(table, tmp_path / "programs.parquet")
    result = _flywheel(
        "verify", "programs.parquet", "--domain", "code", "--gold-field", "checks", "--completion-field", "response",
        "--out", "judged.parquet", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    judged = pq.read_table(tmp_path / "judged.parquet").to_pylist()
    assert [row["verdict_correct"] for row in judged] == [True, False]
    assert [row["verdict_reward"] for row in judged] == [1.0, 0.5]
    assert judged[0]["response"].startswith("```python")


def test_bad_rows_are_named_by_file_line_and_field(tmp_path: Path) -> None:
    broken = _write_jsonl(tmp_path / "broken.jsonl", MATH_ROWS[:2], extra_lines=("{not json",))
    result = _flywheel("verify", "broken.jsonl", "--domain", "math", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{Path('broken.jsonl')}:3: not valid JSON" in result.stderr

    missing = _write_jsonl(tmp_path / "missing.jsonl", [MATH_ROWS[0], {"completion": "\\boxed{1}"}])
    result = _flywheel("verify", str(missing), "--domain", "math", cwd=tmp_path)
    assert result.returncode == 2 and f"{missing}:2: field 'answer' is missing or null" in result.stderr

    result = _flywheel("verify", "broken.jsonl", "--domain", "math", "--out", "broken.jsonl", cwd=tmp_path)
    assert result.returncode == 2 and "refusing to overwrite the input file" in result.stderr
    assert broken.read_text().endswith("{not json\n")
    assert not (tmp_path / "broken.verified.jsonl").exists()

    result = _flywheel("verify", "missing.jsonl", "--domain", "algebra", cwd=tmp_path)
    assert result.returncode == 2 and "unknown verifier 'algebra'" in result.stderr
