"""The stages of a round, one function each: read the stage's inputs from the store, call the pure stage code
(stages/), write its outputs, and return them as a `StageOutput`.

Each takes `(store, config, round_id, ...)` plus what the stage reads that is not a file of its own round (the
run's problem pool, the model reference it samples or trains from, the part files `sample` wrote). None of
them knows about Prefect, journaling or retries: flows/round.py runs them through `run_stage`, and a test
can call them directly.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from configs import RunConfig
from flows.engines import ENGINES
from flows.journal import StageOutput
from flows.logs import run_logger
from flows.models import base_model_ref, model_folder, model_for_training
from flows.sampling import sample_shards, sample_traces, verify
from flows.training import train_phases
from stages.curate import DATASET_SCHEMA, DIFFICULTY_SCHEMA, curate, difficulty_table, labelled_dataset
from stages.decontaminate import eval_texts_from_problems
from stages.dedup import SIGNATURES_SCHEMA
from stages.dynamic_sampling import candidate_order, top_up
from stages.evaluate import evaluate_traces
from stages.problems import PROBLEMS_SCHEMA, split_of
from stages.puzzles import answer_instructions
from stages.report import curation_report, report_metrics
from stages.sample import prompting_record
from stages.select import eligible_problems, select_problems
from stages.train import grpo_problems_of
from stages.verify import VERIFIED_TRACES_SCHEMA
from storage import FileRecord, RunStore

CURATED_TABLES = ("dataset", "dropped", "difficulty", "signatures")
PROMPTING_FILE = "prompting.json"


def seed_data_stage(store: RunStore, config: RunConfig, round_id: int, pool: pa.Table) -> StageOutput:
    """Round 0 with a warm start: the seed split as `problems`, their labelled solutions as `dataset`."""
    if config.warm_start is None:
        return StageOutput()
    seed_problems = split_of(pool, "seed")
    dataset = labelled_dataset(seed_problems, round_id)
    files = [store.write_table(round_id, "problems", seed_problems), store.write_table(round_id, "dataset", dataset)]
    return StageOutput(files, {"kept": float(dataset.num_rows)})


def warm_start_stage(store: RunStore, config: RunConfig, round_id: int) -> StageOutput:
    """Round 0's model: the base model trained by SFT on `dataset` with `warm_start`; without a warm start, a
    model built in memory is stored as it is, and a hub/local base model is not copied (it is evaluated as it is)."""
    model_ref = base_model_ref(config)
    if config.warm_start is None:
        if config.model.init is None:
            return StageOutput()
        return StageOutput(store.save_model(round_id, *model_for_training(store, config, model_ref).loaded()))
    dataset = store.read_table(round_id, "dataset", DATASET_SCHEMA)
    model = model_for_training(store, config, model_ref)
    return train_phases(config.warm_start, ("sft",), config, store, round_id, model, sft_data=dataset)


def select_stage(store: RunStore, config: RunConfig, round_id: int, pool: pa.Table) -> StageOutput:
    """The round's `problems`, picked from the pool's train split with the earlier rounds' difficulty."""
    history = _concat(store.ancestor_tables("difficulty", range(1, round_id), DIFFICULTY_SCHEMA))
    problems = select_problems(pool, config.select, config.seed, round_id, history=history)
    return StageOutput([store.write_table(round_id, "problems", problems)], {"problems": float(problems.num_rows)})


def sample_stage(store: RunStore, config: RunConfig, round_id: int, model_ref: str) -> StageOutput:
    """Verified traces of the round's `problems` from `model_ref`, as `traces/part-*.parquet` (flows/sampling.py)."""
    problems = store.read_table(round_id, "problems", PROBLEMS_SCHEMA)
    return sample_shards(config, store, problems, model_ref, round_id)


def curate_stage(
    store: RunStore, config: RunConfig, round_id: int, pool: pa.Table, parts: list[FileRecord]
) -> StageOutput:
    """The traces of `parts` curated into `dataset`, `dropped`, `difficulty` and `signatures`."""
    traces = pa.concat_tables([store.read_part(round_id, part, VERIFIED_TRACES_SCHEMA) for part in parts])
    curated = curate(
        traces,
        config.curate,
        round_id,
        previous_signatures=_concat(store.ancestor_tables("signatures", range(1, round_id), SIGNATURES_SCHEMA)),
        eval_texts=eval_texts_from_problems(split_of(pool, "test")),
        template_texts=eval_texts_from_problems(pool),
    )
    history = _concat(store.ancestor_tables("difficulty", range(1, round_id), DIFFICULTY_SCHEMA))
    files = [store.write_table(round_id, name, getattr(curated, name)) for name in CURATED_TABLES]
    judged = [c for c in traces.column("correct").to_pylist() if c is not None]
    return StageOutput(
        files,
        {
            "traces": float(traces.num_rows),
            "sample_tokens": float(pc.sum(traces.column("completion_tokens")).as_py() or 0),
            "sample_pass_rate": sum(judged) / len(judged) if judged else 0.0,
            **report_metrics(curation_report(curated, history)),
        },
    )


def train_stage(store: RunStore, config: RunConfig, round_id: int, pool: pa.Table, model_ref: str) -> StageOutput:
    """The round's model: `model_ref` trained by the phases `train` configures for the round (SFT on the kept
    traces, with the carried-over datasets; GRPO on the round's informative problems, topped up from `pool` by
    dynamic sampling when configured)."""
    phases = config.train.phases_for(round_id)
    sft_data = grpo_problems = None
    if "sft" in phases:
        sft_data = pa.concat_tables(
            [*_carried_over_datasets(store, config, round_id), store.read_table(round_id, "dataset", DATASET_SCHEMA)]
        )
    if "grpo" in phases:
        grpo_problems = grpo_problems_of(
            store.read_table(round_id, "problems", PROBLEMS_SCHEMA),
            store.read_table(round_id, "difficulty", DIFFICULTY_SCHEMA),
            config.train.grpo.problems,
        )
    extra = StageOutput()  # the problems dynamic sampling drew, when it did
    if grpo_problems is not None and config.train.grpo.dynamic_sampling.enabled:
        grpo_problems, extra = _top_up_grpo_problems(store, config, round_id, pool, model_ref, grpo_problems)
    model = model_for_training(store, config, model_ref)
    trained = train_phases(
        config.train, phases, config, store, round_id, model, sft_data=sft_data, grpo_problems=grpo_problems
    )
    return StageOutput(extra.files + trained.files, extra.metrics | trained.metrics)


def _top_up_grpo_problems(
    store: RunStore, config: RunConfig, round_id: int, pool: pa.Table, model_ref: str, informative: pa.Table
) -> tuple[pa.Table, StageOutput]:
    """DAPO-style dynamic sampling (stages/dynamic_sampling.py): with fewer informative problems than GRPO needs,
    sample and verify more eligible train problems the round did not select, with the round's own model and
    sampling settings, and add the informative ones. Writes `grpo_extra_problems` (each problem drawn, its pass
    rate); the metrics say how many were needed, drawn and informative."""
    selected = store.read_table(round_id, "problems", PROBLEMS_SCHEMA).column("problem_id")
    history = _concat(store.ancestor_tables("difficulty", range(1, round_id), DIFFICULTY_SCHEMA))
    eligible = eligible_problems(pool, config.select, round_id, history)
    unselected = eligible.filter(pc.invert(pc.is_in(eligible.column("problem_id"), value_set=selected)))

    def judge(problems: pa.Table) -> dict[str, float | None]:
        traces = sample_traces(config, store, model_ref, problems, round_id, "sample")
        difficulty = difficulty_table(verify(config, store, traces, problems), config.curate, round_id)
        return dict(zip(difficulty["problem_id"].to_pylist(), difficulty["pass_rate"].to_pylist(), strict=True))

    result = top_up(informative, candidate_order(unselected, config.seed, round_id), config.train.grpo, judge)
    metrics = result.metrics()
    run_logger().info(
        "round %d: GRPO dynamic sampling: %d informative problems, %d wanted; drew %d more in %d draws, %d of them "
        "informative", round_id, informative.num_rows, result.needed, metrics["grpo_extra_problems_drawn"],
        result.draws, metrics["grpo_extra_problems_informative"],
    )  # fmt: skip
    return result.problems, StageOutput([store.write_table(round_id, "grpo_extra_problems", result.extra)], metrics)


def control_train_stage(store: RunStore, config: RunConfig, round_id: int, model_ref: str) -> StageOutput:
    """The ablation arm's model: the same SFT steps from `model_ref`, on round 0's labelled data alone."""
    labelled = store.read_table(0, "dataset", DATASET_SCHEMA)
    model = model_for_training(store, config, model_ref)
    return train_phases(config.train, ("sft",), config, store, round_id, model, sft_data=labelled)


def evaluate_stage(store: RunStore, config: RunConfig, round_id: int, pool: pa.Table, model_ref: str) -> StageOutput:
    """`model_ref` sampled and judged on the first `evaluate.n_problems` held-out problems, as `eval`."""
    held_out = split_of(pool, "test").slice(0, config.evaluate.n_problems)
    traces = sample_traces(config, store, model_ref, held_out, round_id, "evaluate")
    eval_table, metrics = evaluate_traces(verify(config, store, traces, held_out), round_id)
    files = [store.write_table(round_id, "eval", eval_table), _write_prompting(store, config, round_id, model_ref)]
    return StageOutput(files, metrics)


def _write_prompting(store: RunStore, config: RunConfig, round_id: int, model_ref: str) -> FileRecord:
    """`prompting.json`: how the engine that just evaluated rendered prompts (stages.sample.prompting_record); the
    manifest carries it as `prompting`, and the report and `flywheel status` show it."""
    sampler = ENGINES.get(
        model_folder(store, model_ref),
        config.model,
        config.engine,
        config.seed,
        config.problems.system_prompt,
        purpose="evaluate",  # the engine evaluation used: with external endpoints, not the one sampling uses
    )
    record = prompting_record(sampler.tokenizer, config.problems.system_prompt, answer_instructions(config.problems))
    return store.write_json(round_id, PROMPTING_FILE, record)


def _carried_over_datasets(store: RunStore, config: RunConfig, round_id: int) -> list[pa.Table]:
    """Training data carried over: round 0's labelled data and earlier rounds' kept traces, as configured."""
    first = 0 if config.train.include_seed_data else 1
    last = round_id - 1 if config.train.include_previous_rounds else 0
    return store.ancestor_tables("dataset", range(first, last + 1), DATASET_SCHEMA)


def _concat(tables: list[pa.Table]) -> pa.Table | None:
    return pa.concat_tables(tables) if tables else None
