"""Opening a run, before any round work starts: check a config against what is installed and on disk, create
the run or check that the stored one has the same config and intact committed data, check the plan, and read
the early-stop rule's verdict from the committed rounds (see flows/campaign.py for what these mean).

It imports neither Prefect nor torch, vLLM or transformers: a command given a bad config or a damaged store
fails before the round's heavy modules load.
"""

from __future__ import annotations

import importlib.util
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from configs import (
    RUNTIME_FIELDS,
    ConfigError,
    EarlyStopConfig,
    EngineConfig,
    RunConfig,
    TaskRunnerConfig,
    config_differences,
    dump_config,
    parse_config,
)
from stages.problems import generate_arithmetic, problems_from_records, validate_problems
from stages.puzzles import generate_countdown, reasoning_gym_problems
from storage import RunStore, StoreError, load_source_records
from verifiers import VERIFIERS

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
RUNNER_PACKAGES = {"dask": ("prefect_dask", "dask"), "ray": ("prefect_ray", "ray")}


def check_config(config: RunConfig, source: str = "<config>") -> None:
    """Checks that need more than the schema: the model exists, the verifier is known."""
    errors = []
    path = config.model.path
    if path is not None:
        folder = Path(path).expanduser()
        if folder.exists():
            if not (folder / "config.json").is_file():
                errors.append(f"model.path: {path} has no config.json; not a Hugging Face model folder")
        elif not HUB_ID.match(path):
            errors.append(f"model.path: {path} does not exist (and is not a hub id like org/name)")
    dataset = config.problems.dataset
    if config.problems.source == "dataset" and dataset is not None and dataset.domain not in VERIFIERS:
        errors.append(
            f"problems.dataset.domain: unknown verifier {dataset.domain!r}; known: {', '.join(sorted(VERIFIERS))}"
        )
    for missing in (missing_runner_package(config.orchestration.task_runner), missing_ray_package(config.engine)):
        if missing is not None:
            errors.append(missing)
    if errors:
        raise ConfigError(source, errors)


def build_pool(config: RunConfig) -> pa.Table:
    if config.problems.source == "arithmetic":
        pool = generate_arithmetic(config.problems.arithmetic, config.seed)
        source = "problems.arithmetic"
    elif config.problems.source == "countdown":
        pool = generate_countdown(config.problems.countdown, config.seed)
        source = "problems.countdown"
    elif config.problems.source == "reasoning_gym":
        assert config.problems.reasoning_gym is not None
        pool = reasoning_gym_problems(config.problems.reasoning_gym, config.seed)
        source = "problems.reasoning_gym"
    else:
        assert config.problems.dataset is not None
        pool = problems_from_records(load_source_records(config.problems.dataset), config.problems.dataset)
        source = f"problems.dataset ({config.problems.dataset.path})"
    validate_problems(pool, list(VERIFIERS), source)
    return pool


def open_run(config: RunConfig) -> RunStore:
    """Create the run (pool + frozen config) or check that an existing one has the same config."""
    store = RunStore(config.store, config.run_name)
    if not store.exists():
        store.create(dump_config(config), build_pool(config))
        return store
    store.verify_dependencies()  # damaged committed data fails here, before a round starts work
    differences = config_differences(stored_config(store), config)
    if differences:
        listed = "\n".join(f"  {line}" for line in differences)
        raise StoreError(
            f"run {config.run_name!r} in {config.store} was created with a different config "
            f"({store.path('run.yaml')}); these fields differ (created with -> now):\n{listed}\n"
            f"Use a new run_name, or the run's config. These may change between rounds: {', '.join(RUNTIME_FIELDS)}"
        )
    return store


def check_plan(store: RunStore, config: RunConfig) -> None:
    """Refuse a plan that ends before the newest committed round: rounds are only ever added."""
    head = store.head()
    if head is not None and config.rounds < head:
        raise ConfigError(
            "--rounds",
            [
                f"run {config.run_name!r} has committed rounds 0..{head}, so --rounds {config.rounds} would plan "
                f"fewer rounds than it has; ask for {head} or more, or go back with "
                f"`flywheel rollback {config.run_name} --to {config.rounds}`"
            ],
        )


def early_stop(store: RunStore, config: RunConfig) -> dict[str, Any] | None:
    """The stop record when the committed rounds have plateaued under `orchestration.early_stop`; else None."""
    rule = config.orchestration.early_stop
    if rule is None:
        return None
    history = []
    for round_id in store.committed_rounds():
        metrics = store.read_manifest(round_id)["metrics"]
        if rule.metric not in metrics:
            raise ConfigError(
                "orchestration.early_stop.metric",
                [f"round {round_id} has no metric {rule.metric!r}; it has: {', '.join(sorted(metrics))}"],
            )
        history.append((round_id, float(metrics[rule.metric])))
    return plateau(history, rule)


def plateau(history: list[tuple[int, float]], rule: EarlyStopConfig) -> dict[str, Any] | None:
    """Given (round, metric) in round order: the stop record if the last `patience` rounds did not improve."""
    if not history:
        return None
    best_round, best = history[0]
    stale: list[int] = []
    for round_id, value in history[1:]:
        improved = value > best + rule.min_delta if rule.mode == "max" else value < best - rule.min_delta
        if improved:
            best_round, best, stale = round_id, value, []
        else:
            stale.append(round_id)
    if len(stale) < rule.patience:
        return None
    last_round, last = history[-1]
    return {
        "round": last_round,
        "metric": rule.metric,
        "value": last,
        "best_round": best_round,
        "best": best,
        "rounds_without_improvement": stale,
        "rule": rule.model_dump(mode="json"),
        "reason": f"{rule.metric} has not improved by more than {rule.min_delta:g} on round {best_round}'s "
        f"{best:.4g} for {len(stale)} round(s) ({', '.join(map(str, stale))}; patience {rule.patience})",
        "stopped_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def stored_config(store: RunStore) -> RunConfig:
    """The run's frozen config, with the number of rounds last planned for it, in the store it is now in:
    `run.yaml` keeps the store the run was created in only as history, so a moved or copied run folder
    continues where it is."""
    source = store.path("run.yaml")
    config = parse_config(_yaml(store.read_run_config(), source), source=source)
    planned = store.read_plan()
    update: dict[str, Any] = {"store": store.url}
    if planned is not None:
        update["rounds"] = planned
    return config.model_copy(update=update)


def _yaml(text: str, source: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(source, [f"not valid YAML: {error}"]) from error


def missing_ray_package(engine: EngineConfig) -> str | None:
    """The config error when `engine.backend` is ray and Ray is not installed; None otherwise."""
    if engine.backend == "ray" and importlib.util.find_spec("ray") is None:
        return (
            "engine.backend: 'ray' needs the ray package, which is not installed; install it with: "
            "pip install 'flywheel[ray]'"
        )
    return None


def missing_runner_package(config: TaskRunnerConfig) -> str | None:
    """The config error when `config.kind` needs a package that is not installed; None when all is there."""
    if config.kind not in RUNNER_PACKAGES:
        return None
    module, extra = RUNNER_PACKAGES[config.kind]
    if importlib.util.find_spec(module) is None:
        return (
            f"orchestration.task_runner.kind: {config.kind!r} needs the {module.replace('_', '-')} package, "
            f"which is not installed; install it with: pip install 'flywheel[{extra}]'"
        )
    return None
