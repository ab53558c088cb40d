"""Render a round's report: one self-contained HTML page with plots, and a short markdown summary.

Input is plain data: the manifests of rounds 0..N of a run (committed ancestors first, the round reported
last) and that round's `difficulty` and `dropped` tables, which round 0 and control rounds do not have.
The HTML says how the round's prompts were rendered (chat template, system message, each source's answer
instruction) and holds every plot as a base64 PNG drawn with matplotlib's Agg canvas (no pyplot, no display), so
the file opens anywhere on its own: held-out accuracy per round, this round's pass-rate histogram, bucket
sizes per round, kept and dropped traces by reason, the curation filters in the order they ran with what each
dropped, tokens per second of sampling and training (and of each sampling replica), and stage timings. The
markdown is the summary that Prefect's UI shows for a round. Nothing is read or written here.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from configs import CURATION_FILTERS
from stages.curate import BUCKETS
from stages.curation_filters import FILTERS
from stages.order import in_stage_order
from stages.sample import describe_prompting

ACCURACY_METRIC = re.compile(r"^(pass|maj)@(\d+)$")
HISTOGRAM_BINS = 10


@dataclass(frozen=True)
class ReportInput:
    """`manifests`: rounds 0..N in order, each with `round`, `metrics` and `timings_s`; the last is reported."""

    run: str
    manifests: Sequence[dict[str, Any]]
    difficulty: pa.Table | None = None
    dropped: pa.Table | None = None


def drop_reason_counts(dropped: pa.Table) -> dict[str, int]:
    """Dropped traces per reason kind: `duplicate_of:p1/0` and `contaminated:e3` count by their prefix."""
    kinds = Counter(reason.split(":", 1)[0] for reason in dropped.column("drop_reason").to_pylist())
    return dict(kinds.most_common())


def curation_filters(manifest: dict[str, Any]) -> list[str]:
    """The curation filters of a round in the order they ran: its config's `curate.filters`; a manifest written
    before the order was configurable ran the fixed order that is now the default."""
    curate = (manifest.get("config") or {}).get("curate") or {}
    return list(curate.get("filters", CURATION_FILTERS))


def sampling_tokens_per_second(metrics: dict[str, float]) -> float | None:
    tokens, seconds = metrics.get("sample_tokens"), metrics.get("sample_seconds")
    return tokens / seconds if tokens is not None and seconds else None


def replica_tokens_per_second(metrics: dict[str, float]) -> list[float | None]:
    """Completion tokens per busy second of each sampling replica (engine process or endpoint), in replica order."""
    rates: list[float | None] = []
    while f"sample_replica{len(rates)}_seconds" in metrics:
        prefix = f"sample_replica{len(rates)}"
        tokens, seconds = metrics.get(f"{prefix}_completion_tokens"), metrics[f"{prefix}_seconds"]
        rates.append(tokens / seconds if tokens is not None and seconds else None)
    return rates


def training_tokens_per_second(metrics: dict[str, float]) -> float | None:
    tokens, seconds = metrics.get("train_tokens"), metrics.get("train_seconds")
    return tokens / seconds if tokens and seconds else None


def render_report_html(report: ReportInput) -> str:
    if not report.manifests:
        raise ValueError("render_report_html: no manifests; the round reported must be the last one")
    current = report.manifests[-1]
    round_id = current["round"]
    sections = [
        _header(report.run, current),
        _section("Prompting", _prompting(current)),
        _section("Held-out accuracy per round", _accuracy_plot(report.manifests)),
        _section(f"Pass rates of round {round_id}'s problems", _pass_rate_histogram(report.difficulty)),
        _section("Difficulty buckets per round", _bucket_plot(report.manifests)),
        _section(
            f"Kept and dropped traces of round {round_id}",
            _kept_dropped_plot(current, report.dropped) + _filters_table(current, report.dropped),
        ),
        _section("Throughput (tokens per second)", _throughput_plot(report.manifests)),
        _section("Stage timings", _timings_plot(report.manifests)),
        _section("Rounds", _rounds_table(report.manifests)),
        _section(f"Metrics of round {round_id}", _metrics_table(current["metrics"])),
    ]
    title = html.escape(f"{report.run}: round {round_id}")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>{_STYLE}</style></head>\n<body>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def render_round_markdown(run: str, manifest: dict[str, Any]) -> str:
    """A round's metrics, kept/dropped counts and stage timings as markdown tables."""
    metrics: dict[str, float] = manifest["metrics"]
    lines = [
        f"# Run `{run}`, round {manifest['round']}",
        "",
        f"model `{manifest.get('model_in')}` -> `{manifest.get('model_out')}`, parent round "
        f"{manifest.get('parent')}, config `{str(manifest.get('config_hash', ''))[:12]}`",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {name} | {_number(value)} |" for name, value in sorted(metrics.items())),
        "",
        "| traces | count |",
        "|---|---|",
        f"| kept | {_number(metrics.get('kept'))} |",
        f"| dropped | {_number(metrics.get('dropped'))} |",
        *(
            f"| dropped: {name.removeprefix('dropped_')} | {_number(value)} |"
            for name, value in sorted(metrics.items())
            if name.startswith("dropped_")
        ),
        "",
        *(
            [f"curation filters, in order: {' -> '.join(curation_filters(manifest))}", ""]
            if "dropped" in metrics
            else []
        ),
        *(
            ["prompting:", *(f"- {line}" for line in describe_prompting(manifest["prompting"])), ""]
            if manifest.get("prompting")
            else []
        ),
        "| stage | seconds |",
        "|---|---|",
        *(f"| {stage} | {seconds:.1f} |" for stage, seconds in _ordered_timings(manifest["timings_s"])),
        "",
    ]
    return "\n".join(lines)


# -- sections -------------------------------------------------------------------------------------------
def _header(run: str, manifest: dict[str, Any]) -> str:
    config = manifest.get("config") or {}
    kind = "control round" if config.get("control") and manifest["round"] > 0 else "round"
    facts = {
        "run": run,
        kind: manifest["round"],
        "parent round": manifest.get("parent"),
        "model in": manifest.get("model_in"),
        "model out": manifest.get("model_out"),
        "config hash": manifest.get("config_hash"),
        "committed at": manifest.get("committed_at"),
    }
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items())
    return f"<h1>{html.escape(run)}: round {manifest['round']}</h1>\n<table class='facts'>{rows}</table>"


def _prompting(manifest: dict[str, Any]) -> str:
    record = manifest.get("prompting")
    if not record:
        return _note("Not recorded: the round was committed before prompting was recorded.")
    items = "".join(f"<li>{html.escape(line)}</li>" for line in describe_prompting(record))
    return f"<ul>{items}</ul>"


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>\n{body}\n</section>"


def _accuracy_plot(manifests: Sequence[dict[str, Any]]) -> str:
    names = sorted(
        {name for m in manifests for name in m["metrics"] if ACCURACY_METRIC.match(name)},
        key=lambda name: (int(ACCURACY_METRIC.match(name).group(2)), name),  # type: ignore[union-attr]
    )
    if not names:
        return _note("No round has held-out accuracy metrics (pass@1).")

    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        for name in names:
            points = [(m["round"], m["metrics"][name]) for m in manifests if name in m["metrics"]]
            axes.plot(*zip(*points, strict=True), marker="o", label=name)
        axes.set_xlabel("round")
        axes.set_ylabel("held-out accuracy")
        axes.set_ylim(-0.02, 1.02)
        _integer_rounds(axes, [m["round"] for m in manifests])
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right")

    return _figure(draw, "held-out accuracy per round")


def _pass_rate_histogram(difficulty: pa.Table | None) -> str:
    if difficulty is None:
        return _note("No difficulty table: this round sampled no training problems (round 0 or a control round).")
    rates = [rate for rate in difficulty.column("pass_rate").to_pylist() if rate is not None]
    unjudged = difficulty.num_rows - len(rates)
    if not rates:
        return _note(f"None of the {difficulty.num_rows} problems could be judged.")

    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        axes.hist(rates, bins=HISTOGRAM_BINS, range=(0.0, 1.0), color="#4c72b0", edgecolor="white")
        axes.set_xlabel("pass rate (correct / judged samples)")
        axes.set_ylabel("problems")
        axes.set_xlim(0.0, 1.0)
        axes.grid(axis="y", alpha=0.3)

    note = f"{len(rates)} problems" + (f"; {unjudged} could not be judged and are not shown" if unjudged else "")
    return _figure(draw, "histogram of per-problem pass rates") + _note(note)


def _bucket_plot(manifests: Sequence[dict[str, Any]]) -> str:
    rounds = [m for m in manifests if any(f"bucket_{b}" in m["metrics"] for b in BUCKETS)]
    if not rounds:
        return _note("No round has difficulty buckets yet (round 0 and control rounds sample nothing).")

    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        ids = [m["round"] for m in rounds]
        bottom = [0.0] * len(rounds)
        for bucket in BUCKETS:
            sizes = [m["metrics"].get(f"bucket_{bucket}", 0.0) for m in rounds]
            if any(sizes):
                axes.bar(ids, sizes, bottom=bottom, label=bucket, color=_BUCKET_COLOURS[bucket])
                bottom = [b + s for b, s in zip(bottom, sizes, strict=True)]
        axes.set_xlabel("round")
        axes.set_ylabel("problems")
        _integer_rounds(axes, ids)
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))

    return _figure(draw, "problems per difficulty bucket per round")


def _kept_dropped_plot(manifest: dict[str, Any], dropped: pa.Table | None) -> str:
    kept = manifest["metrics"].get("kept")
    if dropped is None:
        labelled = "" if kept is None else f" Its dataset holds {int(kept)} rows (labelled data)."
        return _note(f"No dropped table: this round sampled nothing (round 0 or a control round).{labelled}")
    counts = {"kept": int(kept or 0), **{f"dropped: {k}": n for k, n in drop_reason_counts(dropped).items()}}

    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        labels = list(counts)[::-1]
        values = [counts[label] for label in labels]
        colours = ["#55a868" if label == "kept" else "#c44e52" for label in labels]
        bars = axes.barh(labels, values, color=colours)
        axes.bar_label(bars, padding=3)
        axes.set_xlabel("traces")
        axes.margins(x=0.12)

    return _figure(draw, "kept and dropped traces by reason", height=1.2 + 0.35 * len(counts))


def _filters_table(manifest: dict[str, Any], dropped: pa.Table | None) -> str:
    """The filters in the order they ran, each with the traces it dropped (by the reason kind it writes)."""
    if dropped is None:
        return ""
    counts = drop_reason_counts(dropped)
    rows = "".join(
        f"<tr><td>{position}</td><td>{html.escape(name)}</td><td>{counts.get(FILTERS[name].reason, 0)}</td></tr>"
        for position, name in enumerate(curation_filters(manifest), start=1)
    )
    return (
        "\n<p>Curation filters in the order they ran; each sees only the traces the ones before it kept.</p>"
        f"<table class='numbers'><tr><th>#</th><th>filter</th><th>dropped</th></tr>{rows}</table>"
    )


def _throughput_plot(manifests: Sequence[dict[str, Any]]) -> str:
    series = {
        "sampling": [(m["round"], sampling_tokens_per_second(m["metrics"])) for m in manifests],
        "training": [(m["round"], training_tokens_per_second(m["metrics"])) for m in manifests],
    }
    series = {name: [(r, v) for r, v in points if v is not None] for name, points in series.items()}
    if not any(series.values()):
        return _note("No round recorded token counts with its sampling or training time.")

    replicas = {m["round"]: replica_tokens_per_second(m["metrics"]) for m in manifests}
    replicas = {round_id: rates for round_id, rates in replicas.items() if any(r is not None for r in rates)}
    columns = 3 if replicas else 2

    def draw(figure: Figure) -> None:
        if replicas:
            _replica_bars(figure.add_subplot(1, columns, 3), replicas)
        for index, (name, points) in enumerate(series.items()):
            axes = figure.add_subplot(1, columns, index + 1)
            axes.set_title(f"{name} (completion tokens / s)" if name == "sampling" else f"{name} (tokens / s)")
            if points:
                bars = axes.bar(*zip(*points, strict=True), color="#8172b3" if name == "sampling" else "#dd8452")
                axes.bar_label(bars, fmt="%.0f", padding=2, fontsize=8)
                _integer_rounds(axes, [r for r, _ in points])
                axes.margins(y=0.15)
            else:
                axes.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=axes.transAxes)
                axes.set_xticks([])
            axes.set_xlabel("round")

    missing = [name for name, points in series.items() if len(points) < len(manifests)]
    note = (
        _note(
            "Rounds without a bar did no "
            + " or ".join(missing)
            + " (or were committed before token counts were recorded)."
        )
        if missing
        else ""
    )
    return _figure(draw, "tokens per second of sampling and training per round", width=4.5 * columns) + note


def _replica_bars(axes: Any, replicas: dict[int, list[float | None]]) -> None:
    """Grouped bars: per round, one bar per sampling replica."""
    most = max(len(rates) for rates in replicas.values())
    width = 0.8 / most
    for replica in range(most):
        points = [
            (round_id - 0.4 + width * (replica + 0.5), rates[replica])
            for round_id, rates in replicas.items()
            if replica < len(rates) and rates[replica] is not None
        ]
        if points:
            axes.bar(*zip(*points, strict=True), width=width, label=f"replica {replica}")
    axes.set_title("sampling per replica (completion tokens / s)")
    axes.set_xlabel("round")
    _integer_rounds(axes, list(replicas))
    if most > 1:
        axes.legend(fontsize=7)


def _timings_plot(manifests: Sequence[dict[str, Any]]) -> str:
    stages = [stage for stage, _ in _ordered_timings({k: 0.0 for m in manifests for k in m["timings_s"]})]
    if not stages:
        return _note("No stage timings recorded.")

    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        ids = [m["round"] for m in manifests]
        bottom = [0.0] * len(manifests)
        for stage in stages:
            seconds = [m["timings_s"].get(stage, 0.0) for m in manifests]
            axes.bar(ids, seconds, bottom=bottom, label=stage)
            bottom = [b + s for b, s in zip(bottom, seconds, strict=True)]
        axes.set_xlabel("round")
        axes.set_ylabel("seconds")
        _integer_rounds(axes, ids)
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))

    return _figure(draw, "seconds per stage per round")


def _rounds_table(manifests: Sequence[dict[str, Any]]) -> str:
    header = "<tr><th>round</th><th>pass@1</th><th>sampled pass rate</th><th>kept</th><th>dropped</th>"
    header += "<th>seconds</th></tr>"
    rows = []
    for m in manifests:
        metrics = m["metrics"]
        cells = [
            m["round"],
            _number(metrics.get("pass@1")),
            _number(metrics.get("sample_pass_rate")),
            _number(metrics.get("kept")),
            _number(metrics.get("dropped")),
            f"{sum(m['timings_s'].values()):.1f}",
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return f"<table class='numbers'>{header}{''.join(rows)}</table>"


def _metrics_table(metrics: dict[str, float]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{_number(value)}</td></tr>" for name, value in sorted(metrics.items())
    )
    return f"<table class='numbers'>{rows}</table>"


# -- helpers --------------------------------------------------------------------------------------------
def _figure(draw: Callable[[Figure], None], alt: str, width: float = 7.5, height: float = 3.4) -> str:
    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    draw(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{encoded}'>"


def _integer_rounds(axes: Any, ids: Sequence[int]) -> None:
    """Round numbers as the x ticks; a lone round gets room on both sides instead of one very wide bar."""
    axes.set_xticks(list(ids))
    if len(ids) == 1:
        axes.set_xlim(ids[0] - 1, ids[0] + 1)


def _ordered_timings(timings: dict[str, float]) -> list[tuple[str, float]]:
    return [(stage, timings[stage]) for stage in in_stage_order(list(timings))]


def _note(text: str) -> str:
    return f"<p class='note'>{html.escape(text)}</p>"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


_BUCKET_COLOURS = {
    "unsolved": "#c44e52",
    "hard": "#dd8452",
    "medium": "#ccb974",
    "easy": "#64b5cd",
    "solved": "#55a868",
    "unjudged": "#8c8c8c",
}
_STYLE = (
    "body{font-family:sans-serif;max-width:1000px;margin:1.5em auto;color:#222}"
    "h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}"
    "table{border-collapse:collapse}th,td{padding:.2em .8em;text-align:left;border-bottom:1px solid #eee}"
    "table.numbers td{text-align:right}img{max-width:100%}.note{color:#666;font-style:italic}"
)
