"""Local problems files that cannot be read are errors naming the file and the line."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from configs import DatasetSourceConfig
from stages.problems import ProblemsError, problems_from_records
from storage import StoreError, load_source_records
from storage.sources import check_local_file


def _source(data_files: str) -> DatasetSourceConfig:
    return DatasetSourceConfig(path="json", data_files=data_files, splits={"train": "train"})


def test_a_problems_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "problems.jsonl"
    path.write_bytes(b'{"prompt": "1+1=", "answer": "2"}\n{"prompt": "caf\xe9", "answer": "3"}\n')
    with pytest.raises(StoreError, match=r"problems.jsonl, line 2: not UTF-8 text"):
        load_source_records(_source(str(path)))


def test_a_broken_json_line_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "problems.jsonl"
    path.write_text('{"prompt": "1+1=", "answer": "2"}\n\n{"prompt": "2+2=", "answer": \n')
    with pytest.raises(StoreError, match=r"problems.jsonl, line 3: not valid JSON"):
        check_local_file(str(path))
    path.write_text('{"prompt": "1+1=", "answer": "2"}\n["not", "an", "object"]\n')
    with pytest.raises(StoreError, match=r"problems.jsonl, line 2: expected a JSON object, found list"):
        check_local_file(str(path))


def test_a_missing_field_is_told_apart_from_an_empty_or_null_one(tmp_path: Path) -> None:
    path = tmp_path / "problems.jsonl"
    path.write_text('{"prompt": "1+1=", "answer": "2"}\n{"prompt": "2+2="}\n')
    expected = r"problems.jsonl, line 2: no field 'answer' \(problems.dataset.answer_field\), which the first line has"
    with pytest.raises(StoreError, match=expected):
        check_local_file(str(path), required={"prompt": "prompt_field", "answer": "answer_field"})
    source = _source(str(path))
    with pytest.raises(ProblemsError, match=r"row 1, field 'answer': null"):
        problems_from_records({"train": [{"prompt": "1+1=", "answer": "2"}, {"prompt": "2", "answer": None}]}, source)
    with pytest.raises(ProblemsError, match=r"row 1: no field 'answer'"):
        problems_from_records({"train": [{"prompt": "1+1=", "answer": "2"}, {"prompt": "x"}]}, source)


def test_bad_csv_and_parquet_files_name_the_file(tmp_path: Path) -> None:
    csv_path = tmp_path / "problems.csv"
    csv_path.write_text("prompt,answer\n1+1=,2\n2+2=,4,extra\n")
    with pytest.raises(StoreError, match=r"problems.csv, line 3: 3 cell\(s\), the header has 2"):
        check_local_file(str(csv_path))
    parquet_path = tmp_path / "problems.parquet"
    pq.write_table(pa.table({"prompt": ["1+1="], "answer": ["2"]}), parquet_path)
    check_local_file(str(parquet_path))
    parquet_path.write_bytes(parquet_path.read_bytes()[:-10])
    with pytest.raises(StoreError, match=r"problems.parquet: not a readable Parquet file"):
        check_local_file(str(parquet_path))
