"""Code verifier: run the Python program in a completion against the problem's tests, in the sandbox.

The program is the last fenced code block of the completion (after any `</think>`), or the whole answer
when it has none. The problem's `tests` field is a JSON object in one of two styles:

    {"asserts": ["assert add(1, 2) == 3", ...], "setup": "import math", "timeout_s": 2}
        The program is executed once (as module `solution`, so an `if __name__ == "__main__":` block does
        not run), then `setup` (optional), then each assert statement; a test passes when it raises
        nothing within `timeout_s`. All run in one sandboxed process.
    {"stdio": [{"input": "1 2\\n", "output": "3\\n"}, ...], "timeout_s": 2}
        The program runs as `__main__` once per case with `input` on stdin, in a fresh sandboxed process;
        a case passes when stdout equals `output`, ignoring trailing whitespace on each line and trailing
        blank lines. `{"inputs": [...], "outputs": [...]}` (the APPS layout) means the same.

Optional keys of both: `timeout_s` (per test, default 2), `memory_mb` (default 512). Tests run in order;
after a test times out, or once `TOTAL_BUDGET_S` is spent, the rest count as failed without running,
which bounds every call. The verdict: `correct` when every test passes, `reward` = fraction passed, and
each test's outcome in `reason`. Tests that cannot be read make the verdict "cannot judge".

What it does not do: languages other than Python, call-based tests given as inputs/outputs
(APPS `fn_name`), special judges or floating-point tolerance. Assert tests run in the program's own
process, so a program that inspects the harness's memory could forge their results; stdio outputs are
compared here, out of the program's reach.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from verifiers.sandbox import SandboxLimits, SandboxResult, SandboxUnavailableError, run_python
from verifiers.verdict import Verdict

NAME = "code"
VERSION = "0.1.0"

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
        return ParsedTests("asserts", asserts=asserts, setup=setup, timeout_s=timeout_s, memory_mb=memory_mb)
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


# The assert harness: markers carry a per-run nonce so that text the program prints cannot pass for them.
_HARNESS = r"""
import json as _json, os as _os, signal as _signal, sys as _sys
_nonce, _timeout, _program, _setup, _tests = _json.loads(_sys.stdin.readline())
class _TestTimedOut(BaseException):
    pass
def _on_alarm(signum, frame):
    raise _TestTimedOut()
def _report(index, outcome):
    try:
        _sys.stdout.flush()
    except Exception:
        pass
    _os.write(1, ("\n" + _nonce + " " + _json.dumps([index, outcome]) + "\n").encode())
def _describe(error):
    if isinstance(error, _TestTimedOut):
        return "timed out after %g s" % _timeout
    if isinstance(error, AssertionError):
        return "assertion failed" + (": " + str(error)[:200] if str(error) else "")
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
    _report(-1, "program failed: " + _describe(_error))
    raise SystemExit(1)
for _index, _test in enumerate(_tests):
    try:
        _signal.setitimer(_signal.ITIMER_REAL, _timeout)
        exec(compile(_test, "test_%d.py" % (_index + 1), "exec"), _namespace)
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        _report(_index, "pass")
    except BaseException as _error:
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        _report(_index, _describe(_error))
"""


def _run_asserts(program: str, suite: ParsedTests) -> list[str]:
    nonce = secrets.token_hex(16)
    wall_s = min(TOTAL_BUDGET_S, suite.timeout_s * (suite.size + 1) + 1.0)
    limits = SandboxLimits(wall_s=wall_s, cpu_s=wall_s, memory_mb=suite.memory_mb)
    header = json.dumps([nonce, suite.timeout_s, program, suite.setup, list(suite.asserts)]) + "\n"
    result = run_python(_HARNESS, header, limits)
    reported: dict[int, str] = {}
    for match in re.finditer(re.escape(nonce) + r" (.+)", result.stdout):
        try:
            index, outcome = json.loads(match.group(1))
        except (json.JSONDecodeError, ValueError, TypeError):
            continue
        if isinstance(index, int) and isinstance(outcome, str):
            reported.setdefault(index, outcome)
    if -1 in reported:
        return [reported[-1]] * suite.size
    missing = "not run: " + (_failure(result) if not result.success else "the program ended the process")
    return [reported.get(index, missing) for index in range(suite.size)]


def _failure(result: SandboxResult) -> str:
    if result.timed_out:
        return f"timed out ({result.error})"
    return result.error or "failed"


def _normalise_output(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()).rstrip()


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
