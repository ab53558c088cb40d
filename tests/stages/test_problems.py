from __future__ import annotations

import json

import pytest

from configs import ArithmeticConfig, DatasetSourceConfig
from stages.problems import (
    PROBLEMS_SCHEMA,
    ProblemsError,
    generate_arithmetic,
    problems_from_records,
    split_of,
    validate_problems,
)


def test_arithmetic_problems_are_exact_disjoint_and_reproducible() -> None:
    config = ArithmeticConfig(digits=2, ops=["+", "-"], n_seed=50, n_test=30, n_train=100)
    problems = generate_arithmetic(config, seed=7)
    assert problems.schema == PROBLEMS_SCHEMA
    assert problems.num_rows == 180
    assert [split_of(problems, s).num_rows for s in ("seed", "test", "train")] == [50, 30, 100]
    prompts = {s: set(split_of(problems, s).column("prompt").to_pylist()) for s in ("seed", "test", "train")}
    assert not (prompts["seed"] & prompts["test"]) and not (prompts["train"] & prompts["test"])
    for row in problems.to_pylist():
        facts = json.loads(row["metadata"])
        expected = facts["a"] + facts["b"] if facts["op"] == "+" else facts["a"] - facts["b"]
        assert row["answer"] == str(expected) and row["prompt"] == f"{facts['a']}{facts['op']}{facts['b']}="
        assert 10 <= facts["a"] <= 99 and 10 <= facts["b"] <= 99
    assert generate_arithmetic(config, seed=7).equals(problems)
    assert not generate_arithmetic(config, seed=8).equals(problems)


def test_asking_for_more_problems_than_exist_is_an_error() -> None:
    with pytest.raises(ProblemsError, match="110 problems asked for but only 100 distinct"):
        generate_arithmetic(ArithmeticConfig(digits=1, n_seed=100, n_test=10), seed=0)


def _source(**changes: object) -> DatasetSourceConfig:
    values: dict[str, object] = {"path": "json", "data_files": "problems.jsonl", "splits": {"train": "train"}}
    values.update(changes)
    return DatasetSourceConfig.model_validate(values)


def test_records_map_onto_the_problem_schema_with_answer_regex() -> None:
    records = {"train": [{"question": "What is 6*7?", "answer": "6*7 is 42\n#### 42"}]}
    table = problems_from_records(records, _source(prompt_field="question", answer_regex=r"####\s*(.+)$"))
    row = table.to_pylist()[0]
    assert row["prompt"] == "What is 6*7?" and row["answer"] == "42" and row["split"] == "train"
    assert row["domain"] == "math"


def test_missing_answer_column_names_the_source_and_field() -> None:
    records = {"train": [{"prompt": "1+1=", "solution": "2"}]}
    expected = r"problems.jsonl split 'train': no column 'answer' \(problems.dataset.answer_field\)"
    with pytest.raises(ProblemsError, match=expected):
        problems_from_records(records, _source())


def test_empty_answer_names_the_row() -> None:
    records = {"train": [{"prompt": "1+1=", "answer": "2"}, {"prompt": "2+2=", "answer": " "}]}
    with pytest.raises(ProblemsError, match="row 1, field 'answer': empty"):
        problems_from_records(records, _source())


def test_validation_names_row_and_field_of_an_unknown_domain() -> None:
    problems = generate_arithmetic(ArithmeticConfig(n_seed=2, n_test=2, n_train=2), seed=0)
    rows = problems.to_pylist()
    rows[3]["domain"] = "chess"
    bad = problems.from_pylist(rows, schema=PROBLEMS_SCHEMA)
    expected = "pool.parquet, row 3, field 'domain': no verifier for 'chess'; known: math"
    with pytest.raises(ProblemsError, match=expected):
        validate_problems(bad, ["math"], "pool.parquet")
