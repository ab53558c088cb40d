"""The problem pool: its schema, the built-in arithmetic generator, and validation of loaded problems.

A problem has a stable `problem_id`, a `domain` that picks its verifier, a `prompt` (the user message),
a gold `answer`, an optional worked `solution` (for warm-start SFT) and a `split`: `seed` (labelled
warm-start data), `train` (the unlabelled pool rounds draw from) or `test` (held out from all training).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from configs import ArithmeticConfig, DatasetSourceConfig

SPLITS = ("seed", "train", "test")

PROBLEMS_SCHEMA = pa.schema(
    [
        pa.field("problem_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("answer", pa.string()),
        pa.field("solution", pa.string()),
        pa.field("tests", pa.string()),
        pa.field("metadata", pa.string()),
        pa.field("split", pa.string(), nullable=False),
    ]
)


class ProblemsError(ValueError):
    """Problems that cannot be used; the message names the source, row and field."""


def generate_arithmetic(config: ArithmeticConfig, seed: int) -> pa.Table:
    """Distinct `a op b` problems split into seed/train/test with no pair in two splits."""
    low, high = 10 ** (config.digits - 1) if config.digits > 1 else 0, 10**config.digits - 1
    width = high - low + 1
    n_pairs = width * width * len(config.ops)
    wanted = config.n_seed + config.n_test + (config.n_train or 0)
    if wanted > n_pairs:
        raise ProblemsError(
            f"problems.arithmetic: {wanted} problems asked for but only {n_pairs} distinct "
            f"{config.digits}-digit problems exist"
        )
    rng = random.Random(seed)
    n_total = n_pairs if config.n_train is None else wanted
    indices = rng.sample(range(n_pairs), n_total)
    split_names = ["seed"] * config.n_seed + ["test"] * config.n_test
    split_names += ["train"] * (n_total - len(split_names))
    rows: list[dict[str, Any]] = []
    for index, split in zip(indices, split_names, strict=True):
        op = config.ops[index // (width * width)]
        a, b = low + (index // width) % width, low + index % width
        answer = a + b if op == "+" else a - b
        expression = f"{a}{op}{b}="
        rows.append(
            {
                "problem_id": "arith-" + hashlib.sha1(expression.encode()).hexdigest()[:12],
                "source": "arithmetic",
                "domain": "math",
                "prompt": expression,
                "answer": str(answer),
                "solution": str(answer),
                "tests": None,
                "metadata": json.dumps({"a": a, "b": b, "op": op}),
                "split": split,
            }
        )
    return pa.Table.from_pylist(rows, schema=PROBLEMS_SCHEMA)


def problems_from_records(
    records_by_split: Mapping[str, Sequence[Mapping[str, Any]]], config: DatasetSourceConfig
) -> pa.Table:
    """Map raw dataset rows onto the problems schema; a missing or empty field is an error naming it."""
    answer_pattern = re.compile(config.answer_regex, re.DOTALL) if config.answer_regex else None
    rows: list[dict[str, Any]] = []
    for split, records in records_by_split.items():
        where = f"{config.data_files or config.path} split {config.splits[split]!r}"  # type: ignore[index]
        if records:
            _require_fields(records[0], config, where)
        for row_number, record in enumerate(records):
            prompt = _text_field(record, config.prompt_field, where, row_number)
            raw_answer = _text_field(record, config.answer_field, where, row_number)
            answer = raw_answer
            if answer_pattern is not None:
                match = answer_pattern.search(raw_answer)
                if match is None:
                    raise ProblemsError(
                        f"{where}, row {row_number}, field {config.answer_field!r}: "
                        f"answer_regex {config.answer_regex!r} does not match {raw_answer[-80:]!r}"
                    )
                answer = match.group(1).strip()
            solution = record.get(config.solution_field) if config.solution_field else None
            identity = f"{config.path}/{config.name}/{split}/{prompt}"
            rows.append(
                {
                    "problem_id": "ds-" + hashlib.sha1(identity.encode()).hexdigest()[:16],
                    "source": config.path,
                    "domain": config.domain,
                    "prompt": prompt,
                    "answer": answer,
                    "solution": None if solution is None else str(solution),
                    "tests": None,
                    "metadata": json.dumps({"row": row_number}),
                    "split": split,
                }
            )
    table = pa.Table.from_pylist(rows, schema=PROBLEMS_SCHEMA)
    return deduplicate_problem_ids(table)


def deduplicate_problem_ids(problems: pa.Table) -> pa.Table:
    """Keep the first row of each problem_id: the same prompt twice in a split is one problem."""
    seen: set[str] = set()
    keep = []
    for problem_id in problems.column("problem_id").to_pylist():
        keep.append(problem_id not in seen)
        seen.add(problem_id)
    return problems.filter(pa.array(keep))


def validate_problems(problems: pa.Table, known_domains: Sequence[str], source: str) -> None:
    """Check schema, unique ids, splits and domains; raise naming the first bad row and field."""
    missing = [name for name in PROBLEMS_SCHEMA.names if name not in problems.column_names]
    if missing:
        raise ProblemsError(f"{source}: missing column(s) {', '.join(missing)}")
    seen: set[str] = set()
    for row_number, row in enumerate(problems.select(["problem_id", "domain", "split", "prompt"]).to_pylist()):
        if row["problem_id"] in seen:
            raise ProblemsError(f"{source}, row {row_number}, field 'problem_id': duplicate {row['problem_id']!r}")
        seen.add(row["problem_id"])
        if row["split"] not in SPLITS:
            raise ProblemsError(
                f"{source}, row {row_number}, field 'split': {row['split']!r} is not one of {', '.join(SPLITS)}"
            )
        if row["domain"] not in known_domains:
            raise ProblemsError(
                f"{source}, row {row_number}, field 'domain': no verifier for {row['domain']!r}; "
                f"known: {', '.join(sorted(known_domains))}"
            )
        if not row["prompt"]:
            raise ProblemsError(f"{source}, row {row_number}, field 'prompt': empty")


def split_of(problems: pa.Table, split: str) -> pa.Table:
    return problems.filter(pc.equal(problems.column("split"), split))


def _require_fields(record: Mapping[str, Any], config: DatasetSourceConfig, where: str) -> None:
    for role, field in (("prompt_field", config.prompt_field), ("answer_field", config.answer_field)):
        if field not in record:
            raise ProblemsError(
                f"{where}: no column {field!r} (problems.dataset.{role}); columns are {', '.join(record)}"
            )


def _text_field(record: Mapping[str, Any], field: str, where: str, row_number: int) -> str:
    if field not in record:
        raise ProblemsError(f"{where}, row {row_number}: no field {field!r}")
    value = record[field]
    if value is None:
        raise ProblemsError(f"{where}, row {row_number}, field {field!r}: null (no value in this row)")
    if not str(value).strip():
        raise ProblemsError(f"{where}, row {row_number}, field {field!r}: empty")
    return str(value)
