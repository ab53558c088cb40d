"""Code verifier: run the Python program in a completion against the problem's tests, in the sandbox.

The program is the last fenced code block of the completion (after any `</think>`), or the whole answer
when it has none. The problem's `tests` field is a JSON object in one of two styles:

    {"asserts": ["assert add(1, 2) == 3", ...], "setup": "import math", "timeout_s": 2}
        Each test is one or more `assert` statements. `verifiers.code_asserts` splits each into the calls
        that reach the program (`add(1, 2)`) and a check on their values (`_ == 3`). The program is
        executed once (as module `solution`, so an `if __name__ == "__main__":` block does not run), then
        `setup` (optional; only when a call uses its names), then each test's calls, in one sandboxed
        process; their return values come back as plain data (`verifiers.plain_data`: builtin types only,
        anything else fails the test).
        The checks are judged where the program never ran: here, or in a second, clean sandbox that runs
        only the setup and the checks. The program never sees the expected values, so no trick inside
        its process can do more than return some value. A test passes when its calls return within
        `timeout_s` and every check holds.
    {"stdio": [{"input": "1 2\\n", "output": "3\\n"}, ...], "timeout_s": 2}
        The program runs as `__main__` once per case with `input` on stdin, in a fresh sandboxed process;
        a case passes when stdout equals `output`, ignoring trailing whitespace on each line and trailing
        blank lines. `{"inputs": [...], "outputs": [...]}` (the APPS layout) means the same.

Optional keys of both: `timeout_s` (per test, default 2), `memory_mb` (default 512). Tests run in order;
after a test times out, or once `TOTAL_BUDGET_S` is spent, the rest count as failed without running,
which bounds every call. The verdict: `correct` when every test passes, `reward` = fraction passed, and
each test's outcome in `reason`. Tests that cannot be read make the verdict "cannot judge".

What it does not do: languages other than Python, call-based tests given as inputs/outputs
(APPS `fn_name`), special judges or floating-point tolerance; assert tests of other shapes (statements
that are not asserts, calls inside comprehensions, see `verifiers.code_asserts`) are "cannot judge".
Both styles compare outside the program's reach. Neither stops a program that hard-codes answers it
was shown, nor one that reads expected values from a world-readable file the sandbox lets it see.
"""

from __future__ import annotations

import inspect
import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from verifiers import plain_data
from verifiers.code_asserts import PLACEHOLDER, Check, UnjudgeableTestError, calls_use, plan_test, setup_names
from verifiers.sandbox import SandboxLimits, SandboxResult, SandboxUnavailableError, run_python
from verifiers.verdict import Verdict

NAME = "code"
VERSION = "0.2.0"

DEFAULT_TIMEOUT_S = 2.0
DEFAULT_MEMORY_MB = 512
TOTAL_BUDGET_S = 4.0  # all of one completion's tests together; fits under the default verify.timeout_s of 5 s
MAX_PROGRAM_CHARS = 100_000
MAX_REASON_CHARS = 2000

_FENCED_BLOCK = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)
_OPEN_FENCE = re.compile(r"```[^\n`]*\n")


class InvalidTestsError(ValueError):
    """A problem's `tests` field that does not follow the documented format."""


@dataclass(frozen=True)
class ParsedTests:
    style: str  # "asserts" or "stdio"
    asserts: tuple[str, ...] = ()
    setup: str = ""
    checks: tuple[tuple[Check, ...], ...] = ()  # per assert test: its calls and conditions
    calls_need_setup: bool = False  # whether the setup runs in the program's sandbox too
    cases: tuple[tuple[str, str], ...] = ()  # (stdin, expected stdout)
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB

    @property
    def size(self) -> int:
        return len(self.asserts) if self.style == "asserts" else len(self.cases)


def verify(completion: str, problem: Mapping[str, Any]) -> Verdict:
    try:
        suite = parse_tests(problem.get("tests"))
    except InvalidTestsError as error:
        return _verdict(None, None, None, f"cannot judge: field 'tests': {error}")
    program = extract_program(completion)
    if program is None:
        return _verdict(False, 0.0, None, "no program found in completion")
    if len(program) > MAX_PROGRAM_CHARS:
        return _verdict(False, 0.0, program[:200], f"program longer than {MAX_PROGRAM_CHARS} characters")
    try:
        outcomes = _run_asserts(program, suite) if suite.style == "asserts" else _run_stdio(program, suite)
    except SandboxUnavailableError as error:
        return _verdict(None, None, program, f"cannot judge: {error}")
    passed = sum(outcome == "pass" for outcome in outcomes)
    timed_out = any("timed out" in outcome for outcome in outcomes)
    if len(outcomes) > 1 and len(set(outcomes)) == 1:
        details = f"every test: {outcomes[0]}"
    else:
        details = "; ".join(f"test {index + 1}: {outcome}" for index, outcome in enumerate(outcomes))
    summary = f"{passed}/{len(outcomes)} tests passed: {details}"
    if len(summary) > MAX_REASON_CHARS:
        summary = summary[: MAX_REASON_CHARS - 3] + "..."
    return _verdict(passed == len(outcomes), passed / len(outcomes), program, summary, timed_out)


def extract_program(completion: str) -> str | None:
    """The last fenced code block after any reasoning, else the whole answer; None when empty."""
    answer = completion.rsplit("</think>", 1)[-1]
    blocks = _FENCED_BLOCK.findall(answer)
    if blocks:
        program = blocks[-1]
    else:
        openings = list(_OPEN_FENCE.finditer(answer))
        program = answer[openings[-1].end() :] if openings else answer  # a block cut off by max_tokens
    return program if program.strip() else None


def parse_tests(raw: Any) -> ParsedTests:
    """Read the `tests` JSON (string or already-decoded object); raise InvalidTestsError naming the key."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise InvalidTestsError("missing")
    try:
        spec = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as error:
        raise InvalidTestsError(f"not valid JSON ({error})") from None
    if not isinstance(spec, Mapping):
        raise InvalidTestsError(f"expected a JSON object, got {type(spec).__name__}")
    timeout_s = _positive_number(spec, "timeout_s", DEFAULT_TIMEOUT_S)
    memory_mb = int(_positive_number(spec, "memory_mb", DEFAULT_MEMORY_MB))
    if "asserts" in spec:
        asserts = _string_list(spec["asserts"], "asserts")
        setup = spec.get("setup") or ""
        if not isinstance(setup, str):
            raise InvalidTestsError("'setup' must be a string")
        try:
            clean_names = setup_names(setup)
            checks = []
            for index, test in enumerate(asserts):
                try:
                    checks.append(plan_test(test, clean_names))
                except UnjudgeableTestError as error:
                    raise InvalidTestsError(f"'asserts'[{index}]: {error}") from None
        except UnjudgeableTestError as error:
            raise InvalidTestsError(str(error)) from None
        return ParsedTests(
            "asserts",
            asserts=asserts,
            setup=setup,
            checks=tuple(checks),
            calls_need_setup=calls_use(tuple(checks), clean_names),
            timeout_s=timeout_s,
            memory_mb=memory_mb,
        )
    if "stdio" in spec:
        cases_raw = spec["stdio"]
        if not isinstance(cases_raw, Sequence) or isinstance(cases_raw, str) or not cases_raw:
            raise InvalidTestsError("'stdio' must be a non-empty list of {input, output} objects")
        cases = []
        for index, case in enumerate(cases_raw):
            if not isinstance(case, Mapping) or not isinstance(case.get("output"), str):
                raise InvalidTestsError(f"'stdio'[{index}] must be an object with string 'input' and 'output'")
            stdin = case.get("input", "")
            if not isinstance(stdin, str):
                raise InvalidTestsError(f"'stdio'[{index}].input must be a string")
            cases.append((stdin, case["output"]))
        return ParsedTests("stdio", cases=tuple(cases), timeout_s=timeout_s, memory_mb=memory_mb)
    if "inputs" in spec and "outputs" in spec:
        if spec.get("fn_name"):
            raise InvalidTestsError("call-based tests ('fn_name') are not supported; write them as 'asserts'")
        inputs, outputs = _string_list(spec["inputs"], "inputs"), _string_list(spec["outputs"], "outputs")
        if len(inputs) != len(outputs):
            raise InvalidTestsError(f"{len(inputs)} 'inputs' but {len(outputs)} 'outputs'")
        return ParsedTests(
            "stdio", cases=tuple(zip(inputs, outputs, strict=True)), timeout_s=timeout_s, memory_mb=memory_mb
        )
    raise InvalidTestsError(f"expected key 'asserts', 'stdio' or 'inputs'/'outputs'; got {', '.join(spec) or 'none'}")


def same_output(actual: str, expected: str) -> bool:
    return _normalise_output(actual) == _normalise_output(expected)


def _run_stdio(program: str, suite: ParsedTests) -> list[str]:
    outcomes: list[str] = []
    limits = SandboxLimits(wall_s=suite.timeout_s, cpu_s=suite.timeout_s, memory_mb=suite.memory_mb)
    started = time.monotonic()
    for stdin, expected in suite.cases:
        if outcomes and outcomes[-1].startswith("timed out"):
            outcomes.append("not run (an earlier test timed out)")
            continue
        if time.monotonic() - started > TOTAL_BUDGET_S:
            outcomes.append(f"not run (time budget of {TOTAL_BUDGET_S:g} s spent)")
            continue
        result = run_python(program, stdin, limits)
        if not result.success:
            outcomes.append(_failure(result))
        elif same_output(result.stdout, expected):
            outcomes.append("pass")
        else:
            outcomes.append(f"wrong output: expected {_preview(expected)}, got {_preview(result.stdout)}")
    return outcomes


# Runs in the program's sandbox: the program, the setup, then each test's calls; each call's value crosses
# as plain data. The nonce only keeps the program's own prints apart: a forged line can do no more than
# claim a return value (see `verifiers.code_asserts`), since nothing it is judged by is in this process.
_PROGRAM_HARNESS = r"""
import os as _os, signal as _signal, sys as _sys
_nonce, _timeout, _program, _setup, _tests = json.loads(_sys.stdin.readline())
class _TestTimedOut(BaseException):
    pass
def _on_alarm(signum, frame):
    raise _TestTimedOut()
def _report(index, kind, body):
    try:
        _sys.stdout.flush()
    except Exception:
        pass
    _os.write(1, ("\n" + _nonce + " " + json.dumps([index, kind, body]) + "\n").encode())
def _describe(error):
    if isinstance(error, _TestTimedOut):
        return "timed out after %g s" % _timeout
    if isinstance(error, NotPlainData):
        return "returned %s" % error
    return "error: %s: %s" % (type(error).__name__, str(error)[:200])
_signal.signal(_signal.SIGALRM, _on_alarm)
_namespace = {"__name__": "solution", "__builtins__": __builtins__}
try:
    _signal.setitimer(_signal.ITIMER_REAL, _timeout)
    exec(compile(_program, "solution.py", "exec"), _namespace)
    exec(compile(_setup, "setup.py", "exec"), _namespace)
    _signal.setitimer(_signal.ITIMER_REAL, 0)
except BaseException as _error:
    _signal.setitimer(_signal.ITIMER_REAL, 0)
    _report(-1, "error", "program failed: " + _describe(_error))
    raise SystemExit(1)
for _index, _calls in enumerate(_tests):
    try:
        _signal.setitimer(_signal.ITIMER_REAL, _timeout)
        _values = [encode(eval(compile(_call, "test_%d.py" % (_index + 1), "eval"), _namespace)) for _call in _calls]
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        _report(_index, "values", _values)
    except BaseException as _error:
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        _report(_index, "error", _describe(_error))
"""

# Runs in a second, clean sandbox where no program code ever ran: the setup, then each check on the decoded
# values. Everything here is the problem's own code and plain data.
_CHECK_HARNESS = r"""
import sys as _sys
_marker, _setup, _checks = json.loads(_sys.stdin.readline())
_base = {"__name__": "judge", "__builtins__": __builtins__}
exec(compile(_setup, "setup.py", "exec"), _base)
for _key, _condition, _values in _checks:
    try:
        _namespace = dict(_base)
        _namespace.update({"%s%d" % (_placeholder, _i): decode(_v) for _i, _v in enumerate(_values)})
        _outcome = bool(eval(compile(_condition, "check.py", "eval"), _namespace))
    except BaseException as _error:
        _outcome = "error in the check: %s: %s" % (type(_error).__name__, str(_error)[:200])
    print(_marker + " " + json.dumps([_key, _outcome]), flush=True)
"""
_PLAIN_DATA_SOURCE = inspect.getsource(plain_data)
CHECK_WALL_S = 1.0  # the clean sandbox that evaluates checks needing more than a comparison with a literal


def _run_asserts(program: str, suite: ParsedTests) -> list[str]:
    """Each test's outcome; only the calls enter the program's sandbox, the checks are judged outside it."""
    needs_check_run = any(check.local is None for test in suite.checks for check in test)
    budget_s = TOTAL_BUDGET_S - (CHECK_WALL_S if needs_check_run else 0.0)
    nonce = secrets.token_hex(16)
    wall_s = min(budget_s, suite.timeout_s * (suite.size + 1) + 1.0)
    limits = SandboxLimits(wall_s=wall_s, cpu_s=wall_s, memory_mb=suite.memory_mb)
    calls = [[call for check in test for call in check.calls] for test in suite.checks]
    setup = suite.setup if suite.calls_need_setup else ""  # setup values the calls do not need stay out
    header = json.dumps([nonce, suite.timeout_s, program, setup, calls]) + "\n"
    result = run_python(_PLAIN_DATA_SOURCE + _PROGRAM_HARNESS, header, limits)
    reports = _read_reports(result.stdout, nonce)
    if -1 in reports:
        return [str(reports[-1][1])] * suite.size
    missing = "not run: " + (_failure(result) if not result.success else "the program ended the process")
    outcomes: list[str | None] = []
    pending: list[tuple[str, str, list[str]]] = []  # (test.check key, condition, encoded values)
    shown: dict[str, str] = {}  # key: what a failed check says
    for index, test in enumerate(suite.checks):
        report = reports.get(index)
        if report is None:
            outcomes.append(missing)
            continue
        kind, body = report
        if kind != "values" or not isinstance(body, list) or len(body) != len(calls[index]):
            outcomes.append(str(body) if kind == "error" else "unreadable report")
            continue
        try:
            values = _decode_all(body)
        except plain_data.NotPlainData as error:
            outcomes.append(f"returned data that cannot be read: {error}")
            continue
        outcomes.append(None)
        position = 0
        for number, check in enumerate(test):
            own = values[position : position + len(check.calls)]
            position += len(check.calls)
            verdict = check.judge_here(own)
            if verdict is None:
                shown[f"{index}.{number}"] = _assertion_failed(check, own)
                pending.append((f"{index}.{number}", check.condition, body[position - len(check.calls) : position]))
            elif not verdict and outcomes[index] is None:
                outcomes[index] = _assertion_failed(check, own)
    failed_checks = _run_checks(suite.setup, pending, shown) if pending else {}
    for key, outcome in failed_checks.items():
        index = int(key.split(".")[0])
        if outcomes[index] is None:
            outcomes[index] = outcome
    return [outcome if outcome is not None else "pass" for outcome in outcomes]


def _read_reports(stdout: str, nonce: str) -> dict[int, tuple[str, Any]]:
    """Report lines by test index; a test reported twice counts as unreadable."""
    reports: dict[int, tuple[str, Any]] = {}
    seen_twice: set[int] = set()
    for match in re.finditer(re.escape(nonce) + r" (.+)", stdout):
        try:
            index, kind, body = json.loads(match.group(1))
        except (ValueError, TypeError, RecursionError):
            continue
        if not isinstance(index, int) or isinstance(index, bool) or not isinstance(kind, str):
            continue
        if index in reports:
            seen_twice.add(index)
        reports[index] = (kind, body)
    for index in seen_twice:
        reports[index] = ("error", "reported more than once")
    return reports


def _run_checks(setup: str, pending: list[tuple[str, str, list[str]]], shown: dict[str, str]) -> dict[str, str]:
    """Evaluate checks in a clean sandbox; the outcome of every check that did not pass, by key."""
    marker = secrets.token_hex(8)
    header = json.dumps([marker, setup, pending]) + "\n"
    limits = SandboxLimits(wall_s=CHECK_WALL_S, cpu_s=CHECK_WALL_S, memory_mb=DEFAULT_MEMORY_MB)
    source = _PLAIN_DATA_SOURCE + f"_placeholder = {PLACEHOLDER!r}\n" + _CHECK_HARNESS
    result = run_python(source, header, limits)
    outcomes: dict[str, Any] = {}
    for match in re.finditer(re.escape(marker) + r" (.+)", result.stdout):
        try:
            key, outcome = json.loads(match.group(1))
        except (ValueError, TypeError):
            continue
        outcomes[str(key)] = outcome
    failed: dict[str, str] = {}
    for key, _, _ in pending:
        outcome = outcomes.get(key)
        if outcome is True:
            continue
        if outcome is False:
            failed[key] = shown[key]
        elif outcome is None:
            failed[key] = "the check could not be evaluated: " + (
                _failure(result) if not result.success else "no result"
            )
        else:
            failed[key] = str(outcome)
    return failed


def _assertion_failed(check: Check, values: list[Any]) -> str:
    returned = ", ".join(
        f"{call} returned {_shorten(repr(value))}" for call, value in zip(check.calls, values, strict=True)
    )
    if check.local is not None:
        return f"assertion failed: {returned}"
    return f"assertion failed: {_shorten(check.source, 80)} ({returned})"


def _decode_all(encoded: list[Any]) -> list[Any]:
    """The values a program reported, each one plain data or NotPlainData."""
    if not all(isinstance(text, str) for text in encoded):
        raise plain_data.NotPlainData("a value that is not encoded text")
    return [plain_data.decode(text) for text in encoded]


def _failure(result: SandboxResult) -> str:
    if result.timed_out:
        return f"timed out ({result.error})"
    return result.error or "failed"


def _normalise_output(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()).rstrip()


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _preview(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _positive_number(spec: Mapping[str, Any], key: str, default: float) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidTestsError(f"'{key}' must be a positive number, got {value!r}")
    return float(value)


def _string_list(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise InvalidTestsError(f"'{key}' must be a non-empty list of strings")
    if not all(isinstance(item, str) for item in value):
        raise InvalidTestsError(f"'{key}' must hold only strings")
    return tuple(value)


def _verdict(
    correct: bool | None, reward: float | None, extracted: str | None, reason: str, timed_out: bool = False
) -> Verdict:
    return Verdict(correct, reward, extracted, reason, NAME, VERSION, timed_out)
