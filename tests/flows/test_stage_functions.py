"""The stage functions of a round (flows/round_stages.py) called directly, without Prefect: a real store in
tmp_path, real Parquet files. `sample_stage` and `evaluate_stage` start a vLLM engine and `train_stage` trains;
the flow tests (test_end_to_end.py, test_resume.py, test_training.py) drive those through real rounds."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from configs import RunConfig, parse_config
from flows.round_stages import (
    control_train_stage,
    curate_stage,
    seed_data_stage,
    select_stage,
    train_stage,
    warm_start_stage,
)
from stages.curate import DATASET_SCHEMA, DIFFICULTY_SCHEMA, DROPPED_SCHEMA
from stages.problems import PROBLEMS_SCHEMA, generate_arithmetic, split_of
from storage import RunStore
from tests.conftest import tiny_config
from tests.stages.helpers import difficulty, verified_traces


def _setup(tmp_path: Path, **changes: object) -> tuple[RunConfig, RunStore, pa.Table]:
    config = parse_config(tiny_config(tmp_path / "runs", **changes), source="test")
    pool = generate_arithmetic(config.problems.arithmetic, config.seed)
    return config, RunStore(config.store, config.run_name), pool


def _commit(store: RunStore, round_id: int, tables: dict[str, pa.Table]) -> None:
    """Commit `round_id` holding `tables`, as a finished round would (the manifest's other fields do not matter)."""
    store.begin_round(round_id)
    files = [store.write_table(round_id, name, table) for name, table in tables.items()]
    store.commit(round_id, {}, files)


def test_seed_data_writes_the_seed_split_and_its_labelled_dataset(tmp_path: Path) -> None:
    config, store, pool = _setup(tmp_path)
    output = seed_data_stage(store, config, 0, pool)
    assert [record.path for record in output.files] == ["problems.parquet", "dataset.parquet"]
    seed = split_of(pool, "seed")
    assert store.read_table(0, "problems", PROBLEMS_SCHEMA).equals(seed)
    dataset = store.read_table(0, "dataset", DATASET_SCHEMA)
    assert dataset.num_rows == seed.num_rows == config.problems.arithmetic.n_seed
    assert output.metrics == {"kept": float(seed.num_rows)}
    assert [record.rows for record in output.files] == [seed.num_rows, dataset.num_rows]
    assert store.check_files(0, output.files) is None  # the records hash what is on disk


def test_seed_data_without_a_warm_start_writes_nothing(tmp_path: Path) -> None:
    config, store, pool = _setup(tmp_path, warm_start=None)
    store.begin_round(0)
    assert seed_data_stage(store, config, 0, pool).files == []
    assert not Path(store.round_path(0, "problems.parquet")).exists()


def test_select_draws_the_round_and_skips_what_an_earlier_round_solved(tmp_path: Path) -> None:
    config, store, pool = _setup(tmp_path, select={"problems_per_round": 1000, "skip_solved_rounds": 1})
    train_ids = split_of(pool, "train").column("problem_id").to_pylist()
    first = select_stage(store, config, 1, pool)
    assert first.metrics == {"problems": float(len(train_ids))}  # no history: the whole train split
    selected = store.read_table(1, "problems", PROBLEMS_SCHEMA)
    assert sorted(selected.column("problem_id").to_pylist()) == sorted(train_ids)
    solved = train_ids[:5]
    _commit(store, 1, {"problems": selected, "difficulty": difficulty(1, dict.fromkeys(solved, "solved"))})
    second = select_stage(store, config, 2, pool)
    chosen = set(store.read_table(2, "problems", PROBLEMS_SCHEMA).column("problem_id").to_pylist())
    assert chosen == set(train_ids) - set(solved)  # round 1's difficulty table was read
    assert second.metrics == {"problems": float(len(train_ids) - len(solved))}


def _traces(problem_ids: list[str]) -> pa.Table:
    rows = []
    for number, problem_id in enumerate(problem_ids):
        words = " ".join(f"step{number}x{i}" for i in range(12))  # distinct texts: no near-duplicates
        rows += [
            {"problem_id": problem_id, "sample_idx": 0, "completion": f"{words} so the answer is 1", "correct": True},
            {"problem_id": problem_id, "sample_idx": 1, "completion": f"{words} wrong", "correct": False},
        ]
    return verified_traces(rows)


def test_curate_writes_its_four_tables_and_drops_what_an_earlier_round_kept(tmp_path: Path) -> None:
    config, store, pool = _setup(tmp_path)
    ids = split_of(pool, "train").column("problem_id").to_pylist()[:4]
    store.begin_round(1)
    parts = [store.write_traces_part(1, 0, _traces(ids[:2])), store.write_traces_part(1, 1, _traces(ids[2:]))]
    output = curate_stage(store, config, 1, pool, parts)
    tables = ("dataset", "dropped", "difficulty", "signatures")
    assert [record.path for record in output.files] == [f"{name}.parquet" for name in tables]
    kept = store.read_table(1, "dataset", DATASET_SCHEMA)
    dropped = store.read_table(1, "dropped", DROPPED_SCHEMA)
    assert sorted(kept.column("problem_id").to_pylist()) == sorted(ids)  # one correct trace of each problem
    assert dropped.column("drop_reason").to_pylist() == ["incorrect"] * 4
    assert store.read_table(1, "difficulty", DIFFICULTY_SCHEMA).column("pass_rate").to_pylist() == [0.5] * 4
    assert output.metrics["traces"] == 8.0 and output.metrics["sample_pass_rate"] == 0.5
    store.commit(1, {}, [*parts, *output.files])

    store.begin_round(2)
    again = [store.write_traces_part(2, 0, _traces(ids[:1]))]
    curate_stage(store, config, 2, pool, again)
    reasons = store.read_table(2, "dropped", DROPPED_SCHEMA).column("drop_reason").to_pylist()
    assert sorted(reasons) == ["duplicate_of:" + ids[0] + "/0@r1", "incorrect"]  # round 1's signatures were read
    assert store.read_table(2, "dataset", DATASET_SCHEMA).num_rows == 0


def test_warm_start_without_training_stores_an_init_model_and_leaves_a_base_model(tmp_path: Path) -> None:
    config, store, _ = _setup(tmp_path, warm_start=None)
    store.begin_round(0)
    output = warm_start_stage(store, config, 0)
    assert {"model/config.json", "model/tokenizer.json"} <= {record.path for record in output.files}
    assert store.check_files(0, output.files) is None
    base, base_store, _ = _setup(
        tmp_path / "base", warm_start=None, model={"path": str(tmp_path / "anywhere"), "max_model_len": 32}
    )
    assert warm_start_stage(base_store, base, 0).files == []


@pytest.mark.slow
def test_warm_start_then_an_improvement_round_train_on_what_they_are_given(tmp_path: Path) -> None:
    steps = {"max_steps": 2, "warmup_steps": 0, "per_device_train_batch_size": 8}
    config, store, pool = _setup(tmp_path, warm_start=steps, train=steps)
    store.begin_round(0)
    files = seed_data_stage(store, config, 0, pool).files
    warm = warm_start_stage(store, config, 0)
    assert warm.metrics["sft_steps"] == 2.0 and warm.metrics["sft_examples"] == float(len(split_of(pool, "seed")))
    store.commit(0, {}, [*files, *warm.files])
    store.begin_round(1)
    ids = split_of(pool, "train").column("problem_id").to_pylist()[:3]
    curated = curate_stage(store, config, 1, pool, [store.write_traces_part(1, 0, _traces(ids))])
    store.write_table(1, "problems", split_of(pool, "train").slice(0, 3))
    trained = train_stage(store, config, 1, pool, "round:0")
    # round 0's labelled data is carried over (train.include_seed_data) and joined by round 1's kept traces
    assert trained.metrics["sft_examples"] == float(len(split_of(pool, "seed")) + len(ids))
    assert trained.metrics["sft_steps"] == 2.0
    assert curated.metrics["kept"] == float(len(ids))
    assert store.check_files(1, trained.files) is None


@pytest.mark.slow
def test_control_train_trains_on_round_0s_labelled_data(tmp_path: Path) -> None:
    config, store, pool = _setup(tmp_path, train={"max_steps": 2, "warmup_steps": 0, "per_device_train_batch_size": 8})
    store.begin_round(0)
    seed_data_stage(store, config, 0, pool)
    store.begin_round(1)
    output = control_train_stage(store, config, 1, "init:tiny-arithmetic")
    assert output.metrics["sft_steps"] == 2.0
    assert output.metrics["sft_examples"] == float(config.problems.arithmetic.n_seed)
    assert store.check_files(1, output.files) is None
    assert Path(store.local_model_path(1), "model.safetensors").is_file()
