"""Round reports from a real tiny run: `report.html` in the manifest, `flywheel report`, the Prefect artifact
read back through the Prefect client, and a headless Chromium screenshot of the page; and the progress bars
shown while a round runs."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib.image
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.cli import main
from flows.report import REPORT_FILE, artifact_key
from storage import RunStore
from tests.conftest import REPO, CommittedRun, load_script


@pytest.fixture(scope="module")
def tiny_run(committed_run: CommittedRun) -> Path:
    """Rounds 0 and 1 of the tiny config, committed by the real `flywheel run`; returns the run folder."""
    return committed_run.run


def _artifact_of(run: Path, round_id: int) -> Any:
    """The markdown artifact that the flow runs of this run (not of other runs named alike) published for a round."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterTags

    from flows.stopping import run_tag

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[artifact_key(run.name, round_id)])),
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[run_tag(str(run), run.name)])),
        )
    assert len(found) == 1, f"{len(found)} artifacts of round {round_id} in the Prefect database"
    return found[0]


@pytest.mark.slow
def test_each_round_commits_a_hashed_self_contained_report(tiny_run: Path) -> None:
    for round_id in (0, 1):
        round_dir = tiny_run / "rounds" / f"r{round_id:04d}"
        manifest = json.loads((round_dir / "manifest.json").read_text())
        listed = {entry["path"]: entry for entry in manifest["files"]}
        page = (round_dir / REPORT_FILE).read_bytes()
        assert listed[REPORT_FILE]["sha256"] == hashlib.sha256(page).hexdigest()
        assert listed[REPORT_FILE]["bytes"] == len(page)
        text = page.decode()
        assert f"tiny: round {round_id}" in text
        assert "src='http" not in text and 'src="http' not in text  # nothing fetched from elsewhere
        assert text.count("data:image/png;base64,") >= 3
    round_1 = (tiny_run / "rounds" / "r0001" / REPORT_FILE).read_text()
    assert "No difficulty table" not in round_1 and "No dropped table" not in round_1
    assert "No difficulty table" in (tiny_run / "rounds" / "r0000" / REPORT_FILE).read_text()


@pytest.mark.slow
def test_sampled_tokens_are_recorded_for_throughput(tiny_run: Path) -> None:
    round_1 = tiny_run / "rounds" / "r0001"
    metrics = json.loads((round_1 / "manifest.json").read_text())["metrics"]
    tokens = sum(pq.read_table(round_1 / "traces", columns=["completion_tokens"]).column(0).to_pylist())
    assert metrics["sample_tokens"] == tokens > 0
    round_0 = json.loads((tiny_run / "rounds" / "r0000" / "manifest.json").read_text())["metrics"]
    assert "sample_tokens" not in round_0  # round 0 samples nothing for training


@pytest.mark.slow
def test_prompting_is_recorded_when_sampling_and_shown_by_status_and_the_report(
    tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stages.tiny_model import CHAT_TEMPLATE

    digest = hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest()[:12]
    for round_id in (0, 1):
        round_dir = tiny_run / "rounds" / f"r{round_id:04d}"
        manifest = json.loads((round_dir / "manifest.json").read_text())
        assert "prompting.json" in {entry["path"] for entry in manifest["files"]}
        assert manifest["prompting"] == json.loads((round_dir / "prompting.json").read_text())
        assert manifest["prompting"]["chat_template_sha256"] == digest
        assert manifest["prompting"]["system_message"] is None  # the tiny model's template has no default
        assert manifest["prompting"]["answer_instructions"] == {"arithmetic": None}
        page = (round_dir / REPORT_FILE).read_text()
        assert f"<li>chat template: the model&#x27;s (sha256 {digest})</li><li>system message: none</li>" in page
    assert main(["status", "tiny", "--store", str(tiny_run.parent)]) == 0
    out = capsys.readouterr().out
    assert (
        f"prompting (round 1):\n  chat template: the model's (sha256 {digest})\n  system message: none\n"
        "  answer instruction (arithmetic): none (prompts as the source writes them)\n"
    ) in out
    assert "rendered prompts otherwise" not in out


@pytest.mark.slow
def test_report_command_prints_the_path(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tiny_run.parent)
    assert main(["report", "tiny", "--store", store]) == 0
    assert capsys.readouterr().out.strip() == str(tiny_run / "rounds" / "r0001" / REPORT_FILE)
    assert main(["report", "tiny", "0", "--store", store]) == 0
    assert capsys.readouterr().out.strip() == str(tiny_run / "rounds" / "r0000" / REPORT_FILE)


@pytest.mark.slow
def test_each_round_publishes_a_markdown_artifact(tiny_run: Path) -> None:
    from prefect.client.orchestration import get_client

    manifest = json.loads((tiny_run / "rounds" / "r0001" / "manifest.json").read_text())
    artifact = _artifact_of(tiny_run, 1)
    assert artifact.key == "tiny-round-1" and artifact.type == "markdown"
    markdown = str(artifact.data)
    assert markdown.startswith("# Run `tiny`, round 1")
    assert f"| pass@1 | {_number(manifest['metrics']['pass@1'])} |" in markdown
    assert f"| kept | {_number(manifest['metrics']['kept'])} |" in markdown
    assert "| dropped: incorrect |" in markdown or manifest["metrics"].get("dropped_incorrect") is None
    assert "| sample |" in markdown and "| evaluate |" in markdown
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(artifact.flow_run_id)
        assert client.read_flow(flow_run.flow_id).name == "flywheel-round"
        assert flow_run.parameters["round_id"] == 1
    assert _artifact_of(tiny_run, 0).key == "tiny-round-0"


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tiny_run: Path, tmp_path: Path) -> None:
    script = load_script("screenshot_report")
    if script.find_chromium() is None:
        pytest.skip("chromium is not installed: apt-get install chromium (scripts/setup.sh does it as root)")
    out = tmp_path / "report.png"
    page = tiny_run / "rounds" / "r0001" / REPORT_FILE
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "screenshot_report.py"), str(page), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    assert len(data) > 30_000
    image = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert image.shape[:2] == (2400, 1200)
    pixels = image[..., :3].reshape(-1, 3)
    colours = {tuple(row) for row in (pixels[::97] * 255).astype(int).tolist()}
    assert len(colours) > 50  # text, axes, bars and lines, not a blank or single-colour page
    # The plots sit in the upper part of the page: it must not be mostly white there.
    top = image[:1200, :, :3]
    assert (top < 0.9).any(axis=2).mean() > 0.02


def test_report_of_a_round_made_before_reports_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _store_with_round(tmp_path, report=False)
    assert main(["report", "old", "--store", store.url]) == 2
    error = capsys.readouterr().err
    assert "round 0 of run 'old' has no report" in error and "committed before reports existed" in error


def test_report_whose_file_is_gone_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _store_with_round(tmp_path, report=True)
    (Path(store.round_path(0, REPORT_FILE))).unlink()
    assert main(["report", "old", "0", "--store", store.url]) == 2
    error = capsys.readouterr().err
    assert "report of round 0 of run 'old' is unusable" in error and f"r0000/{REPORT_FILE} is missing" in error


def test_report_of_an_uncommitted_round_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _store_with_round(tmp_path, report=True)
    assert main(["report", "old", "3", "--store", store.url]) == 2
    assert "round 3 is not committed" in capsys.readouterr().err


def test_artifact_keys_are_valid_for_prefect() -> None:
    assert artifact_key("Demo_Run.v2", 12) == "demo-run-v2-round-12"
    assert artifact_key("Tiny_Report", 1) == "tiny-report-round-1"
    assert artifact_key("__", 0) == "run-round-0"


def test_verification_progress_bar_is_opt_in_and_leaves_verdicts_unchanged(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from configs import ArithmeticConfig, VerifyConfig
    from stages.problems import generate_arithmetic
    from stages.sample import TRACES_SCHEMA, show_progress
    from stages.verify import PROGRESS_CALLS_PER_WORKER, verify_traces
    from verifiers.pool import VerifierPool

    problems = generate_arithmetic(ArithmeticConfig(n_seed=0, n_test=1, n_train=80), seed=0)
    rows = [
        {
            "round": 1,
            "problem_id": problem["problem_id"],
            "sample_idx": 0,
            "model_ref": "m",
            "prompt": problem["prompt"],
            "completion": str(index),  # distinct answers: one verifier call each
            "completion_tokens": 1,
            "finish_reason": "stop",
            "seed": 1,
        }
        for index, problem in enumerate(problems.to_pylist())
    ]
    traces = pa.Table.from_pylist(rows, schema=TRACES_SCHEMA)
    assert traces.num_rows > 2 * PROGRESS_CALLS_PER_WORKER  # several batches with one worker
    with VerifierPool(workers=1, timeout_s=5.0) as pool:
        monkeypatch.setenv("FLYWHEEL_PROGRESS", "0")
        assert not show_progress()
        quiet = verify_traces(traces, problems, config=VerifyConfig(), pool=pool)
        assert "verifying" not in capfd.readouterr().err
        monkeypatch.setenv("FLYWHEEL_PROGRESS", "1")
        assert show_progress()
        shown = verify_traces(traces, problems, config=VerifyConfig(), pool=pool)
        shown_err = capfd.readouterr().err
        assert "verifying" in shown_err and f"/{traces.num_rows}" in shown_err
    assert shown.equals(quiet)
    monkeypatch.delenv("FLYWHEEL_PROGRESS")
    assert not show_progress()  # pytest's stderr is not a terminal


def _store_with_round(tmp_path: Path, report: bool) -> RunStore:
    store = RunStore(str(tmp_path / "runs"), "old")
    store.create("run_name: old\n", pa.table({"problem_id": ["p1"]}))
    files = [store.write_file(0, REPORT_FILE, b"<html></html>")] if report else []
    store.commit(0, {"metrics": {"pass@1": 0.5}, "timings_s": {}}, files)
    return store


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"
