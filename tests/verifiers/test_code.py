from __future__ import annotations

import json
import re
import time

import pytest

from verifiers import VERIFIERS, VERSIONS
from verifiers.code import InvalidTestsError, extract_program, parse_tests, same_output, verify

ADD_ASSERTS = json.dumps({"asserts": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(2, 2) == 4"]})
SUM_STDIO = json.dumps({"stdio": [{"input": "1 2\n", "output": "3\n"}, {"input": "5 6\n", "output": "11"}]})
GOOD_ADD = "Here is my solution:\n```python\ndef add(a, b):\n    return a + b\n```\nIt adds."
GOOD_SUM = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"


def test_registered_under_code() -> None:
    assert VERIFIERS["code"] is verify and VERSIONS["code"]


def test_assert_style_all_pass() -> None:
    verdict = verify(GOOD_ADD, {"tests": ADD_ASSERTS})
    assert verdict.correct is True and verdict.reward == 1.0
    assert verdict.reason.startswith("3/3 tests passed")
    assert verdict.extracted is not None and "def add" in verdict.extracted


def test_assert_style_partial_credit_and_per_test_outcomes() -> None:
    program = (
        "```python\ndef add(a, b):\n    if a < 0:\n        raise ValueError('negative')\n"
        "    return a * b if a == 2 else a + b\n```"
    )
    verdict = verify(program, {"tests": ADD_ASSERTS})
    assert verdict.correct is False
    assert verdict.reward == pytest.approx(2 / 3)
    assert "test 1: pass" in verdict.reason
    assert "test 2: error: ValueError: negative" in verdict.reason
    assert "test 3: pass" in verdict.reason


def test_a_hanging_assert_times_out_alone() -> None:
    tests = json.dumps({"asserts": ["assert f(1) == 1", "assert f(0) == 0"], "timeout_s": 0.5})
    program = "def f(x):\n    while x == 0:\n        pass\n    return x"
    started = time.monotonic()
    verdict = verify(program, {"tests": tests})
    assert verdict.correct is False and verdict.timed_out and verdict.reward == 0.5
    assert "test 2: timed out" in verdict.reason
    assert time.monotonic() - started < 3.0


def test_printed_markers_and_early_exit_do_not_pass_tests() -> None:
    forged = "import os\nprint('0 \"pass\"')\nos._exit(0)"
    verdict = verify(forged, {"tests": ADD_ASSERTS})
    assert verdict.correct is False and verdict.reward == 0.0
    assert "not run" in verdict.reason
    exits = verify("import sys\nsys.exit(0)", {"tests": ADD_ASSERTS})
    assert exits.correct is False and "program failed" in exits.reason


def test_main_block_does_not_run_in_assert_style() -> None:
    program = "def add(a, b):\n    return a + b\nif __name__ == '__main__':\n    input()"
    assert verify(program, {"tests": ADD_ASSERTS}).correct is True


def test_stdio_style() -> None:
    verdict = verify(GOOD_SUM, {"tests": SUM_STDIO})
    assert verdict.correct is True and verdict.reward == 1.0
    wrong = verify("```python\nprint(3)\n```", {"tests": SUM_STDIO})
    assert wrong.correct is False and wrong.reward == 0.5
    assert "test 2: wrong output: expected '11', got '3\\n'" in wrong.reason


def test_apps_layout_and_runtime_errors() -> None:
    tests = json.dumps({"inputs": ["2\n", "0\n"], "outputs": ["5\n", "inf\n"]})
    verdict = verify("print(10 // int(input()))", {"tests": tests})
    assert verdict.reward == 0.5
    assert "ZeroDivisionError" in verdict.reason


def test_syntax_error_fails_every_test() -> None:
    verdict = verify("```python\ndef add(a, b) return a\n```", {"tests": ADD_ASSERTS})
    assert verdict.correct is False and verdict.reward == 0.0
    assert "every test: program failed: error: SyntaxError" in verdict.reason


def test_stop_after_a_stdio_timeout() -> None:
    tests = json.dumps({"stdio": [{"input": "", "output": "x"}] * 3, "timeout_s": 0.5})
    verdict = verify("while True:\n    pass", {"tests": tests})
    assert verdict.timed_out and verdict.reward == 0.0
    assert "test 2: not run (an earlier test timed out)" in verdict.reason


@pytest.mark.parametrize(
    ("tests", "message"),
    [
        (None, "missing"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"cases": []}', "expected key"),
        ('{"asserts": []}', "non-empty list"),
        ('{"stdio": [{"input": "1"}]}', "'stdio'[0]"),
        ('{"inputs": ["1"], "outputs": []}', "non-empty list"),
        ('{"inputs": ["1"], "outputs": ["1"], "fn_name": "f"}', "not supported"),
        ('{"asserts": ["assert True"], "timeout_s": -1}', "'timeout_s'"),
    ],
)
def test_unreadable_tests_cannot_be_judged(tests: str | None, message: str) -> None:
    verdict = verify(GOOD_ADD, {"tests": tests})
    assert verdict.correct is None and verdict.reward is None
    assert message in verdict.reason and "field 'tests'" in verdict.reason
    with pytest.raises(InvalidTestsError, match=re.escape(message)):
        parse_tests(tests)


def test_no_program() -> None:
    verdict = verify("<think>I give up</think>   ", {"tests": ADD_ASSERTS})
    assert verdict.correct is False and "no program" in verdict.reason


@pytest.mark.parametrize(
    ("completion", "program"),
    [
        ("```python\nfirst\n```\ntext\n```py\nsecond\n```", "second\n"),
        ("<think>```python\nwrong\n```</think>\n```\nright\n```", "right\n"),
        ("print(1)", "print(1)"),
        ("<think>x</think>print(2)", "print(2)"),
        ("Answer:\n```python\nprint(3)\n", "print(3)\n"),  # cut off before the closing fence
    ],
)
def test_extract_program(completion: str, program: str) -> None:
    assert extract_program(completion) == program


def test_output_comparison_ignores_trailing_whitespace_only() -> None:
    assert same_output("3  \n4\n\n", "3\n4")
    assert not same_output("3 4", "3\n4")
    assert not same_output(" 3", "3")
