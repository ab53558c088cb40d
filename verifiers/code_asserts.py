"""Assert tests split so that a program under test never sees, and cannot touch, what its results are judged by.

An assert test such as `assert sorted(f([3, 1])) == [1, 3]` is split here, with `ast`, into
- its *calls*: the maximal sub-expressions that reach the program, i.e. that use a free name which is
  neither a builtin nor bound by the problem's `setup` (`f([3, 1])`). Only these run in the program's
  sandbox, and their results come back as plain data (`verifiers.plain_data`);
- its *check*: the condition with each call replaced by a placeholder name
  (`sorted(_flywheel_value_0) == [1, 3]`), evaluated where the program never ran: in this process when it
  is a comparison with a literal (`==`, `!=`) or a truth test, else in a second, clean sandbox that runs
  only the setup and the check on the decoded values.

Why that cannot be gamed: the program's process receives the calls and nothing of the checks, so nothing
it does in there (patching builtins, reading the harness's frames, forging report lines, exiting early)
can do more than claim some return value for a call, which it could have returned honestly; a return
value is data of builtin types only, so it has no `__eq__`, `__bool__` or other behaviour of its own.
Names of builtins and of the setup always mean the real ones (a program that redefines `abs` does not
change the `abs` of a check).

The setup runs in the program's sandbox only when a call uses one of its names (`f(DATA)`); a setup
that also defines expected values (`assert f(DATA) == EXPECTED`) then shows them to the program, so keep
expected values in the assert itself.

Tests this does not judge (`UnjudgeableTestError`, so the problem is "cannot judge"): text that is not
only `assert` statements, a call that uses a name bound inside the test (a comprehension variable or
lambda argument: `all(f(x) for x in ...)`; write one assert per call), and a setup with `import *`
(its names cannot be known without running it).
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PLACEHOLDER = "_flywheel_value_"
_BUILTIN_NAMES = frozenset(dir(builtins))
_LOCAL_COMPARISONS = {ast.Eq: "==", ast.NotEq: "!="}


class UnjudgeableTestError(ValueError):
    """A test that cannot be split into calls and a check."""


@dataclass(frozen=True)
class Check:
    """One assert: the program calls it needs, and the condition on their values."""

    source: str  # the assert's condition as written
    calls: tuple[str, ...]
    condition: str  # source, with the calls' values as PLACEHOLDER + index
    local: tuple[str, Any] | None  # ("truthy"|"falsy", None) or ("=="|"!=", literal): judged in this process

    def judge_here(self, values: Sequence[Any]) -> bool | None:
        """The verdict when it needs no sandbox (values are plain data), else None."""
        if self.local is None:
            return None
        kind, literal = self.local
        value = values[0]
        if kind == "truthy":
            return bool(value)
        if kind == "falsy":
            return not value
        return (value == literal) if kind == "==" else (value != literal)


def setup_names(setup: str) -> frozenset[str]:
    """Names the setup binds at module level; raises UnjudgeableTestError for `import *` or bad syntax."""
    try:
        tree = ast.parse(setup, "setup.py")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise UnjudgeableTestError(f"'setup' is not valid Python ({type(error).__name__})") from None
    names: set[str] = set()
    for node in _module_scope(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    raise UnjudgeableTestError("'setup' uses `import *`; import the names it needs")
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Global):
            names.update(node.names)
    return frozenset(names)


def plan_test(source: str, clean_names: frozenset[str]) -> tuple[Check, ...]:
    """The checks of one test (one or more assert statements); `clean_names`: the setup's names."""
    try:
        tree = ast.parse(source, "test.py")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise UnjudgeableTestError(f"not valid Python ({type(error).__name__})") from None
    if not tree.body or not all(isinstance(statement, ast.Assert) for statement in tree.body):
        raise UnjudgeableTestError("not a sequence of `assert` statements")
    return tuple(_plan_assert(statement.test, clean_names | _BUILTIN_NAMES) for statement in tree.body)


def calls_use(checks: tuple[tuple[Check, ...], ...], names: frozenset[str]) -> bool:
    """Whether any call of these checks uses one of `names` (then the program's sandbox needs the setup)."""
    for test in checks:
        for check in test:
            for call in check.calls:
                if any(isinstance(node, ast.Name) and node.id in names for node in ast.walk(ast.parse(call))):
                    return True
    return False


def _plan_assert(condition: ast.expr, clean_names: frozenset[str]) -> Check:
    source = ast.unparse(condition)
    local_names = _names_bound_inside(condition)
    calls: list[str] = []

    def split(node: ast.AST) -> ast.AST:
        if (
            isinstance(node, ast.expr)
            and _reaches_program(node, clean_names, local_names)
            and _is_call_site(node, clean_names)
        ):
            used = {name.id for name in ast.walk(node) if isinstance(name, ast.Name)}
            if used & local_names:
                raise UnjudgeableTestError(
                    f"the call {ast.unparse(node)[:80]!r} uses a name bound inside the test; write one assert per call"
                )
            calls.append(ast.unparse(node))
            return ast.copy_location(ast.Name(PLACEHOLDER + str(len(calls) - 1), ast.Load()), node)
        for field, value in ast.iter_fields(node):
            if isinstance(value, list):
                setattr(node, field, [split(item) if isinstance(item, ast.AST) else item for item in value])
            elif isinstance(value, ast.AST):
                setattr(node, field, split(value))
        return node

    rewritten = split(condition)
    assert isinstance(rewritten, ast.expr)
    return Check(source, tuple(calls), ast.unparse(rewritten), _local_form(rewritten))


def _reaches_program(node: ast.AST, clean_names: frozenset[str], local_names: set[str]) -> bool:
    return any(
        isinstance(name, ast.Name) and name.id not in clean_names and name.id not in local_names
        for name in ast.walk(node)
    )


def _is_call_site(node: ast.expr, clean_names: frozenset[str]) -> bool:
    """Where a program's value enters the check: a call of something the program defines, or its name."""
    if isinstance(node, ast.Name):
        return True
    if isinstance(node, ast.Call):
        function = node.func
        while isinstance(function, ast.Attribute | ast.Subscript):
            function = function.value
        # `f(x)`, `Solution().solve(x)`, `f(x).count(1)`; not `sorted(f(x))` or `math.isclose(f(x), 1)`
        return not (isinstance(function, ast.Name) and function.id in clean_names)
    return False


def _names_bound_inside(condition: ast.expr) -> set[str]:
    bound: set[str] = set()
    for node in ast.walk(condition):
        if isinstance(node, ast.comprehension):
            bound |= {name.id for name in ast.walk(node.target) if isinstance(name, ast.Name)}
        elif isinstance(node, ast.Lambda):
            arguments = node.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            every += [argument for argument in (arguments.vararg, arguments.kwarg) if argument is not None]
            bound |= {argument.arg for argument in every}
        elif isinstance(node, ast.NamedExpr):
            bound.add(node.target.id)
    return bound


def _local_form(condition: ast.expr) -> tuple[str, Any] | None:
    first = PLACEHOLDER + "0"
    if isinstance(condition, ast.Name) and condition.id == first:
        return ("truthy", None)
    if isinstance(condition, ast.UnaryOp) and isinstance(condition.op, ast.Not):
        operand = condition.operand
        if isinstance(operand, ast.Name) and operand.id == first:
            return ("falsy", None)
    if isinstance(condition, ast.Compare) and len(condition.ops) == 1:
        operator = _LOCAL_COMPARISONS.get(type(condition.ops[0]))
        left, right = condition.left, condition.comparators[0]
        if operator is not None:
            for value_side, literal_side in ((left, right), (right, left)):
                if isinstance(value_side, ast.Name) and value_side.id == first:
                    try:
                        return (operator, ast.literal_eval(literal_side))
                    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                        return None
    return None


def _module_scope(tree: ast.Module) -> list[ast.AST]:
    """Nodes of the module's own scope: not inside functions, classes, lambdas or comprehensions."""
    found: list[ast.AST] = []
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        found.append(node)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.extend(node.decorator_list)
            continue
        if isinstance(node, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            continue
        pending.extend(ast.iter_child_nodes(node))
    return found
