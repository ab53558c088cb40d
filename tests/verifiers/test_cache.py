from __future__ import annotations

import pytest

from verifiers.cache import VerdictCache, answer_key, flipped, gold_key
from verifiers.verdict import Verdict


def _verdict(correct: bool | None, version: str = "1", timed_out: bool = False) -> Verdict:
    reward = None if correct is None else float(correct)
    return Verdict(correct, reward, "42", "reason", "math", version, timed_out)


def test_math_answer_key_is_the_extracted_answer() -> None:
    first = "Adding up, we get 40 + 2 = \\boxed{42}."
    second = "A different derivation.\n\nSo the result is \\boxed{42}"
    assert answer_key("math", first) == answer_key("math", second) == "42"
    assert answer_key("math", "") != answer_key("math", "0")
    assert answer_key("code", "print(1)") == "print(1)"


def test_gold_key_is_the_field_the_verifier_reads() -> None:
    assert gold_key("math", {"answer": 7}) == "7"
    assert gold_key("code", {"answer": "7", "tests": {"b": 1, "a": 2}}) == '{"a": 2, "b": 1}'
    # countdown judges against numbers and target: two problems sharing one solution are two golds
    use_all = {"answer": "3*2", "metadata": '{"numbers": [1, 2, 3], "target": 6, "use_all": true}'}
    any_of = {"answer": "3*2", "metadata": '{"numbers": [1, 2, 3], "target": 6, "use_all": false}'}
    assert gold_key("countdown", use_all) != gold_key("countdown", any_of)
    assert gold_key("format", {"answer": "7"}) == gold_key("format", {"answer": "8"})
    assert gold_key("not-listed", {"answer": "7", "x": 1}) != gold_key("not-listed", {"answer": "7", "x": 2})


def test_rows_round_trip_and_timeouts_are_not_stored() -> None:
    cache = VerdictCache()
    cache.put("42", "42", _verdict(True))
    cache.put("41", "42", _verdict(False))
    cache.put("9^9^9", "42", _verdict(False, timed_out=True))
    assert len(cache) == 2
    restored = VerdictCache(cache.to_rows())
    assert restored.get("math", "1", "42", "42") == _verdict(True)
    assert restored.get("math", "1", "41", "42") == _verdict(False)
    assert restored.get("math", "2", "42", "42") is None  # another verifier version is another key
    assert restored.get("math", "1", "9^9^9", "42") is None


def test_bad_rows_name_the_row_and_field() -> None:
    with pytest.raises(ValueError, match="row 0: missing field"):
        VerdictCache([{"verifier": "math"}])


def test_flipped_reports_changed_verdicts_only() -> None:
    old = [_verdict(True), _verdict(False), _verdict(None)]
    new = [_verdict(True, "2"), _verdict(True, "2"), _verdict(False, "2")]
    flips = flipped(old, new)
    assert [(flip.index, flip.old_correct, flip.new_correct) for flip in flips] == [(1, False, True), (2, None, False)]
    assert flips[0].old_version == "1" and flips[0].new_version == "2"
    with pytest.raises(ValueError, match="2 old verdicts with 3"):
        flipped(old[:2], new)
