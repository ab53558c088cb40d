from __future__ import annotations

import base64
import io
import re
from typing import Any

import matplotlib.image
import pytest

from configs import CurateConfig
from stages.curate import curate
from stages.report_html import (
    ReportInput,
    drop_reason_counts,
    render_report_html,
    render_round_markdown,
    replica_tokens_per_second,
    sampling_tokens_per_second,
    training_tokens_per_second,
)
from tests.stages.helpers import verified_traces

PNG = re.compile(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'")


def _manifest(round_id: int, metrics: dict[str, float], timings: dict[str, float]) -> dict[str, Any]:
    return {"round": round_id, "parent": round_id - 1 if round_id else None, "metrics": metrics, "timings_s": timings}


ROUND_0 = _manifest(
    0,
    {"pass@1": 0.5, "kept": 64.0, "train_tokens": 3000.0, "train_seconds": 10.0},
    {"seed_data": 0.1, "train": 10.5, "evaluate": 20.0},
)
ROUND_1 = _manifest(
    1,
    {
        "pass@1": 0.7,
        "pass@4": 0.9,
        "maj@4": 0.75,
        "kept": 2.0,
        "dropped": 4.0,
        "bucket_solved": 1.0,
        "bucket_unsolved": 1.0,
        "sample_tokens": 400.0,
        "sample_seconds": 2.0,
        "train_tokens": 1000.0,
        "train_seconds": 4.0,
    },
    {"select": 0.1, "sample": 2.5, "curate": 0.2, "train": 4.2, "evaluate": 9.0},
)


def _images(page: str) -> list[Any]:
    return [matplotlib.image.imread(io.BytesIO(base64.b64decode(data)), format="png") for data in PNG.findall(page)]


def _curated() -> Any:
    traces = verified_traces(
        [
            {"problem_id": "p1", "sample_idx": 0, "completion": "46", "correct": True},
            {"problem_id": "p1", "sample_idx": 1, "completion": "46", "correct": True},
            {"problem_id": "p1", "sample_idx": 2, "completion": "45", "correct": False},
            {"problem_id": "p2", "sample_idx": 0, "completion": "1", "correct": False},
            {"problem_id": "p2", "sample_idx": 1, "completion": "2", "correct": False},
            {"problem_id": "p3", "sample_idx": 0, "completion": "9", "correct": True},
        ]
    )
    return curate(traces, CurateConfig(), round_id=1)


def test_full_round_report_embeds_every_plot_as_a_readable_png() -> None:
    curated = _curated()
    page = render_report_html(ReportInput("demo", [ROUND_0, ROUND_1], curated.difficulty, curated.dropped))
    images = _images(page)
    # accuracy, pass-rate histogram, buckets, kept/dropped, throughput, timings
    assert len(images) == 6
    for image in images:
        height, width = image.shape[:2]
        assert width > 400 and height > 100
        assert image.reshape(-1, image.shape[2]).std(axis=0).max() > 0.05  # not a blank picture
    assert "<h1>demo: round 1</h1>" in page
    assert "No difficulty table" not in page and "No dropped table" not in page
    assert "3 problems" in page  # under the histogram


def test_round_without_sampling_tables_still_renders() -> None:
    page = render_report_html(ReportInput("demo", [ROUND_0]))
    assert "No difficulty table" in page
    assert "No dropped table" in page and "64 rows (labelled data)" in page
    assert "No round has difficulty buckets yet" in page
    assert len(_images(page)) == 3  # accuracy, throughput (training only), timings


def test_control_round_is_named_and_lacks_tables_gracefully() -> None:
    control = {**_manifest(1, {"pass@1": 0.6}, {"train": 3.0, "evaluate": 8.0}), "config": {"control": True}}
    page = render_report_html(ReportInput("demo-control", [ROUND_0, control]))
    assert "<th>control round</th>" in page
    assert "No difficulty table" in page and "No dropped table" in page


def test_text_from_the_run_is_escaped() -> None:
    page = render_report_html(ReportInput("<script>alert(1)</script>", [ROUND_0]))
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_no_manifests_is_an_error() -> None:
    with pytest.raises(ValueError, match="no manifests"):
        render_report_html(ReportInput("demo", []))


def test_drop_reasons_are_counted_by_kind() -> None:
    counts = drop_reason_counts(_curated().dropped)
    assert counts == {"incorrect": 3, "duplicate_of": 1}
    dropped = _curated().dropped
    relabelled = dropped.set_column(
        dropped.schema.get_field_index("drop_reason"),
        "drop_reason",
        [["contaminated:e1", "contaminated:e2", "duplicate_of:p1/0@r1", "incorrect"]],
    )
    assert drop_reason_counts(relabelled) == {"contaminated": 2, "duplicate_of": 1, "incorrect": 1}


def test_tokens_per_second_from_manifest_metrics() -> None:
    assert sampling_tokens_per_second(ROUND_1["metrics"]) == 200.0
    assert training_tokens_per_second(ROUND_1["metrics"]) == 250.0
    assert sampling_tokens_per_second(ROUND_0["metrics"]) is None  # round 0 samples nothing
    assert training_tokens_per_second({"train_tokens": 0.0, "train_seconds": 1.0}) is None


def test_tokens_per_second_of_each_sampling_replica_is_plotted() -> None:
    replicas = {
        "sample_replica0_completion_tokens": 300.0,
        "sample_replica0_seconds": 1.5,
        "sample_replica1_completion_tokens": 100.0,
        "sample_replica1_seconds": 1.0,
    }
    assert replica_tokens_per_second(replicas) == [200.0, 100.0]
    assert replica_tokens_per_second(ROUND_1["metrics"]) == []
    plain = _images(render_report_html(ReportInput("demo", [ROUND_0, ROUND_1])))
    with_replicas = {**ROUND_1, "metrics": {**ROUND_1["metrics"], **replicas}}
    images = _images(render_report_html(ReportInput("demo", [ROUND_0, with_replicas])))
    assert len(images) == len(plain)
    throughput = [i for i, (a, b) in enumerate(zip(plain, images, strict=True)) if a.shape != b.shape]
    assert len(throughput) == 1 and images[throughput[0]].shape[1] > plain[throughput[0]].shape[1]  # a third panel


def test_markdown_summary_lists_metrics_counts_and_timings() -> None:
    text = render_round_markdown("demo", {**ROUND_1, "metrics": {**ROUND_1["metrics"], "dropped_incorrect": 3.0}})
    assert text.startswith("# Run `demo`, round 1")
    assert "| pass@1 | 0.7 |" in text and "| maj@4 | 0.75 |" in text
    assert "| kept | 2 |" in text and "| dropped | 4 |" in text and "| dropped: incorrect | 3 |" in text
    stages = re.findall(r"^\| (\w+) \| [\d.]+ \|$", text.split("| stage | seconds |")[1], flags=re.M)
    assert stages == ["select", "sample", "curate", "train", "evaluate"]


def test_report_shows_the_curation_filters_in_the_order_they_ran_with_what_each_dropped() -> None:
    curated = _curated()
    page = render_report_html(ReportInput("demo", [ROUND_0, ROUND_1], curated.difficulty, curated.dropped))
    # a manifest without `curate.filters` ran the fixed order that is now the default
    rows = re.findall(r"<tr><td>(\d+)</td><td>(\w+)</td><td>(\d+)</td></tr>", page)
    assert rows == [
        ("1", "cannot_judge", "0"),
        ("2", "incorrect", "3"),
        ("3", "too_long", "0"),
        ("4", "format", "0"),
        ("5", "contaminated", "0"),
        ("6", "duplicate", "1"),
        ("7", "per_problem_cap", "0"),
    ]
    order = ["incorrect", "cannot_judge", "per_problem_cap"]
    configured = {**ROUND_1, "config": {"curate": {"filters": order}}}
    page = render_report_html(ReportInput("demo", [ROUND_0, configured], curated.difficulty, curated.dropped))
    shown = re.findall(r"<tr><td>\d+</td><td>(\w+)</td><td>\d+</td></tr>", page)
    assert shown == order
    assert "curation filters, in order: incorrect -> cannot_judge -> per_problem_cap" in render_round_markdown(
        "demo", configured
    )
    assert "curation filters" not in render_round_markdown("demo", ROUND_0)  # round 0 curated nothing


def test_prompting_is_shown_in_the_page_and_the_markdown_and_its_text_escaped() -> None:
    prompting = {
        "chat_template_sha256": "0123456789ab",
        "system_message": "You are <SmolLM>",
        "system_message_from": "chat template default",
        "template_default_system_message": "You are <SmolLM>",
        "answer_instructions": {"reasoning_gym": "Answer inside <answer> </answer> tags."},
    }
    page = render_report_html(ReportInput("demo", [ROUND_0, {**ROUND_1, "prompting": prompting}]))
    section = page[page.index("<h2>Prompting</h2>") : page.index("<h2>Held-out accuracy")]
    assert "chat template: the model&#x27;s (sha256 0123456789ab)" in section
    assert "system message: &#x27;You are &lt;SmolLM&gt;&#x27; (the chat template&#x27;s default;" in section
    assert "(reasoning_gym): &#x27;Answer inside &lt;answer&gt; &lt;/answer&gt; tags.&#x27;</li>" in section
    markdown = render_round_markdown("demo", {**ROUND_1, "prompting": prompting})
    assert "- system message: 'You are <SmolLM>' (the chat template's default;" in markdown
    unrecorded = render_report_html(ReportInput("demo", [ROUND_0]))
    assert "Not recorded: the round was committed before prompting was recorded." in unrecorded
    assert "prompting:" not in render_round_markdown("demo", ROUND_1)
