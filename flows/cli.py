"""The `flywheel` command line."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from flows.env import configure_environment

EXIT_BAD_INPUT = 2


def main(argv: list[str] | None = None) -> int:
    configure_environment()
    args = _parser().parse_args(argv)
    from configs import ConfigError
    from stages.problems import ProblemsError
    from storage import StoreError
    from verifiers import UnknownVerifierError

    try:
        return args.handler(args)
    except (ConfigError, ProblemsError, StoreError, UnknownVerifierError) as error:
        print(f"flywheel: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


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

    status = commands.add_parser("status", help="rounds and metrics of a run")
    status.add_argument("run_name")
    status.add_argument("--store", default="./runs")
    status.set_defaults(handler=_status)
    return parser


def _add_overrides(command: argparse.ArgumentParser) -> None:
    command.add_argument("--rounds", type=int, help="improvement rounds after round 0")
    command.add_argument("--run-name", help="run folder name in the store")
    command.add_argument("--store", help="store folder or fsspec URL (default ./runs)")
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
    from flows.campaign import campaign_flow, check_config, open_run

    config = load_config(config_path, overrides)
    check_config(config, source)
    open_run(config)  # bad problems or a clashing run fail here, before Prefect starts
    campaign_flow(config)
    return _round_rows(config.store, config.run_name)


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
    _print_rounds(_round_rows(args.store, args.run_name), title=f"run {args.run_name}")
    return 0


def _round_rows(store_url: str, run_name: str) -> list[dict[str, Any]]:
    from storage import RunStore, StoreError

    store = RunStore(store_url, run_name)
    if not store.exists():
        raise StoreError(f"no run {run_name!r} in {store_url}")
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


if __name__ == "__main__":
    sys.exit(main())
