"""Write the config reference, `configs/REFERENCE.md`, from the pydantic schema: `python scripts/config_reference.py`.

One section per model of `configs/schema.py` reachable from `RunConfig`, in the order a config file nests them,
each with the model's docstring and a table of its fields: type, default, constraints and description.
`--check` writes nothing and exits 1 when the committed file differs from what the schema gives;
tests/configs/test_schema.py fails in that case too, so the reference cannot drift from the schema.
"""

from __future__ import annotations

import inspect
import json
import sys
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "configs" / "REFERENCE.md"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pydantic import BaseModel  # noqa: E402
from pydantic.fields import FieldInfo  # noqa: E402
from pydantic_core import PydanticUndefined  # noqa: E402

from configs import RunConfig  # noqa: E402

CONSTRAINTS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "min_length": "min length", "pattern": "matches"}


def render_reference() -> str:
    sections = _sections(RunConfig)
    lines = [
        "# Config reference",
        "",
        "Generated from `configs/schema.py` by `python scripts/config_reference.py`; do not edit by hand.",
        "A config file holds only what differs from these defaults; an unknown key is an error.",
        "",
    ]
    for model, paths in sections.items():
        lines += _section(model, paths)
    return "\n".join(lines)


def _sections(root: type[BaseModel]) -> dict[type[BaseModel], list[str]]:
    """Every model reachable from `root`, depth first in field order, with the dotted paths it appears at."""
    found: dict[type[BaseModel], list[str]] = {}

    def visit(model: type[BaseModel], path: str) -> None:
        found.setdefault(model, []).append(path)
        for name, field in model.model_fields.items():
            for nested in _models_in(field.annotation):
                visit(nested, f"{path}.{name}" if path else name)

    visit(root, "")
    return found


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for argument in get_args(annotation) for model in _models_in(argument)]


def _section(model: type[BaseModel], paths: list[str]) -> list[str]:
    where = ", ".join(f"`{path}`" for path in paths) if paths != [""] else "the top level of a config file"
    lines = [f"## {model.__name__}", "", f"At {where}.", ""]
    lines += [inspect.cleandoc(model.__doc__ or ""), ""]
    lines += ["| field | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        lines.append(f"| `{name}` | {_type(field.annotation)} | {_default(field)} | {_cell(_described(field))} |")
    lines.append("")
    return lines


def _type(annotation: Any) -> str:
    return _cell(_type_name(annotation))


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    arguments = get_args(annotation)
    if annotation is type(None):
        return "null"
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    if origin is Literal:
        return " \\| ".join(f"`{json.dumps(value)}`" for value in arguments)
    if origin in (Union, types.UnionType):
        return " \\| ".join(_type_name(argument) for argument in arguments)
    if origin is list:
        return f"list of {_type_name(arguments[0])}"
    if origin is dict:
        return f"map {_type_name(arguments[0])} -> {_type_name(arguments[1])}"
    if annotation is Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    default = field.get_default(call_default_factory=True)
    if isinstance(default, BaseModel):
        return "see its section"
    return _cell(f"`{json.dumps(default)}`")


def _described(field: FieldInfo) -> str:
    constraints = [
        f"matches `{value}`" if name == "pattern" else f"{CONSTRAINTS[name]} {value}"
        for item in field.metadata
        for name in CONSTRAINTS
        if (value := getattr(item, name, None)) is not None
    ]
    text = field.description or ""
    return f"{text} ({', '.join(constraints)})" if constraints else text


def _cell(text: str) -> str:
    """Markdown table cell: one line, pipes escaped (already escaped ones kept)."""
    return text.replace("\n", " ").replace("\\|", "\0").replace("|", "\\|").replace("\0", "\\|")


def main(argv: list[str]) -> int:
    text = render_reference()
    if argv == ["--check"]:
        if not REFERENCE.exists() or REFERENCE.read_text() != text:
            print(f"{REFERENCE.relative_to(REPO)} is out of date: run python scripts/config_reference.py")
            return 1
        return 0
    if argv:
        print("usage: python scripts/config_reference.py [--check]", file=sys.stderr)
        return 2
    REFERENCE.write_text(text)
    print(f"wrote {REFERENCE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
