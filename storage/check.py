"""`flywheel check`: verify a whole run (or one round) and list every problem found, not only the first.

Checked: HEAD is readable and names a committed round (the newest); every committed round's manifest is
valid JSON, matches its own hash and has the expected structure; every file a manifest lists exists with
its recorded size and sha256; rounds form one lineage (round N's parent is N-1, which is committed, and
N's `model_in` is N-1's `model_out`); the run's `pool.parquet` and `run.yaml` match the newest manifest;
`plan.json`, `LOCK` and open rounds' `progress.json` are readable; every complete rescore (of the checked
rounds) matches its own manifest and still describes the committed round it was made from (rescores.py), and
every batch of the verdict cache matches the sha256 in its name (verdicts.py). Nothing is repaired or written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.lock import LockError, RunLock
from storage.rescores import rescore_problems, rescores_of
from storage.store import SELF_HASH, RunStore, StoreError
from storage.verdicts import verdict_files, verdict_problems


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    legacy: list[int] = field(default_factory=list)  # manifests written before they carried their own hash
    rescores: int = 0
    verdict_files: int = 0

    def summary(self, store: RunStore) -> str:
        rounds = f"round(s) {', '.join(map(str, self.rounds))}" if self.rounds else "no committed round"
        legacy = f"; {len(self.legacy)} legacy manifest(s) without {SELF_HASH}" if self.legacy else ""
        extra = ""
        if self.rescores or self.verdict_files:
            extra = f"; {self.rescores} rescore(s) and {self.verdict_files} verdict cache file(s) are intact"
        return (
            f"run {store.run_name!r} is intact: {rounds}, {self.files} files ({self.bytes} bytes) match their "
            f"manifests{legacy}{extra}"
        )


def check_run(store: RunStore, round_id: int | None = None, hashes: bool = True) -> CheckReport:
    """Every problem of the run (or of round `round_id` and the run-level files); no problems means intact.
    With `hashes=False` files are compared by size only (what `flywheel status` does: fast on large runs)."""
    report = CheckReport()
    committed = store.committed_rounds()
    if round_id is not None and round_id not in committed:
        report.problems.append(f"round {round_id} is not committed: no {store.round_path(round_id, 'manifest.json')}")
        return report
    report.rounds = committed if round_id is None else [round_id]
    _check_head(store, committed, report.problems)
    manifests = {}
    for number in committed:
        try:
            manifests[number] = store.read_manifest(number)
        except StoreError as error:
            if number in report.rounds:
                report.problems.append(str(error))
    for number in report.rounds:
        manifest = manifests.get(number)
        if manifest is None:
            continue
        if SELF_HASH not in manifest:
            report.legacy.append(number)
        report.problems += _lineage_problems(store, number, manifest, manifests)
        problems = store.file_problems(number, hashes)
        report.problems += problems
        report.files += len(manifest["files"]) - len(problems)
        report.bytes += sum(entry["bytes"] for entry in manifest["files"])
    if committed and committed[-1] in manifests:
        report.problems += store.run_file_problems(hashes)
    rescored = [number for number, _ in rescores_of(store) if round_id is None or number == round_id]
    report.rescores = len(rescored)
    report.problems += rescore_problems(store, None if round_id is None else [round_id], hashes)
    report.verdict_files = len(verdict_files(store))
    report.problems += verdict_problems(store, hashes)
    for reader in (store.read_plan, store.read_early_stop):
        try:
            reader()
        except StoreError as error:
            report.problems.append(str(error))
    try:
        RunLock(store).read_holder()
    except LockError as error:
        report.problems.append(str(error))
    for number in store.open_rounds():
        try:
            store.read_progress(number)
        except StoreError as error:
            report.problems.append(str(error))
    return report


def _check_head(store: RunStore, committed: list[int], problems: list[str]) -> None:
    try:
        head = store.head()
    except StoreError as error:
        problems.append(str(error))
        return
    head_path = store.path("HEAD")
    if head is None:
        if committed:
            fix = f"`flywheel rollback {store.run_name} --to {committed[-1]}` writes it"
            problems.append(f"{head_path} is missing; {fix}")
    elif head not in committed:
        problems.append(f"{head_path} names round {head}, which is not committed (committed: {committed or 'none'})")
    elif head != committed[-1]:
        problems.append(
            f"{head_path} names round {head} but round {committed[-1]} is committed too "
            f"(a commit interrupted before HEAD moved: `flywheel resume {store.run_name}` repairs it)"
        )


def _lineage_problems(
    store: RunStore, number: int, manifest: dict[str, object], manifests: dict[int, dict[str, object]]
) -> list[str]:
    path = store.round_path(number, "manifest.json")
    expected_parent = None if number == 0 else number - 1
    if manifest.get("parent", expected_parent) != expected_parent:
        return [f"{path}: parent is {manifest.get('parent')!r}, expected {expected_parent!r}"]
    if expected_parent is None:
        return []
    parent = manifests.get(expected_parent)
    if parent is None:
        if not store.is_committed(expected_parent):
            return [f"{path}: its parent round {expected_parent} is not committed"]
        return []  # the parent's own manifest problem is already listed
    if "model_in" in manifest and "model_out" in parent and manifest["model_in"] != parent["model_out"]:
        return [
            f"{path}: model_in is {manifest['model_in']!r} but round {expected_parent} produced {parent['model_out']!r}"
        ]
    return []
