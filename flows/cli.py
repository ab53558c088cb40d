"""The `flywheel` command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from flows.env import configure_environment
from flows.supervise import is_supervised, run_supervised

if TYPE_CHECKING:
    from storage import RunStore

EXIT_BAD_INPUT = 2
DEFAULT_STORE = "./runs"  # RunConfig.store's default, kept here so that read-only commands import no pydantic
FLOW_COMMANDS = ("run", "demo", "resume", "schedule")
# Commands that run rounds in this process and stop them cleanly on a signal (flows/stopping.py); `schedule`
# leaves Ctrl-C to Prefect's runner, which pauses the schedule, and its triggers run in their own processes.
ROUND_COMMANDS = ("run", "demo", "resume")
READ_ONLY_COMMANDS = ("status", "inspect", "diff", "report", "check")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    if args.command in FLOW_COMMANDS:
        # Read-only commands skip this: it creates FLYWHEEL_HOME, and they must write nothing.
        configure_environment()
        if not is_supervised():
            return run_supervised(argv)
    if args.command in ROUND_COMMANDS:
        from flows.stopping import install_stop_handlers

        install_stop_handlers()
        return _stoppable(args)
    return _handle(args)


def _stoppable(args: argparse.Namespace) -> int:
    """Run a round command; a stop signal ends it with 128 + the signal's number, like a process it killed."""
    from flows.stopping import STOP_EXCEPTIONS, exit_now, stop_signal

    try:
        return _handle(args)
    except STOP_EXCEPTIONS:
        signum = stop_signal() or signal.SIGINT
        print(
            f"flywheel: stopped by {signal.Signals(signum).name}; the open round keeps its finished stages and "
            "shards: `flywheel resume RUN` continues it",
            file=sys.stderr,
        )
        exit_now(128 + signum)
        raise  # not reached


# Errors that mean bad input (a message for the user, exit 2), by module: a command only pays for importing the
# modules it uses, and an error class whose module was never imported cannot have been raised.
BAD_INPUT_ERRORS = {
    "configs.loader": "ConfigError",
    "flows.export": "ExportError",
    "stages.problems": "ProblemsError",
    "stages.select": "SelectionError",
    "storage.store": "StoreError",
    "storage.lock": "LockError",
    "verifiers": "UnknownVerifierError",
}


def _handle(args: argparse.Namespace) -> int:
    try:
        return args.handler(args)
    except Exception as error:
        if not isinstance(error, _bad_input_errors()):
            raise
        print(f"flywheel: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _bad_input_errors() -> tuple[type[Exception], ...]:
    return tuple(
        getattr(sys.modules[module], name) for module, name in BAD_INPUT_ERRORS.items() if module in sys.modules
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flywheel", description="Self-improvement rounds for LLM reasoning.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="create or continue a run and execute its rounds")
    run.add_argument("config", type=Path, help="YAML run config")
    _add_overrides(run)
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="the built-in demo: a tiny model improves at addition on CPU")
    demo.add_argument("--control", action="store_true", help="also run the labelled-data-only control arm")
    _add_overrides(demo)
    demo.set_defaults(handler=_demo)

    resume = commands.add_parser("resume", help="finish the open round, then the remaining planned rounds")
    resume.add_argument("run_name")
    _add_store(resume, default=DEFAULT_STORE)
    resume.add_argument(
        "--no-early-stop", action="store_true", help="continue a campaign that stopped early on a plateau"
    )
    resume.set_defaults(handler=_resume)

    schedule = commands.add_parser(
        "schedule", help="serve a cron-scheduled Prefect deployment that adds rounds to a run (needs a server)"
    )
    schedule.add_argument("config", type=Path, help="YAML run config")
    schedule.add_argument("--cron", required=True, help="when to trigger, e.g. '0 3 * * *' (03:00 daily)")
    schedule.add_argument("--timezone", help="IANA time zone of the cron string, e.g. Europe/Paris (default UTC)")
    schedule.add_argument("--name", help="deployment name (default: the run name)")
    schedule.add_argument(
        "--rounds-per-trigger", type=int, default=1, metavar="N", help="rounds each trigger commits (default 1)"
    )
    schedule.add_argument("--run-name", help="run folder name in the store")
    _add_store(schedule)
    schedule.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    schedule.set_defaults(handler=_schedule, rounds=None)  # each trigger sets the rounds

    rollback = commands.add_parser("rollback", help="make round N the HEAD; later rounds go to archive/")
    rollback.add_argument("run_name")
    rollback.add_argument("--to", type=int, required=True, dest="to_round", metavar="N")
    rollback.add_argument("--purge", action="store_true", help="delete the later rounds instead of archiving")
    _add_store(rollback, default=DEFAULT_STORE)
    rollback.set_defaults(handler=_rollback)

    status = commands.add_parser("status", help="rounds, HEAD and per-round metrics of a run")
    status.add_argument("run_name")
    _add_store(status, default=DEFAULT_STORE)
    status.set_defaults(handler=_status)

    inspect = commands.add_parser("inspect", help="print rows of a committed round's table")
    inspect.add_argument("run_name")
    inspect.add_argument("round", type=int)
    inspect.add_argument("--table", default="dataset", help="dataset, traces, dropped, difficulty, eval, problems")
    inspect.add_argument("--limit", type=int, default=10)
    _add_store(inspect, default=DEFAULT_STORE)
    inspect.set_defaults(handler=_inspect)

    check = commands.add_parser("check", help="verify a run's files against its manifests; exit 2 listing problems")
    check.add_argument("run_name")
    check.add_argument("round", type=int, nargs="?", help="check only this committed round (and the run's files)")
    _add_store(check, default=DEFAULT_STORE)
    check.set_defaults(handler=_check)

    diff = commands.add_parser("diff", help="what changed between two committed rounds")
    diff.add_argument("run_name")
    diff.add_argument("first", type=int)
    diff.add_argument("second", type=int)
    _add_store(diff, default=DEFAULT_STORE)
    diff.set_defaults(handler=_diff)

    report = commands.add_parser("report", help="print the path of a committed round's report.html")
    report.add_argument("run_name")
    report.add_argument("round", type=int, nargs="?", help="round number (default: HEAD)")
    _add_store(report, default=DEFAULT_STORE)
    report.set_defaults(handler=_report)

    export = commands.add_parser("export", help="export a committed round's table as a Hugging Face dataset")
    export.add_argument("run_name")
    export.add_argument("round", type=int)
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", type=Path, dest="to_dir", metavar="DIR", help="a new or empty folder")
    target.add_argument("--to-hub", dest="to_hub", metavar="REPO", help="a hub dataset repo id (needs a token)")
    export.add_argument("--table", default="dataset", help="dataset, traces, dropped, difficulty, eval, problems")
    export.add_argument("--private", action="store_true", help="with --to-hub: create the repo as private")
    _add_store(export, default=DEFAULT_STORE)
    export.set_defaults(handler=_export)

    verify = commands.add_parser("verify", help="judge a JSONL/Parquet file of completions; write verdict columns")
    verify.add_argument("file", type=Path, help="a .jsonl or .parquet file, one completion per row")
    verify.add_argument("--domain", required=True, help="the verifier: math, code, countdown, reasoning_gym, format")
    verify.add_argument("--gold-field", help="field holding the gold answer (default: the verifier's own key)")
    verify.add_argument("--completion-field", default="completion", help="field holding the completion")
    verify.add_argument("--against", choices=["math-verify"], help="also judge with another verifier and compare")
    verify.add_argument("--out", type=Path, help="output file (default: FILE's name with .verified before the suffix)")
    verify.add_argument("--workers", type=int, default=2, help="verifier worker processes")
    verify.add_argument("--timeout", type=float, default=5.0, help="hard wall-clock limit per row, seconds")
    verify.set_defaults(handler=_verify_file)

    rescore = commands.add_parser(
        "rescore", help="re-judge a committed round with today's verifiers into a new table; print flipped verdicts"
    )
    rescore.add_argument("run_name")
    rescore.add_argument("round", type=int)
    rescore.add_argument("--timeout", type=float, help="hard wall-clock limit per answer, seconds (default: the run's)")
    rescore.add_argument("--workers", type=int, help="verifier worker processes (default: the run's)")
    rescore.add_argument("--examples", type=int, default=5, metavar="N", help="flipped traces to print (default 5)")
    _add_store(rescore, default=DEFAULT_STORE)
    rescore.set_defaults(handler=_rescore)
    return parser


def _verify_file(args: argparse.Namespace) -> int:
    from flows.verify_file import format_result, verify_file

    try:
        result = verify_file(
            args.file,
            args.domain,
            gold_field=args.gold_field,
            completion_field=args.completion_field,
            against=args.against,
            out=args.out,
            workers=args.workers,
            timeout_s=args.timeout,
        )
    except ValueError as error:
        print(f"flywheel: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_result(result, args.domain, args.against))
    return 0


def _rescore(args: argparse.Namespace) -> int:
    from flows.rescore import format_rescore, rescore_round

    store = _existing_store(args.store, args.run_name)
    result = rescore_round(store, args.round, timeout_s=args.timeout, workers=args.workers, examples=args.examples)
    print(format_rescore(result, args.run_name))
    return 0


def _add_store(command: argparse.ArgumentParser, default: str | None = None) -> None:
    """`--store`, the same for every command. A command on an existing run defaults to DEFAULT_STORE; one that
    loads a config leaves it None, so that the config's `store` applies unless the option is given."""
    command.add_argument("--store", default=default, help=f"store folder or fsspec URL (default {DEFAULT_STORE})")


def _add_overrides(command: argparse.ArgumentParser) -> None:
    command.add_argument("--rounds", type=int, help="improvement rounds after round 0")
    command.add_argument("--run-name", help="run folder name in the store")
    _add_store(command)
    command.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config field by its dotted path, e.g. --set sample.k=8 (value parsed as YAML)",
    )


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from configs import ConfigError

    overrides: dict[str, Any] = {}
    for item in args.set:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise ConfigError("--set", [f"expected KEY=VALUE, got {item!r}"])
        overrides[key] = yaml.safe_load(value)
    for name, key in (("rounds", "rounds"), ("run_name", "run_name"), ("store", "store")):
        if getattr(args, name) is not None:
            overrides[key] = getattr(args, name)
    return overrides


def _execute(config_path: Path | Any, overrides: dict[str, Any], source: str) -> list[dict[str, Any]]:
    from configs import load_config

    config = load_config(config_path, overrides)
    return _campaign(config, source)


def _campaign(config: Any, source: str) -> list[dict[str, Any]]:
    from flows.opening import check_config, check_plan, open_run
    from storage import RunLock

    check_config(config, source)
    store = open_run(config)  # bad problems or a clashing run fail here, before Prefect starts
    check_plan(store, config)
    RunLock(store).check()
    from flows.campaign import run_campaign  # the round's heavy modules load only for a run that can start

    run_campaign(config)
    return _round_rows(config.store, config.run_name)


def _resume(args: argparse.Namespace) -> int:
    from flows.opening import early_stop, stored_config

    store = _existing_store(args.store, args.run_name)
    config = stored_config(store)
    if args.no_early_stop:
        orchestration = config.orchestration.model_copy(update={"early_stop": None})
        config = config.model_copy(update={"orchestration": orchestration})
    else:
        stop = early_stop(store, config)
        if stop is not None:
            print(f"run {args.run_name!r} stopped early after round {stop['round']}: {stop['reason']}")
            print(f"nothing to do; to continue anyway: flywheel resume {args.run_name} --no-early-stop")
            return 0
    open_rounds = store.open_rounds()
    print(
        f"resuming run {args.run_name!r}: HEAD={store.head()}, open round(s) {open_rounds or 'none'}, "
        f"planned rounds 0..{config.rounds}"
    )
    _print_rounds(_campaign(config, store.path("run.yaml")), title=f"run {args.run_name}")
    return 0


def _schedule(args: argparse.Namespace) -> int:
    from configs import ConfigError, load_config
    from flows.opening import check_config, open_run
    from flows.schedule import DEPLOYMENT_FLOW, ScheduleError, check_cron, check_server, serve_schedule

    if args.rounds_per_trigger < 1:
        raise ConfigError("--rounds-per-trigger", [f"must be at least 1, got {args.rounds_per_trigger}"])
    try:
        check_cron(args.cron, args.timezone)
        url = check_server(os.environ["PREFECT_HOME"])
    except ScheduleError as error:
        print(f"flywheel: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    config = load_config(args.config, _overrides(args))
    check_config(config, str(args.config))
    open_run(config)  # bad problems or a clashing run fail here, before anything is served
    name = args.name or config.run_name
    zone = args.timezone or "UTC"
    print(
        f"serving deployment {DEPLOYMENT_FLOW}/{name} on {url}: cron {args.cron!r} ({zone}); each trigger "
        f"commits {args.rounds_per_trigger} more round(s) of run {config.run_name!r}. Ctrl-C stops serving "
        "(and pauses the schedule)."
    )
    serve_schedule(config, args.cron, args.timezone, name, args.rounds_per_trigger)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from storage import RunLock

    store = _existing_store(args.store, args.run_name)
    with RunLock(store):
        moved = store.rollback(args.to_round, purge=args.purge)
    verb = "deleted" if args.purge else "archived"
    for path in moved:
        print(f"{verb}: {path}")
    print(f"HEAD = {args.to_round}; the next round starts from round {args.to_round}'s model")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from flows.inspect import read_round_table
    from storage import StoreError

    store = _existing_store(args.store, args.run_name)
    table = read_round_table(store, args.round, args.table)
    if table is None:
        raise StoreError(f"round {args.round} of run {args.run_name!r} has no {args.table} table")
    print(f"{args.table} of round {args.round}: {table.num_rows} rows, columns: {', '.join(table.column_names)}")
    frame = table.slice(0, args.limit).to_pandas()
    print(frame.to_string(max_colwidth=48, index=False))
    return 0


def _check(args: argparse.Namespace) -> int:
    from storage.check import check_run

    store = _existing_store(args.store, args.run_name)
    report = check_run(store, args.round)
    for problem in report.problems:
        print(f"flywheel: error: {problem}", file=sys.stderr)
    if report.problems:
        print(f"flywheel: {len(report.problems)} problem(s) in run {args.run_name!r}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(report.summary(store))
    return 0


def _diff(args: argparse.Namespace) -> int:
    from flows.inspect import diff_rounds

    store = _existing_store(args.store, args.run_name)
    result = diff_rounds(store, args.first, args.second)
    print(f"round {args.first} -> round {args.second} of run {args.run_name!r}")
    print(
        f"problems: +{result['problems_added']} added, -{result['problems_removed']} removed, "
        f"{result['problems_shared']} shared"
    )
    shift = result["mean_pass_rate_shift"]
    print(
        f"pass rate of problems scored in both ({result['scored_in_both']}): {result['pass_rate_up']} up, "
        f"{result['pass_rate_down']} down, mean shift {'n/a' if shift is None else f'{shift:+.3f}'}"
    )
    for move, count in result["bucket_moves"].items():
        print(f"  bucket {move}: {count}")
    for name, (first, second) in result["sizes"].items():
        print(f"{name} rows: {first} -> {second}")
    for name, (first, second) in result["metrics"].items():
        print(f"{name}: {_number(first)} -> {_number(second)}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from flows.report import report_location

    print(report_location(_existing_store(args.store, args.run_name), args.round))
    return 0


def _export(args: argparse.Namespace) -> int:
    from flows.export import export_to_dir, export_to_hub

    store = _existing_store(args.store, args.run_name)
    if args.to_hub is not None:
        url = export_to_hub(store, args.round, args.table, args.to_hub, private=args.private)
        print(f"pushed {args.table} of round {args.round} to {url}")
    else:
        rows = export_to_dir(store, args.round, args.table, args.to_dir)
        print(f"exported {rows} rows of {args.table} of round {args.round} to {args.to_dir}")
        print(f"load with: datasets.load_dataset({str(args.to_dir)!r})")
    return 0


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _existing_store(store_url: str, run_name: str) -> Any:
    from storage import RunStore, StoreError

    store = RunStore(store_url, run_name)
    if not store.exists():
        raise StoreError(f"no run {run_name!r} in {store_url}")
    return store


def _run(args: argparse.Namespace) -> int:
    rows = _execute(args.config, _overrides(args), str(args.config))
    _print_rounds(rows)
    return 0


def _demo(args: argparse.Namespace) -> int:
    config_path = Path(str(resources.files("configs").joinpath("demo.yaml")))
    overrides = _overrides(args)
    loop = _execute(config_path, overrides, str(config_path))
    if not args.control:
        _print_rounds(loop, title="held-out accuracy per round (greedy, 500 problems)")
        return 0
    control_name = f"{overrides.get('run_name', 'demo')}-control"
    control = _execute(config_path, overrides | {"run_name": control_name, "control": True}, str(config_path))
    print("\nheld-out accuracy per round (greedy): self-improvement loop vs control (labelled data only)")
    print(f"{'round':>5}  {'loop':>6}  {'control':>7}")
    for mine, theirs in zip(loop, control, strict=False):
        print(f"{mine['round']:>5}  {mine['pass@1']:>6.3f}  {theirs['pass@1']:>7.3f}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from stages.order import in_stage_order
    from storage import RunLock, StoreIntegrityError
    from storage.check import check_run

    store = _existing_store(args.store, args.run_name)
    problems = check_run(store, hashes=False).problems
    if problems:
        raise StoreIntegrityError("\n  ".join([f"run {args.run_name!r} is damaged:", *problems]))
    _print_rounds(_round_rows(args.store, args.run_name), title=f"run {args.run_name} in {args.store}")
    print(f"HEAD: {store.head()}   planned rounds: 0..{store.read_plan()}")
    _print_prompting(store)
    stop = store.read_early_stop()
    if stop is not None and stop["round"] == store.head():
        print(f"campaign stopped early after round {stop['round']} ({stop['stopped_at']}): {stop['reason']}")
    for round_id in store.open_rounds():
        done = ", ".join(in_stage_order(list(store.read_progress(round_id)["stages"]))) or "nothing yet"
        print(f"open round {round_id} (not committed): finished stages: {done}")
    lock = RunLock(store)
    holder = lock.read_holder()
    if holder == {}:
        print(f"lock: empty LOCK file {lock.path} (a writer died creating it; the next run takes it over)")
    elif holder:
        from storage.lock import describe, holder_is_alive

        state = "held" if holder_is_alive(holder) else "stale (holder is dead)"
        print(f"lock: {state} by {describe(holder)}")
    for entry in store.archived():
        print(f"archived: {entry}")
    return 0


def _print_prompting(store: RunStore) -> None:
    """How HEAD's prompts were rendered, and which earlier rounds rendered them otherwise."""
    from stages.sample import describe_prompting

    head = store.head()
    if head is None:
        return
    records = {round_id: store.read_manifest(round_id).get("prompting") for round_id in store.committed_rounds()}
    if not records[head]:
        print(f"prompting: not recorded (round {head} was committed before prompting was recorded)")
        return
    print(f"prompting (round {head}):")
    for line in describe_prompting(records[head]):
        print(f"  {line}")
    other = [str(round_id) for round_id, record in records.items() if record and record != records[head]]
    if other:
        print(f"  rounds {', '.join(other)} rendered prompts otherwise (see their manifests' `prompting`)")


def _round_rows(store_url: str, run_name: str) -> list[dict[str, Any]]:
    store = _existing_store(store_url, run_name)
    rows = []
    for round_id in store.committed_rounds():
        manifest = store.read_manifest(round_id)
        metrics = manifest["metrics"]
        rows.append(
            {
                "round": round_id,
                "pass@1": metrics.get("pass@1", float("nan")),
                "kept": metrics.get("kept"),
                "sample_pass_rate": metrics.get("sample_pass_rate"),
                "seconds": sum(manifest["timings_s"].values()),
                "head": round_id == store.head(),
            }
        )
    return rows


def _print_rounds(rows: list[dict[str, Any]], title: str = "rounds") -> None:
    print(f"\n{title}")
    print(f"{'round':>5}  {'pass@1':>7}  {'sampled pass rate':>17}  {'kept':>6}  {'seconds':>7}")
    for row in rows:
        sampled = "" if row["sample_pass_rate"] is None else f"{row['sample_pass_rate']:.3f}"
        kept = "" if row["kept"] is None else f"{int(row['kept'])}"
        marker = "  <- HEAD" if row["head"] else ""
        print(f"{row['round']:>5}  {row['pass@1']:>7.3f}  {sampled:>17}  {kept:>6}  {row['seconds']:>7.1f}{marker}")


def entry() -> None:
    """The `flywheel` command (and `python -m flows.cli`)."""
    argv = sys.argv[1:]
    code = main(argv)
    if argv and argv[0] in READ_ONLY_COMMANDS:
        # Arrow's thread pools can abort the interpreter's teardown after the work is done ("terminate called
        # without an active exception", apache/arrow#34314); a read-only command has nothing left to tear down.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
