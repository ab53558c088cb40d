"""Round reports: gather a round's report data from the run store, write `report.html`, publish a Prefect artifact.

Rendering is `stages/report_html.py` (pure). Here: the data comes from the manifests of the committed rounds
before this one plus the pending manifest of this one, and from this round's `difficulty` and `dropped`
tables when it has them; the page is written as a file of the round before the round commits, so the
manifest lists and hashes it like every other file; after the commit, the round's markdown summary is
published with `prefect.artifacts.create_markdown_artifact` so the Prefect UI shows it. A round committed
before reports existed has no report, and `report_location` says so; nothing here rewrites a committed round.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from storage import FileRecord, RunStore, StoreError
from storage.store import lists_table

if TYPE_CHECKING:
    import pyarrow as pa

REPORT_FILE = "report.html"


def write_round_report(store: RunStore, round_id: int, manifest: dict[str, Any], files: list[FileRecord]) -> FileRecord:
    """Render and write `report.html` of an uncommitted round: rounds 0..round_id, this one from `manifest`."""
    # Imported here: `flywheel report` only looks the page up, and must not pay for matplotlib.
    from stages.curate import DIFFICULTY_SCHEMA, DROPPED_SCHEMA
    from stages.report_html import ReportInput, render_report_html

    earlier = [store.read_manifest(r) for r in store.committed_rounds() if r < round_id]
    difficulty = (
        store.read_table(round_id, "difficulty", DIFFICULTY_SCHEMA) if lists_table(files, "difficulty") else None
    )
    dropped = store.read_table(round_id, "dropped", DROPPED_SCHEMA) if lists_table(files, "dropped") else None
    page = render_report_html(
        ReportInput(store.run_name, [*earlier, {**manifest, "round": round_id}], difficulty, dropped)
    )
    return store.write_file(round_id, REPORT_FILE, page.encode())


def read_if_listed(
    store: RunStore, round_id: int, files: list[FileRecord], name: str, schema: pa.Schema
) -> pa.Table | None:
    """The round's table `name` when `files` (the round's files, about to be committed) hold it, else None."""
    return store.read_table(round_id, name, schema) if lists_table(files, name) else None


def report_location(store: RunStore, round_id: int | None = None) -> str:
    """Where a committed round's report is (HEAD's by default); a StoreError says why there is none."""
    if round_id is None:
        round_id = store.head()
        if round_id is None:
            raise StoreError(f"run {store.run_name!r} has no committed round yet, so no report")
    manifest = store.read_manifest(round_id)
    entry = next((entry for entry in manifest["files"] if entry["path"] == REPORT_FILE), None)
    if entry is None:
        raise StoreError(
            f"round {round_id} of run {store.run_name!r} has no report: it was committed before reports "
            f"existed (its manifest lists no {REPORT_FILE})"
        )
    problem = store.check_files(round_id, [FileRecord(**entry)])
    if problem is not None:
        raise StoreError(f"the report of round {round_id} of run {store.run_name!r} is unusable: {problem}")
    return store.location(round_id, REPORT_FILE)


def artifact_key(run: str, round_id: int) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only: `My_Run.2` -> `my-run-2-round-3`."""
    slug = re.sub(r"[^a-z0-9]+", "-", run.lower()).strip("-") or "run"
    return f"{slug}-round-{round_id}"


def publish_round_artifact(run: str, manifest: dict[str, Any]) -> str:
    """Publish a committed round's summary as a markdown artifact of the running flow; returns its key."""
    from prefect.artifacts import create_markdown_artifact

    from stages.report_html import render_round_markdown

    key = artifact_key(run, manifest["round"])
    create_markdown_artifact(
        markdown=render_round_markdown(run, manifest),
        key=key,
        description=f"flywheel run {run}, round {manifest['round']}: metrics, kept/dropped, stage timings",
    )
    return key
