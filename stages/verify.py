"""Verify traces: each through the verifier registered for its problem's domain.

The output is the traces table with the verdict columns appended. A trace whose verifier cannot judge it
keeps `correct = null` and says why in `reason`; nothing is dropped here.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pyarrow as pa

from stages.sample import TRACES_SCHEMA
from verifiers import Verdict, get_verifier

VERDICT_FIELDS = [
    pa.field("correct", pa.bool_()),
    pa.field("reward", pa.float64()),
    pa.field("extracted", pa.string()),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("timed_out", pa.bool_(), nullable=False),
    pa.field("verifier", pa.string(), nullable=False),
    pa.field("verifier_version", pa.string(), nullable=False),
]
VERIFIED_TRACES_SCHEMA = pa.schema([*TRACES_SCHEMA, *VERDICT_FIELDS])


def verify_traces(traces: pa.Table, problems: pa.Table) -> pa.Table:
    if traces.schema != TRACES_SCHEMA:
        raise ValueError(f"verify_traces: traces do not match TRACES_SCHEMA:\n{traces.schema}")
    by_id = {row["problem_id"]: row for row in problems.to_pylist()}
    verdicts: list[dict[str, Any]] = []
    for row_number, (problem_id, completion) in enumerate(
        zip(traces.column("problem_id").to_pylist(), traces.column("completion").to_pylist(), strict=True)
    ):
        problem = by_id.get(problem_id)
        if problem is None:
            raise ValueError(f"traces row {row_number}: problem_id {problem_id!r} is not in the problems table")
        verify = get_verifier(problem["domain"], where=f"problem {problem_id}, field 'domain'")
        verdicts.append(asdict(_checked(verify(completion, problem))))
    verdict_table = pa.Table.from_pylist(verdicts, schema=pa.schema(VERDICT_FIELDS))
    return pa.Table.from_arrays([*traces.columns, *verdict_table.columns], schema=VERIFIED_TRACES_SCHEMA)


def _checked(verdict: Verdict) -> Verdict:
    if not isinstance(verdict, Verdict):
        raise TypeError(f"a verifier returned {type(verdict).__name__}, not a Verdict")
    return verdict
