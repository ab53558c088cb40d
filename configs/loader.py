"""Load a `RunConfig` from YAML and report every problem at once, each with its field path."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from configs.schema import RunConfig


class ConfigError(ValueError):
    """A config that cannot be used; `errors` holds one line per problem."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  - {error}" for error in errors)
        super().__init__(f"invalid config {source} ({len(errors)} error(s)):\n{lines}")


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a YAML file into a `RunConfig`; `overrides` are dotted keys, e.g. {"rounds": 1}."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), [f"file not found: {path}"])
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(str(path), [f"not valid YAML: {error}"]) from error
    return parse_config(data, source=str(path), overrides=overrides)


def parse_config(data: Any, source: str = "<config>", overrides: dict[str, Any] | None = None) -> RunConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"top level must be a mapping of fields, got {type(data).__name__}"])
    for dotted_key, value in (overrides or {}).items():
        _set_dotted(data, dotted_key, value)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(source, [_describe(item) for item in error.errors()]) from None


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


# Fields that say how rounds run, not what they compute: where the run is stored, how many rounds are planned,
# orchestration (retries, runners, early stop), the inference engine's sizes, the verifier pool's size, the
# training launcher. A run may be continued with other values; every other field is fixed when it is created.
# Each round's manifest records the whole config it ran with.
RUNTIME_FIELDS = ("store", "rounds", "orchestration", "engine", "verify.workers", "train.launcher")


def is_runtime_field(path: str) -> bool:
    return any(path == field or path.startswith(f"{field}.") for field in RUNTIME_FIELDS)


def flatten_config(config: RunConfig) -> dict[str, Any]:
    """Every leaf of the config by its dotted path, e.g. {"sample.k": 4, ...}."""
    flat: dict[str, Any] = {}

    def visit(node: Any, path: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                visit(value, f"{path}.{key}" if path else str(key))
        else:
            flat[path] = node

    visit(config.model_dump(mode="json"), "")
    return flat


def config_differences(created: RunConfig, now: RunConfig) -> list[str]:
    """`path: old -> new` for every field that differs and is not a runtime field."""
    before, after = flatten_config(created), flatten_config(now)
    paths = sorted(path for path in before.keys() | after.keys() if not is_runtime_field(path))
    missing = "(not set)"
    return [
        f"{path}: {json.dumps(before.get(path, missing))} -> {json.dumps(after.get(path, missing))}"
        for path in paths
        if before.get(path, missing) != after.get(path, missing)
    ]


def config_hash(config: RunConfig) -> str:
    """sha256 of what the config computes: every field but the runtime ones, so all rounds of a run share it."""
    computed = {path: value for path, value in flatten_config(config).items() if not is_runtime_field(path)}
    canonical = json.dumps(computed, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _set_dotted(data: dict[str, Any], dotted_key: str, value: Any) -> None:
    *parents, leaf = dotted_key.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def _describe(error: dict[str, Any]) -> str:
    location = [part for part in error["loc"] if not isinstance(part, str) or not part.startswith("function-")]
    path = ".".join(str(part) for part in location) or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        allowed = _allowed_fields(location[:-1])
        if allowed:
            message += f"; allowed fields here: {', '.join(allowed)}"
    elif error["type"] == "missing":
        return f"{path}: required field is missing"
    return f"{path}: {message} (got {error['input']!r})"


def _allowed_fields(location: list[Any]) -> list[str]:
    """Field names of the model at `location`, for the hint under an unknown key."""
    model: type[BaseModel] = RunConfig
    for part in location:
        if not isinstance(part, str) or part not in model.model_fields:
            return []
        annotation = model.model_fields[part].annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return sorted(model.model_fields)
