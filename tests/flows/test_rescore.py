"""`flywheel rescore`: a committed round re-judged by today's verifiers into a new rescore, flips reported, the
round untouched, the verdict cache persisted in the run; and `flywheel check` on a run with rescores.

The run is built with the RunStore API: a round 1 whose traces carry the verdicts an older verifier version
(0.0.1) gave, two of them wrong for today's math verifier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from configs import ArithmeticConfig
from flows.cli import main
from flows.verdicts import load_stored_verdicts, save_new_verdicts
from stages.problems import PROBLEMS_SCHEMA, generate_arithmetic
from stages.sample import TRACES_SCHEMA
from stages.verify import FLIPS_SCHEMA, VERIFIED_TRACES_SCHEMA
from storage import RunStore
from tests.conftest import REPO, file_digests
from verifiers import VERSIONS
from verifiers.cache import VerdictCache
from verifiers.verdict import Verdict

RUN = "old"
OLD_VERSION = "0.0.1"
RUN_YAML = "run_name: old\nmodel: {init: tiny-arithmetic}\nverify: {timeout_s: 5.0, workers: 2}\n"


def _trace(problem: dict[str, Any], sample_idx: int, completion: str, correct: bool | None) -> dict[str, Any]:
    """A verified trace as verifier version OLD_VERSION judged it: `correct` is what that version said."""
    return {
        "round": 1,
        "problem_id": problem["problem_id"],
        "sample_idx": sample_idx,
        "model_ref": "round:0",
        "prompt": problem["prompt"],
        "completion": completion,
        "completion_tokens": 3,
        "finish_reason": "stop",
        "seed": 7,
        "correct": correct,
        "reward": None if correct is None else float(correct),
        "extracted": completion,
        "reason": f"judged by math {OLD_VERSION}",
        "timed_out": False,
        "verifier": "math",
        "verifier_version": OLD_VERSION,
    }


def _problems() -> pa.Table:
    """Four arithmetic problems; the last one's gold does not parse, so today's verifier cannot judge it."""
    rows = generate_arithmetic(ArithmeticConfig(n_seed=0, n_test=1, n_train=3), seed=0).to_pylist()
    rows[-1]["answer"] = "???"
    return pa.Table.from_pylist(rows, schema=PROBLEMS_SCHEMA)


def _build_run(store_dir: Path) -> tuple[RunStore, list[dict[str, Any]]]:
    """Round 0 (no traces) and round 1: 4 problems x 3 samples, whose stored verdicts today's verifier changes
    five times: a wrong answer accepted, a right one not judged, and three judged against an unparseable gold."""
    problems = _problems()
    store = RunStore(str(store_dir), RUN)
    store.create(RUN_YAML, problems)
    store.begin_round(0)
    store.commit(0, {"metrics": {}, "timings_s": {}, "model_out": "round:0"}, [])
    rows = []
    for problem in problems.to_pylist()[:-1]:
        answer = problem["answer"]
        rows += [
            _trace(problem, 0, answer, True),
            _trace(problem, 1, str(int(answer) + 1), False),
            _trace(problem, 2, "no idea", False),
        ]
    rows[1] = {**rows[1], "correct": True, "reward": 1.0}
    rows[3] = {**rows[3], "correct": None, "reward": None}
    unparseable = problems.to_pylist()[-1]
    rows += [_trace(unparseable, index, completion, False) for index, completion in enumerate(["1", "2", "no idea"])]
    traces = pa.Table.from_pylist(rows, schema=VERIFIED_TRACES_SCHEMA)
    store.begin_round(1)
    files = [store.write_table(1, "problems", problems), store.write_traces_part(1, 0, traces)]
    store.commit(1, {"metrics": {}, "timings_s": {}, "parent": 0, "model_in": "round:0"}, files)
    return store, rows


@pytest.fixture
def run(tmp_path: Path) -> tuple[RunStore, list[dict[str, Any]]]:
    return _build_run(tmp_path / "runs")




def _rescores(store: RunStore) -> list[Path]:
    folder = Path(store.path("rescores"))
    return sorted(folder.iterdir()) if folder.exists() else []


def _manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text())


def test_rescore_reports_flips_and_leaves_the_round_untouched(
    run: tuple[RunStore, list[dict[str, Any]]], verifier_calls: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    store, rows = run
    rounds = Path(store.path("rounds"))
    before = file_digests(rounds)
    run_files = {name: Path(store.path(name)).read_bytes() for name in ("pool.parquet", "run.yaml", "HEAD")}

    assert main(["rescore", RUN, "1", "--store", store.url, "--examples", "2"]) == 0
    out = capsys.readouterr().out
    assert file_digests(rounds) == before
    assert {name: Path(store.path(name)).read_bytes() for name in run_files} == run_files

    assert f"12 traces rescored by math {VERSIONS['math']}" in out
    assert f"the round was judged by math {OLD_VERSION}" in out
    assert "12 distinct answers: 0 from the verdict cache, 12 judged by the verifiers" in out
    assert "flipped verdicts: 5 of 12 traces" in out
    assert "  incorrect      cannot judge         3\n" in out
    assert "  correct        incorrect            1\n" in out
    assert "  cannot judge   correct              1\n" in out
    assert "examples (2 of 5; all in flips.parquet)" in out
    old, new = OLD_VERSION, VERSIONS["math"]
    assert f"{rows[1]['problem_id']} sample 1: correct ({old}) -> incorrect ({new}); gold " in out
    assert f"{rows[3]['problem_id']} sample 0: cannot judge ({old}) -> correct ({new}); gold " in out

    (folder,) = _rescores(store)
    assert folder.name.startswith("r0001-") and f"written to {folder}" in out
    manifest = _manifest(folder)
    assert manifest["verifier_versions_before"] == {"math": [OLD_VERSION]}
    assert manifest["verifier_versions_after"] == {"math": VERSIONS["math"]}
    assert manifest["verify"] == {"timeout_s": 5.0, "memory_limit_mb": 1024, "format_weight": 0.0}
    assert manifest["counts"] == {
        "traces": 12,
        "answers": 12,
        "from_cache": 0,
        "verifier_calls": 12,
        "timed_out": 0,
        "verdicts_stored": 9,  # the three "cannot judge" verdicts are not kept
        "flipped": 5,
        "transitions": {"cannot judge -> correct": 1, "correct -> incorrect": 1, "incorrect -> cannot judge": 3},
    }
    assert sum(verifier_calls) == 12
    rescored = pq.read_table(folder / "traces.parquet")
    assert rescored.schema.remove_metadata() == VERIFIED_TRACES_SCHEMA
    assert rescored.column("correct").to_pylist() == [True, False, False] * 3 + [None] * 3
    assert set(rescored.column("verifier_version").to_pylist()) == {VERSIONS["math"]}
    assert rescored.select(TRACES_SCHEMA.names).equals(
        pa.Table.from_pylist(rows, schema=VERIFIED_TRACES_SCHEMA).select(TRACES_SCHEMA.names)
    )
    flips = pq.read_table(folder / "flips.parquet")
    assert flips.schema.remove_metadata() == FLIPS_SCHEMA
    assert [(row["sample_idx"], row["old_correct"], row["new_correct"]) for row in flips.to_pylist()] == [
        (1, True, False),
        (0, None, True),
        (0, False, None),
        (1, False, None),
        (2, False, None),
    ]


def test_a_second_rescore_judges_only_what_the_verdict_cache_lacks(
    run: tuple[RunStore, list[dict[str, Any]]], verifier_calls: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = run
    assert main(["rescore", RUN, "1", "--store", store.url]) == 0
    (batch,) = Path(store.path("verdicts", f"math-{VERSIONS['math']}")).iterdir()
    assert pq.read_table(batch).num_rows == 9
    first = capsys.readouterr().out
    calls_before = sum(verifier_calls)
    run_before = file_digests(Path(store.root))

    # Nothing changed: the rescore is found, reported again, nothing judged or written.
    assert main(["rescore", RUN, "1", "--store", store.url]) == 0
    again = capsys.readouterr().out
    assert sum(verifier_calls) == calls_before
    assert file_digests(Path(store.root)) == run_before
    assert "was rescored with these verifier versions and settings already" in again and "nothing judged" in again
    assert f"stored in {_rescores(store)[0]}" in again
    assert first.splitlines()[-8:] == again.splitlines()[-8:]  # the same flip table and examples

    # Another timeout is another rescore; the same verifier version's verdicts come from the run's cache, only
    # the "cannot judge" answers (never cached) are judged again.
    assert main(["rescore", RUN, "1", "--store", store.url, "--timeout", "7"]) == 0
    out = capsys.readouterr().out
    assert "12 distinct answers: 9 from the verdict cache, 3 judged by the verifiers" in out
    assert sum(verifier_calls) - calls_before == 3
    assert len(_rescores(store)) == 2
    newest = next(folder for folder in _rescores(store) if _manifest(folder)["verify"]["timeout_s"] == 7.0)
    assert _manifest(newest)["counts"]["flipped"] == 5
    assert _manifest(newest)["counts"]["verdicts_stored"] == 0
    assert len(list(batch.parent.iterdir())) == 1  # nothing new to keep


def test_stored_verdicts_load_into_a_live_cache_and_only_new_judged_ones_are_saved(
    run: tuple[RunStore, list[dict[str, Any]]],
) -> None:
    """The two calls a round would make around its verification (flows/verdicts.py)."""
    store, _ = run
    version = VERSIONS["math"]
    first = VerdictCache()
    first.put("41", "42", Verdict(False, 0.0, "41", "not equal", "math", version))
    first.put("42", "42", Verdict(True, 1.0, "42", "same", "math", version))
    first.put("x", "???", Verdict(None, None, "x", "cannot judge: gold", "math", version))
    first.put("9^9^9", "42", Verdict(False, 0.0, None, "timed out", "math", version, timed_out=True))
    assert save_new_verdicts(store, first, loaded=set()) == 2  # neither "cannot judge" nor a timeout is kept

    live = VerdictCache()
    live.put("43", "42", Verdict(False, 0.0, "43", "not equal", "math", version))
    loaded = load_stored_verdicts(store, {"math": version}, live)
    assert loaded == {("math", version, "41", "42"), ("math", version, "42", "42")}
    assert live.get("math", version, "42", "42") == Verdict(True, 1.0, "42", "same", "math", version)
    assert len(live) == 3
    assert load_stored_verdicts(store, {"math": "0.0.1"}, VerdictCache()) == set()  # another version: nothing
    assert save_new_verdicts(store, live, loaded) == 1  # only "43" is new
    assert save_new_verdicts(store, live, loaded | {("math", version, "43", "42")}) == 0
    assert len(list(Path(store.path("verdicts", f"math-{version}")).iterdir())) == 2


def test_check_covers_rescores_and_the_verdict_cache(
    run: tuple[RunStore, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = run
    assert main(["rescore", RUN, "1", "--store", store.url]) == 0
    capsys.readouterr()
    assert main(["check", RUN, "--store", store.url]) == 0
    assert "1 rescore(s) and 1 verdict cache file(s) are intact" in capsys.readouterr().out
    assert main(["check", RUN, "0", "--store", store.url]) == 0
    assert "0 rescore(s) and 1 verdict cache file(s) are intact" in capsys.readouterr().out

    (folder,) = _rescores(store)
    _flip_a_byte(folder / "traces.parquet")
    (batch,) = Path(store.path("verdicts", f"math-{VERSIONS['math']}")).iterdir()
    _flip_a_byte(batch)
    assert main(["check", RUN, "--store", store.url]) == 2
    err = capsys.readouterr().err
    assert f"{folder}/traces.parquet has sha256" in err and f"delete {folder} and run `flywheel rescore old 1`" in err
    assert f"{batch} has sha256" in err and "the verdict batch was modified" in err
    assert "2 problem(s) in run 'old'" in err
    assert main(["status", RUN, "--store", store.url]) == 0  # sizes only: a same-size edit is for `check`


def test_bad_input_is_an_error_naming_the_round_or_file(
    run: tuple[RunStore, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = run
    cases = [
        (["nope", "1"], "no run 'nope'"),
        (["old", "4"], "round 4 is not committed"),
        (["old", "0"], "round 0 of run 'old' has no traces to rescore"),
    ]
    store.begin_round(2)
    cases.append((["old", "2"], "round 2 is not committed"))
    for arguments, message in cases:
        assert main(["rescore", *arguments, "--store", store.url]) == 2, arguments
        assert message in capsys.readouterr().err
    part = Path(store.round_path(1, "traces", "part-00000.parquet"))
    original = part.read_bytes()
    _flip_a_byte(part)
    assert main(["rescore", RUN, "1", "--store", store.url]) == 2
    assert f"{part} has sha256" in capsys.readouterr().err
    assert _rescores(store) == []
    part.write_bytes(original)

    assert main(["rescore", RUN, "1", "--store", store.url]) == 0
    (folder,) = _rescores(store)
    manifest = folder / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"flipped": 5', '"flipped": 0'))
    capsys.readouterr()
    assert main(["rescore", RUN, "1", "--store", store.url]) == 2
    assert f"{manifest}: its content does not match its manifest_sha256" in capsys.readouterr().err

    (batch,) = Path(store.path("verdicts", f"math-{VERSIONS['math']}")).iterdir()
    _flip_a_byte(batch)
    assert main(["rescore", RUN, "1", "--store", store.url, "--timeout", "9"]) == 2
    assert f"{batch} has sha256" in capsys.readouterr().err

    assert main(["rescore", RUN, "1", "--store", store.url, "--timeout", "-1"]) == 2
    err = capsys.readouterr().err
    assert f"invalid config {store.path('run.yaml')}" in err and "verify.timeout_s" in err


def test_rescore_as_a_user_runs_it(tmp_path: Path) -> None:
    store, _ = _build_run(tmp_path / "runs")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "flows.cli", "rescore", RUN, "1", "--store", store.url]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "flipped verdicts: 5 of 12 traces" in result.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == ["runs"]  # nothing written beside the store


def _flip_a_byte(path: Path) -> None:
    """Change one byte in the middle: same size, another sha256."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
