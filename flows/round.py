"""The round flow: select -> sample+verify (sharded) -> curate -> train -> evaluate -> commit.

Round 0 is the baseline: the warm-start SFT on labelled seed problems when configured, else the base
model as it is, then its evaluation. Rounds 1.. improve on their parent (the round before); in a control
run they are the ablation arm, trained on round 0's labelled data alone.

Each round shape below is a short sequence of stage functions (flows/round_stages.py) run through the journal
(flows/journal.py), which reuses what an interrupted attempt finished; sampling is journaled per shard
(flows/sampling.py). Provenance for the manifest is flows/provenance.py.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from prefect import flow, get_run_logger

from configs import RunConfig
from flows.engines import ENGINES
from flows.faults import crash_point
from flows.journal import RoundJournal, run_stage
from flows.models import base_model_ref, round_ref
from flows.provenance import round_manifest
from flows.round_stages import (
    PROMPTING_FILE,
    control_train_stage,
    curate_stage,
    evaluate_stage,
    sample_stage,
    seed_data_stage,
    select_stage,
    train_stage,
    warm_start_stage,
)
from flows.stopping import STOP_EXCEPTIONS, cancelled
from stages.problems import PROBLEMS_SCHEMA
from storage import RunStore
from storage.store import lists_file

BASELINE_STAGES = ("seed_data", "train", "evaluate")
IMPROVEMENT_STAGES = ("select", "sample", "curate", "train", "evaluate")
CONTROL_STAGES = ("train", "evaluate")


@flow(name="flywheel-round")
def round_flow(config: RunConfig, round_id: int) -> dict[str, Any]:
    """Run (or resume) and commit one round; returns its manifest. A stop signal leaves it open, Cancelled."""
    try:
        return _run_round(config, round_id)
    except STOP_EXCEPTIONS as stop:
        return cancelled(stop, f"round {round_id}")


def _run_round(config: RunConfig, round_id: int) -> dict[str, Any]:
    store = RunStore(config.store, config.run_name)
    pool = store.read_pool(PROBLEMS_SCHEMA)
    store.begin_round(round_id)
    if round_id == 0:
        journal = RoundJournal(store, round_id, BASELINE_STAGES)
        model_in, model_out = _baseline(config, store, journal, pool)
    elif config.control:
        journal = RoundJournal(store, round_id, CONTROL_STAGES)
        model_in, model_out = _control(config, store, journal, pool)
    else:
        journal = RoundJournal(store, round_id, IMPROVEMENT_STAGES)
        model_in, model_out = _improvement(config, store, journal, pool)
    return _commit(config, store, journal, model_in, model_out)


def _baseline(config: RunConfig, store: RunStore, journal: RoundJournal, pool: pa.Table) -> tuple[str, str]:
    model_in = base_model_ref(config)
    model_out = model_in if config.warm_start is None and config.model.init is None else round_ref(0)
    orchestration = config.orchestration
    run_stage(journal, "seed_data", lambda: seed_data_stage(store, config, 0, pool), orchestration)
    run_stage(journal, "train", lambda: warm_start_stage(store, config, 0), orchestration)
    run_stage(journal, "evaluate", lambda: evaluate_stage(store, config, 0, pool, model_out), orchestration)
    return model_in, model_out


def _improvement(config: RunConfig, store: RunStore, journal: RoundJournal, pool: pa.Table) -> tuple[str, str]:
    round_id, orchestration = journal.round_id, config.orchestration
    model_in, model_out = store.read_manifest(round_id - 1)["model_out"], round_ref(round_id)
    run_stage(journal, "select", lambda: select_stage(store, config, round_id, pool), orchestration)
    sampled = run_stage(journal, "sample", lambda: sample_stage(store, config, round_id, model_in), orchestration)
    run_stage(journal, "curate", lambda: curate_stage(store, config, round_id, pool, sampled.files), orchestration)
    run_stage(journal, "train", lambda: train_stage(store, config, round_id, pool, model_in), orchestration)
    run_stage(journal, "evaluate", lambda: evaluate_stage(store, config, round_id, pool, model_out), orchestration)
    return model_in, model_out


def _control(config: RunConfig, store: RunStore, journal: RoundJournal, pool: pa.Table) -> tuple[str, str]:
    """The ablation arm: the same training steps, on round 0's labelled data alone; nothing is sampled."""
    round_id, orchestration = journal.round_id, config.orchestration
    model_in, model_out = store.read_manifest(round_id - 1)["model_out"], round_ref(round_id)
    run_stage(journal, "train", lambda: control_train_stage(store, config, round_id, model_in), orchestration)
    run_stage(journal, "evaluate", lambda: evaluate_stage(store, config, round_id, pool, model_out), orchestration)
    return model_in, model_out


def _commit(config: RunConfig, store: RunStore, journal: RoundJournal, model_in: str, model_out: str) -> dict[str, Any]:
    """Write the round's report, commit its manifest, publish its summary; returns the committed manifest."""
    # Imported here: matplotlib is only needed once per round, at commit time.
    from flows.report import publish_round_artifact, write_round_report

    round_id = journal.round_id
    files, metrics = journal.files(), journal.metrics()
    manifest = round_manifest(config, round_id, model_in, model_out, metrics, journal.seconds())
    # an evaluation journaled before prompting was recorded, resumed now, has no prompting.json
    manifest["prompting"] = store.read_json(round_id, PROMPTING_FILE) if lists_file(files, PROMPTING_FILE) else None
    manifest["sampling"] = ENGINES.sampling_record(config.engine)
    files.append(write_round_report(store, round_id, manifest, files))  # listed and hashed like every file
    crash_point("commit", round_id)
    store.commit(round_id, manifest, files)
    get_run_logger().info("round %d committed: %s", round_id, _format_metrics(metrics))
    committed = store.read_manifest(round_id)
    publish_round_artifact(config.run_name, committed)
    return committed


def _format_metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{name}={value:.4g}" for name, value in metrics.items())
