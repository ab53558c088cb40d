from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import reasoning_gym

from verifiers import VERIFIERS
from verifiers.reasoning_gym import checker_is_unsafe, task_names, verify


def problem_for(task: str, index: int = 1, seed: int = 7, size: int = 10) -> tuple[dict[str, str], dict]:
    entry = reasoning_gym.create_dataset(task, seed=seed, size=size)[index]
    metadata = {
        "task": task,
        "config": {},
        "seed": seed,
        "size": size,
        "index": index,
        "question_sha1": hashlib.sha1(entry["question"].encode()).hexdigest(),
    }
    return {"prompt": entry["question"], "metadata": json.dumps(metadata)}, entry


def test_registered_and_lists_the_package_tasks() -> None:
    assert VERIFIERS["reasoning_gym"] is verify
    assert {"leg_counting", "countdown", "spell_backward"} <= set(task_names())


@pytest.mark.parametrize("task", ["leg_counting", "spell_backward", "word_sorting"])
def test_in_process_checkers(task: str) -> None:
    problem, entry = problem_for(task)
    assert not checker_is_unsafe(task)
    right = verify(f"<think>work</think><answer>{entry['answer']}</answer>", problem)
    assert right.correct is True and right.reward == 1.0 and right.extracted == entry["answer"]
    wrong = verify("<answer>definitely not it</answer>", problem)
    assert wrong.correct is False and wrong.reward is not None and wrong.reward < 1.0
    assert f"{task}: score" in wrong.reason
    missing = verify(str(entry["answer"]), problem)
    assert missing.correct is False and "no <answer>" in missing.reason


def test_checkers_that_evaluate_text_run_in_the_sandbox(tmp_path: Path) -> None:
    assert checker_is_unsafe("countdown") and checker_is_unsafe("string_insertion")
    problem, entry = problem_for("string_insertion")
    assert verify(f"<answer>{entry['answer']}</answer>", problem).correct is True
    proof = tmp_path / "evaluated-outside"
    attack = f"<answer>open({str(proof)!r}, 'w').write('x') or 'A'</answer>"
    verdict = verify(attack, problem)
    assert verdict.correct is False
    assert not proof.exists()  # string_insertion's checker evals the answer: here it ran sandboxed
    control = tmp_path / "evaluated-in-process"
    dataset = reasoning_gym.create_dataset("string_insertion", seed=7, size=10)
    dataset.score_answer(f"open({str(control)!r}, 'w').write('x') or 'A'", entry)
    assert control.exists()  # the control: the same checker called directly does run the text


def test_changed_question_cannot_be_judged() -> None:
    problem, entry = problem_for("leg_counting")
    metadata = json.loads(problem["metadata"])
    metadata["question_sha1"] = "0" * 40
    verdict = verify(f"<answer>{entry['answer']}</answer>", {"metadata": json.dumps(metadata)})
    assert verdict.correct is None and "different question" in verdict.reason


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": 3}, "'task' must be a str"),
        ({"index": 10}, "outside 0..9"),
        ({"config": []}, "'config' must be an object"),
        ({"task": "no_such_task"}, "unknown reasoning-gym task 'no_such_task'"),
    ],
)
def test_bad_metadata_cannot_be_judged(change: dict, message: str) -> None:
    problem, _ = problem_for("leg_counting")
    metadata = {**json.loads(problem["metadata"]), **change}
    verdict = verify("<answer>1</answer>", {"metadata": json.dumps(metadata)})
    assert verdict.correct is None and verdict.reward is None
    assert message in verdict.reason
