"""The campaign flow: create or reopen a run, then run its rounds in order, each committed before the next.

A run folder keeps the config it was created with; reopening it with a config that differs in anything
but the number of rounds is refused, so one run never mixes two setups. The number of rounds asked for
last is the run's plan, which `flywheel resume` completes. One process at a time holds a run's lock.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect import flow

from configs import ConfigError, RunConfig, dump_config, parse_config
from flows.engines import ENGINES, VERIFIER_POOLS
from flows.round import round_flow
from stages.problems import generate_arithmetic, problems_from_records, validate_problems
from stages.puzzles import generate_countdown, reasoning_gym_problems
from storage import RunLock, RunStore, StoreError, load_source_records
from verifiers import VERIFIERS

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


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
    if _comparable(stored_config(store)) != _comparable(config):
        raise StoreError(
            f"run {config.run_name!r} in {config.store} was created with a different config "
            f"({store.path('run.yaml')}); use a new run_name, or the same config"
        )
    return store


@flow(name="flywheel-campaign")
def campaign_flow(config: RunConfig) -> list[dict[str, Any]]:
    """Run (or resume) rounds HEAD+1 .. config.rounds, holding the run's lock; returns the new manifests."""
    store = open_run(config)
    manifests = []
    with RunLock(store):
        store.write_plan(config.rounds)
        head = store.repair_head()
        try:
            for round_id in range(0 if head is None else head + 1, config.rounds + 1):
                manifests.append(round_flow(config, round_id))
        finally:
            ENGINES.close()
            VERIFIER_POOLS.close()
    return manifests


def stored_config(store: RunStore) -> RunConfig:
    """The run's frozen config, with the number of rounds last planned for it."""
    config = parse_config(_yaml(store.read_run_config()), source=store.path("run.yaml"))
    planned = store.read_plan()
    return config if planned is None else config.model_copy(update={"rounds": planned})


def _comparable(config: RunConfig) -> dict[str, Any]:
    return {key: value for key, value in config.model_dump(mode="json").items() if key != "rounds"}


def _yaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)
