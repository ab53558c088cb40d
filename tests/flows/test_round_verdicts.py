"""A round's verification through the run's persistent verdict cache: what one verification judged, a second one
(a resumed round, a later round, another process) finds in `verdicts/` and does not judge again. Real store, real
Parquet, the real verifier pool; the verifier calls are counted, not replaced. GRPO's reward function judges
through the same cache. The last test reads the cache a real `flywheel run` left (the sample stage's shards and
the evaluation) and rescores its round with no call."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from configs import RunConfig, VerifyConfig, parse_config
from flows.engines import VERIFIER_POOLS
from flows.rescore import rescore_round
from flows.runners import verify_in_this_process
from flows.sampling import verify
from flows.verdicts import RunVerdicts, kept_verdicts
from stages.evaluate import EVAL_SCHEMA
from stages.problems import PROBLEMS_SCHEMA, generate_arithmetic, split_of
from stages.rewards import CorrectnessReward
from stages.sample import TRACES_SCHEMA
from stages.verify import VERDICT_CACHE_SCHEMA, VERIFIED_TRACES_SCHEMA, verdict_key
from storage import RunStore
from storage.verdicts import read_verdicts, verdict_files
from tests.conftest import CommittedRun, tiny_config
from verifiers import VERSIONS

VERIFY = {"workers": 1, "timeout_s": 5.0}




def _run(tmp_path: Path) -> tuple[RunConfig, RunStore, pa.Table]:
    config = parse_config(tiny_config(tmp_path / "runs", verify=VERIFY), source="test")
    pool = generate_arithmetic(config.problems.arithmetic, config.seed)
    store = RunStore(config.store, config.run_name)
    store.create("run_name: tiny\n", pool)
    train, golds, rows = split_of(pool, "train").to_pylist(), set(), []
    for row in train:  # distinct golds: each problem's answers are its own verdict keys
        if row["answer"] not in golds and len(rows) < 12:
            golds.add(row["answer"])
            rows.append(row)
    return config, store, pa.Table.from_pylist(rows, schema=PROBLEMS_SCHEMA)


def _traces(problems: pa.Table) -> pa.Table:
    """Four samples per problem: right, wrong, no answer, and right again (one verifier call for both)."""
    rows = []
    for problem in problems.to_pylist():
        right = problem["answer"]
        for sample_idx, completion in enumerate([right, str(int(right) + 1), "no idea", f"#### {right}"]):
            rows.append(
                {
                    "round": 1, "problem_id": problem["problem_id"], "sample_idx": sample_idx, "model_ref": "round:0",
                    "prompt": problem["prompt"], "completion": completion, "completion_tokens": 3,
                    "finish_reason": "stop", "seed": 0,
                }  # fmt: skip
            )
    return pa.Table.from_pylist(rows, schema=TRACES_SCHEMA)


def test_a_second_verification_of_the_same_traces_judges_nothing(tmp_path: Path, verifier_calls: list[int]) -> None:
    config, store, problems = _run(tmp_path)
    traces = _traces(problems)
    first = verify(config, store, traces, problems)
    assert sum(verifier_calls) == 3 * problems.num_rows  # the two samples answering `right` share a call
    stored = read_verdicts(store, "math", VERSIONS["math"], VERDICT_CACHE_SCHEMA)
    # every distinct answer is stored ("no idea" is judged wrong: no final answer)
    assert stored.num_rows == 3 * problems.num_rows
    assert set(stored.column("correct").to_pylist()) == {True, False}

    VERIFIER_POOLS.close()  # a new process, as after a crash: nothing left in memory
    again = verify(config, RunStore(config.store, config.run_name), traces, problems)
    assert sum(verifier_calls) == 3 * problems.num_rows  # not one call more
    assert again == first
    assert len(verdict_files(store)) == 1  # nothing new to store: no second batch


def test_only_answers_not_judged_before_are_judged(tmp_path: Path, verifier_calls: list[int]) -> None:
    config, store, problems = _run(tmp_path)
    verify(config, store, _traces(problems.slice(0, 6)), problems.slice(0, 6))
    before = sum(verifier_calls)
    both = verify(config, store, _traces(problems), problems)
    assert sum(verifier_calls) - before == 3 * 6  # only the six new problems' answers
    assert both.num_rows == 4 * problems.num_rows
    stored = read_verdicts(store, "math", VERSIONS["math"], VERDICT_CACHE_SCHEMA)
    assert stored.num_rows == 3 * problems.num_rows and len(verdict_files(store)) == 2


def test_a_shards_verify_task_gets_the_stored_verdicts_and_returns_what_it_judged(
    tmp_path: Path, verifier_calls: list[int]
) -> None:
    """The sample stage's path: the flow hands each verify task the cached verdicts of its shard's problems (the
    task may run on a Dask or Ray worker) and stores the verdicts the task judged."""
    config, store, problems = _run(tmp_path)
    traces = _traces(problems)
    verdicts = RunVerdicts(store, problems)
    assert verdicts.loaded == 0
    first = verify_in_this_process(traces, problems, VerifyConfig(**VERIFY), verdicts.for_shard(problems))
    assert (first.answers, first.from_cache, len(first.judged)) == (36, 0, 36)
    verdicts.add(first.judged)
    assert verdicts.store_judged() == 36 and verdicts.store_judged() == 0  # a second save stores nothing twice

    resumed = RunVerdicts(RunStore(config.store, config.run_name), problems)
    assert resumed.loaded == 36
    calls = sum(verifier_calls)
    again = verify_in_this_process(traces, problems, VerifyConfig(**VERIFY), resumed.for_shard(problems))
    assert sum(verifier_calls) == calls  # no verifier call
    assert (again.answers, again.from_cache, again.judged) == (36, 36, [])
    assert again.traces == first.traces


def test_a_shard_gets_only_the_verdicts_of_its_own_problems(tmp_path: Path, verifier_calls: list[int]) -> None:
    config, store, problems = _run(tmp_path)
    verify(config, store, _traces(problems), problems)
    verdicts = RunVerdicts(store, problems)
    shard = problems.slice(0, 2)
    golds = {str(gold) for gold in shard.column("answer").to_pylist()}
    known = verdicts.for_shard(shard)
    assert 0 < len(known) < len(verdicts.cache)
    assert {key[3] for key in known.keys()} <= golds


def test_cannot_judge_verdicts_are_judged_again(tmp_path: Path, verifier_calls: list[int]) -> None:
    config, store, problems = _run(tmp_path)
    traces = _traces(problems.slice(0, 2))
    rows = problems.to_pylist()[:2]
    rows[0]["answer"] = "???"  # a gold that does not parse: "cannot judge", which depends on nothing stored
    broken = pa.Table.from_pylist(rows, schema=PROBLEMS_SCHEMA)
    verify(config, store, traces, broken)
    calls = sum(verifier_calls)
    verify(config, store, traces, broken)
    assert sum(verifier_calls) - calls == 3  # the unparseable gold's three answers, again; the other's none


def _grpo_completions(problems: pa.Table) -> tuple[list[str], list[str]]:
    """A GRPO batch in model style: each problem's right answer boxed (judged by the sample stage as `#### N`:
    the same final answer) and a wrong answer no sample gave."""
    ids, completions = [], []
    for problem in problems.to_pylist():
        right = int(problem["answer"])
        ids += [problem["problem_id"]] * 2
        completions += [f"So the total is \\boxed{{{right}}}.", f"The answer is {right + 7}."]
    return ids, completions


def test_grpo_rewards_judge_through_the_stored_verdicts_and_store_theirs(
    tmp_path: Path, verifier_calls: list[int]
) -> None:
    """GRPO's reward during training: answers the round's sample stage judged are not judged again, new ones
    are, and are stored for a resumed phase or the next round."""
    config, store, problems = _run(tmp_path)
    verify(config, store, _traces(problems), problems)  # the sample stage
    calls = sum(verifier_calls)
    ids, completions = _grpo_completions(problems)
    by_id = {row["problem_id"]: row for row in problems.to_pylist()}
    with kept_verdicts(store, problems) as verdicts:
        assert verdicts.loaded == 3 * problems.num_rows
        reward = CorrectnessReward(by_id, config=config.verify, pool=VERIFIER_POOLS.get(config.verify),
                                   cache=verdicts.cache)  # fmt: skip
        rewards = reward(completions, ids)
    assert rewards == [1.0, 0.0] * problems.num_rows
    assert sum(verifier_calls) - calls == problems.num_rows  # only the new wrong answers
    assert (reward.calls, reward.cached, reward.judged) == (2 * problems.num_rows, problems.num_rows, problems.num_rows)
    assert verdicts.stored == problems.num_rows

    VERIFIER_POOLS.close()  # the next attempt, in a new process
    calls = sum(verifier_calls)
    with kept_verdicts(RunStore(config.store, config.run_name), problems) as resumed:
        again = CorrectnessReward(by_id, config=config.verify, pool=VERIFIER_POOLS.get(config.verify),
                                  cache=resumed.cache)  # fmt: skip
        assert again(completions, ids) == rewards
    assert sum(verifier_calls) == calls and again.judged == 0 and resumed.stored == 0
    assert again.cached == 2 * problems.num_rows


def test_verdicts_a_failed_grpo_phase_judged_are_kept(tmp_path: Path, verifier_calls: list[int]) -> None:
    config, store, problems = _run(tmp_path)
    ids, completions = _grpo_completions(problems)
    by_id = {row["problem_id"]: row for row in problems.to_pylist()}
    with pytest.raises(RuntimeError, match="trainer crashed"), kept_verdicts(store, problems) as verdicts:
        CorrectnessReward(by_id, config=config.verify, pool=VERIFIER_POOLS.get(config.verify),
                          cache=verdicts.cache)(completions, ids)  # fmt: skip
        raise RuntimeError("trainer crashed")
    stored = read_verdicts(store, "math", VERSIONS["math"], VERDICT_CACHE_SCHEMA)
    assert stored.num_rows == 2 * problems.num_rows


@pytest.mark.slow
def test_a_real_round_fills_the_cache_and_its_rescore_judges_nothing(
    committed_run: CommittedRun, tmp_path: Path, verifier_calls: list[int]
) -> None:
    run = committed_run.copy_to(tmp_path)
    store = RunStore(str(run.parent), run.name)
    traces = store.read_parts(1, VERIFIED_TRACES_SCHEMA)
    problems = store.read_table(1, "problems", PROBLEMS_SCHEMA)
    stored = read_verdicts(store, "math", VERSIONS["math"], VERDICT_CACHE_SCHEMA).to_pylist()
    cached = {(row["answer_key"], row["gold"]): row["correct"] for row in stored}
    by_id = {row["problem_id"]: row for row in problems.to_pylist()}
    judged = [row for row in traces.to_pylist() if row["correct"] is not None and not row["timed_out"]]
    assert judged
    for row in judged:  # the sample stage stored every verdict it wrote into a part file
        _, _, answer, gold = verdict_key(row["problem_id"], row["completion"], by_id[row["problem_id"]])
        assert cached[(answer, gold)] == row["correct"]
    pool = {row["problem_id"]: row for row in store.read_pool(PROBLEMS_SCHEMA).to_pylist()}
    evaluated = store.read_table(1, "eval", EVAL_SCHEMA).to_pylist()
    assert evaluated
    for row in evaluated:  # and so did the evaluation
        for completion, correct in zip(row["completions"], row["correct"], strict=True):
            _, _, answer, gold = verdict_key(row["problem_id"], completion, pool[row["problem_id"]])
            assert cached[(answer, gold)] == correct
    result = rescore_round(store, 1, workers=1)
    assert result.manifest["counts"]["verifier_calls"] == 0
    assert result.manifest["counts"]["from_cache"] == result.manifest["counts"]["answers"]
    assert sum(verifier_calls) == 0
