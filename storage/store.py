"""The run store: the only code that reads or writes a run's files.

Layout under `<store>/<run>/`: `run.yaml` (the frozen config), `pool.parquet` (every problem of the run),
`plan.json` (rounds last asked for), `early_stop.json` (why a campaign stopped
before its plan, if it did), `HEAD` (last committed round), `LOCK` (see lock.py), `rounds/rNNNN/`
(a round's tables, `traces/part-*.parquet`, `model/`, `report.html`, and `manifest.json` once committed or
`progress.json` while open), `archive/<when>/` (rounds set aside by a rollback, kept until purged, each with
its rescores), `rescores/rNNNN-<key>/` (a committed round re-judged later: rescores.py) and
`verdicts/<verifier>-<version>/` (the persistent verdict cache: verdicts.py).

Every file is written under a temporary name and renamed into place, so a crash never leaves a partial
file under a final name; `manifest.json` is written last, and its presence is what makes a round
committed.

Reads check what they read. A manifest carries the sha256 of its own canonical JSON (`manifest_sha256`;
manifests written before it are read as legacy: their files are still checked). Every read of a
committed round's file compares its size with the manifest, and its sha256 the first time this process
reads it (remembered by path, size and modification time); part files are the ones the manifest lists,
not whatever the folder holds. The manifests also record `run_files` (the run's `pool.parquet` and
`run.yaml`), checked the same way. A mismatch is a `StoreIntegrityError` naming the file, what was
expected and found, and how to recover. Open rounds are not checked here: their journal
(`progress.json`, `check_files`) decides what is reused.

Paths go through fsspec, so a local folder and object stores share one code path; models are folders that vLLM
and transformers need on local disk, staged locally and uploaded for remote stores.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from storage.jobs import PhaseFiles

MANIFEST = "manifest.json"
RESCORES = "rescores"
PROGRESS = "progress.json"
EARLY_STOP = "early_stop.json"
MODEL_DIR = "model"


class StoreError(RuntimeError):
    """A store that cannot be used as asked; the message names the path."""


class StoreIntegrityError(StoreError):
    """A committed file that differs from what its manifest records, or a manifest that is not intact."""


SELF_HASH = "manifest_sha256"
RUN_FILES = ("pool.parquet", "run.yaml")
# sha256 of committed files this process has verified, by (path, size, mtime): each file is hashed once.
_VERIFIED: dict[tuple[str, int, Any], str] = {}


@dataclass(frozen=True)
class FileRecord:
    path: str  # relative to the round folder
    rows: int | None
    bytes: int
    sha256: str


def round_name(round_id: int) -> str:
    return f"r{round_id:04d}"


class RunStore:
    def __init__(self, store_url: str, run_name: str) -> None:
        self.fs, root = fsspec.core.url_to_fs(store_url)
        self.url = store_url
        self.run_name = run_name
        self.root = f"{root.rstrip('/')}/{run_name}"
        self.is_local = isinstance(self.fs, LocalFileSystem)

    # -- paths ---------------------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def round_path(self, round_id: int, *parts: str) -> str:
        return self.path("rounds", round_name(round_id), *parts)

    # -- run level -----------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.fs.exists(self.path("run.yaml"))

    def read_run_config(self) -> str:
        path = self.path("run.yaml")
        self._verify_run_file("run.yaml")
        try:
            return self._read_bytes(path).decode()
        except UnicodeDecodeError as error:
            raise StoreError(f"{path}: not UTF-8 text ({error}); restore it from a copy of the run") from error

    def create(self, config_yaml: str, pool: pa.Table) -> None:
        """Start a new run: the pool first, the config last, so `exists()` means both are there."""
        if self.exists():
            raise StoreError(f"run already exists: {self.path('run.yaml')}")
        self._write_parquet(self.path("pool.parquet"), pool)
        self._write_bytes(self.path("run.yaml"), config_yaml.encode())

    def read_pool(self, schema: pa.Schema) -> pa.Table:
        self._verify_run_file("pool.parquet")
        return self._read_parquet(self.path("pool.parquet"), schema)

    def head(self) -> int | None:
        head_path = self.path("HEAD")
        if not self.fs.exists(head_path):
            return None
        text = self._read_bytes(head_path).decode(errors="replace").strip()
        if not text.isdigit():
            committed = self.committed_rounds()
            fix = (
                f"`flywheel rollback {self.run_name} --to {committed[-1]}` rewrites it"
                if committed
                else f"no round is committed: delete {head_path}"
            )
            raise StoreError(f"{head_path}: expected a round number, found {text[:40]!r}; {fix}")
        return int(text)

    def repair_head(self) -> int | None:
        """HEAD is always the newest committed round; fix it if a crash fell between a manifest and HEAD."""
        committed = self.committed_rounds()
        newest = committed[-1] if committed else None
        if newest is not None and self.head() != newest:
            self._write_bytes(self.path("HEAD"), f"{newest}\n".encode())
        return newest

    def committed_rounds(self) -> list[int]:
        if not self.fs.exists(self.path("rounds")):
            return []
        rounds = []
        for entry in self.fs.ls(self.path("rounds"), detail=False):
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith("r") and name[1:].isdigit() and self.fs.exists(f"{entry.rstrip('/')}/{MANIFEST}"):
                rounds.append(int(name[1:]))
        return sorted(rounds)

    # -- rounds --------------------------------------------------------------------------------------
    def is_committed(self, round_id: int) -> bool:
        return self.fs.exists(self.round_path(round_id, MANIFEST))

    def begin_round(self, round_id: int) -> None:
        """Make sure the round's folder exists; a committed round can never be reopened."""
        if self.is_committed(round_id):
            raise StoreError(f"round {round_id} is committed and immutable: {self.round_path(round_id)}")
        self.fs.makedirs(self.round_path(round_id), exist_ok=True)

    def open_rounds(self) -> list[int]:
        """Rounds with a folder but no manifest: started, not committed."""
        if not self.fs.exists(self.path("rounds")):
            return []
        found = []
        for entry in self.fs.ls(self.path("rounds"), detail=False):
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith("r") and name[1:].isdigit() and not self.is_committed(int(name[1:])):
                found.append(int(name[1:]))
        return sorted(found)

    # -- progress of an open round ---------------------------------------------------------------------
    def read_progress(self, round_id: int) -> dict[str, Any]:
        """The journal of an open round: finished stages and sampled shards with their files."""
        path = self.round_path(round_id, PROGRESS)
        if not self.fs.exists(path):
            return {"stages": {}, "shards": {}}
        fix = f"delete it to run open round {round_id} again from its first stage"
        body = self._read_json(path, fix)
        if not isinstance(body.get("stages"), dict) or not isinstance(body.get("shards"), dict):
            raise StoreError(f"{path}: expected an object with 'stages' and 'shards'; {fix}")
        return body

    def record_stage(
        self, round_id: int, stage: str, files: list[FileRecord], metrics: dict[str, float], seconds: float
    ) -> None:
        progress = self.read_progress(round_id)
        progress["stages"][stage] = {"files": [asdict(f) for f in files], "metrics": metrics, "seconds": seconds}
        self._write_json(self.round_path(round_id, PROGRESS), progress)

    def record_shard(self, round_id: int, kind: str, part: int, record: FileRecord, seconds: dict[str, float]) -> None:
        progress = self.read_progress(round_id)
        progress["shards"].setdefault(kind, {})[str(part)] = {"file": asdict(record), "seconds": seconds}
        self._write_json(self.round_path(round_id, PROGRESS), progress)

    def forget_stages(self, round_id: int, stages: list[str]) -> None:
        progress = self.read_progress(round_id)
        for stage in stages:
            progress["stages"].pop(stage, None)
            progress["shards"].pop(stage, None)
        self._write_json(self.round_path(round_id, PROGRESS), progress)

    def check_files(self, round_id: int, files: list[FileRecord]) -> str | None:
        """None when every file exists with its recorded sha256; else what is wrong with the first bad one."""
        for record in files:
            path = self.round_path(round_id, record.path)
            if not self.fs.exists(path):
                return f"{path} is missing"
            if self._digest(path) != record.sha256:
                return f"{path} does not match its recorded sha256 (truncated or modified)"
        return None

    # -- plan, rollback --------------------------------------------------------------------------------
    def write_plan(self, rounds: int) -> None:
        self._write_json(self.path("plan.json"), {"rounds": rounds})

    def read_plan(self) -> int | None:
        path = self.path("plan.json")
        if not self.fs.exists(path):
            return None
        fix = "delete it; the next `flywheel run CONFIG --rounds N` writes it again"
        rounds = self._read_json(path, fix).get("rounds")
        if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 0:
            raise StoreError(f"{path}: 'rounds' must be a round number, found {rounds!r}; {fix}")
        return rounds

    def write_early_stop(self, record: dict[str, Any]) -> None:
        """Why the campaign stopped before its plan (`early_stop.json`); see flows/campaign.py."""
        self._write_json(self.path(EARLY_STOP), record)

    def read_early_stop(self) -> dict[str, Any] | None:
        path = self.path(EARLY_STOP)
        if not self.fs.exists(path):
            return None
        return self._read_json(path, "delete it; the next run or resume decides again whether to stop early")

    def clear_early_stop(self) -> None:
        if self.fs.exists(self.path(EARLY_STOP)):
            self.fs.rm(self.path(EARLY_STOP))

    def rollback(self, to_round: int, purge: bool = False) -> list[str]:
        """Set aside (or, with purge, delete) every round after `to_round`; HEAD becomes `to_round`."""
        if not self.is_committed(to_round):
            raise StoreError(f"cannot roll back to round {to_round}: it is not committed")
        later = [r for r in sorted({*self.committed_rounds(), *self.open_rounds()}) if r > to_round]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        moved = []
        for round_id in later:
            source = self.round_path(round_id)
            # A rescore judged this round; the round that may later take its number is another one.
            prefix = f"{round_name(round_id)}-"
            rescores = [f"{RESCORES}/{name}" for name in self.list_folder(RESCORES) if name.startswith(prefix)]
            if purge:
                for folder in rescores:
                    self.fs.rm(self.path(folder), recursive=True)
                self.fs.rm(source, recursive=True)
                moved.append(source)
            else:
                target = self.path("archive", stamp, round_name(round_id))
                self.fs.makedirs(self.path("archive", stamp), exist_ok=True)
                self.fs.mv(source, target, recursive=True)
                for folder in rescores:
                    self.fs.makedirs(f"{target}/{RESCORES}", exist_ok=True)
                    self.fs.mv(self.path(folder), f"{target}/{folder}", recursive=True)
                moved.append(target)
        self._write_bytes(self.path("HEAD"), f"{to_round}\n".encode())
        return moved

    def archived(self) -> list[str]:
        folder = self.path("archive")
        if not self.fs.exists(folder):
            return []
        return sorted(
            f"{stamp.rstrip('/').rsplit('/', 1)[-1]}/{entry.rstrip('/').rsplit('/', 1)[-1]}"
            for stamp in self.fs.ls(folder, detail=False)
            for entry in self.fs.ls(stamp, detail=False)
        )

    # -- files of the run outside its rounds (rescores, verdict cache): paths relative to the run folder ------
    def list_folder(self, relative: str) -> list[str]:
        """The names in a folder of the run, sorted; none when it does not exist."""
        folder = self.path(relative)
        if not self.fs.exists(folder):
            return []
        return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in self.fs.ls(folder, detail=False))

    def write_run_table(self, relative: str, table: pa.Table) -> FileRecord:
        return self._record(relative, table.num_rows, self._write_parquet(self.path(relative), table))

    def read_run_table(self, relative: str, schema: pa.Schema) -> pa.Table:
        return self._read_parquet(self.path(relative), schema)

    def write_run_bytes(self, relative: str, data: bytes, rows: int | None = None) -> FileRecord:
        return self._record(relative, rows, (len(data), self._write_bytes(self.path(relative), data)))

    def write_run_json(self, relative: str, body: dict[str, Any]) -> str:
        return self._write_json(self.path(relative), body)

    def read_run_json(self, relative: str, fix: str) -> dict[str, Any]:
        return self._read_json(self.path(relative), fix)

    def run_path_exists(self, relative: str) -> bool:
        return bool(self.fs.exists(self.path(relative)))

    def run_file_problem(self, relative: str, record: FileRecord, hashes: bool = True) -> str | None:
        """What is wrong with a file of the run compared with its record (None when nothing is)."""
        return self._file_problem(self.path(relative), record, hashes)

    def run_file_digest(self, relative: str) -> str:
        return self._digest(self.path(relative))

    def run_location(self, relative: str) -> str:
        """Where a file or folder of the run lives, as a user can open it (a local path, or a URL)."""
        path = self.path(relative)
        return path if self.is_local else self.fs.unstrip_protocol(path)

    def write_table(self, round_id: int, name: str, table: pa.Table) -> FileRecord:
        relative = table_file(name)
        return self._record(relative, table.num_rows, self._write_parquet(self.round_path(round_id, relative), table))

    def write_traces_part(self, round_id: int, part: int, table: pa.Table, kind: str = "traces") -> FileRecord:
        relative = f"{kind}/part-{part:05d}.parquet"
        return self._record(relative, table.num_rows, self._write_parquet(self.round_path(round_id, relative), table))

    def write_file(self, round_id: int, relative: str, data: bytes) -> FileRecord:
        """Write a non-table file of the round (e.g. `report.html`) atomically; returns its record."""
        return self._record(relative, None, (len(data), self._write_bytes(self.round_path(round_id, relative), data)))

    def write_json(self, round_id: int, relative: str, body: dict[str, Any]) -> FileRecord:
        """Write a small JSON object as a file of the round (e.g. `prompting.json`) atomically; returns its record."""
        return self.write_file(round_id, relative, json.dumps(body, indent=2, sort_keys=True).encode())

    def read_json(self, round_id: int, relative: str) -> dict[str, Any]:
        """A JSON object written by `write_json`; a damaged one is a StoreError naming the file."""
        return self._read_json(self.round_path(round_id, relative), f"re-run the round's stage that wrote {relative}")

    def location(self, round_id: int, relative: str) -> str:
        """Where a round's file lives, as a user can open it: a local path, or a URL for remote stores."""
        path = self.round_path(round_id, relative)
        return path if self.is_local else self.fs.unstrip_protocol(path)

    def read_table(self, round_id: int, name: str, schema: pa.Schema | None = None) -> pa.Table:
        """A round's table, checked against `schema` (None only to show a table as it was written); a committed
        round's table is checked against its manifest first."""
        relative = table_file(name)
        if self.is_committed(round_id):
            listed = {record.path: record for record in self.committed_files(round_id)}
            if relative not in listed:
                raise StoreError(
                    f"{self.round_path(round_id, relative)} is not part of committed round {round_id} "
                    f"(its manifest does not list it)"
                )
            self.verify_file(round_id, listed[relative])
        return self._read_parquet(self.round_path(round_id, relative), schema)

    def has_table(self, round_id: int, name: str) -> bool:
        """Whether committed round `round_id` has the table `name` (its manifest lists `name.parquet`)."""
        return lists_table(self.committed_files(round_id), name)

    def has_parts(self, round_id: int, kind: str = "traces") -> bool:
        """Whether committed round `round_id` has part files of `kind` (e.g. `traces/part-*.parquet`)."""
        return any(record.path.startswith(f"{kind}/") for record in self.committed_files(round_id))

    def ancestor_tables(self, name: str, rounds: range, schema: pa.Schema) -> list[pa.Table]:
        """`name` of each committed round in `rounds` that has it, in round order (rounds without it are skipped)."""
        return [self.read_table(r, name, schema) for r in rounds if self.has_table(r, name)]

    def read_parts(self, round_id: int, schema: pa.Schema | None = None, kind: str = "traces") -> pa.Table:
        """Every part file of a round: of a committed round, exactly those its manifest lists, each checked."""
        folder = self.round_path(round_id, kind)
        if self.is_committed(round_id):
            records = [r for r in self.committed_files(round_id) if r.path.startswith(f"{kind}/")]
            for record in records:
                self.verify_file(round_id, record)
            parts = [self.round_path(round_id, record.path) for record in sorted(records, key=lambda r: r.path)]
        else:
            listing = self.fs.ls(folder, detail=False) if self.fs.exists(folder) else []
            parts = sorted(p for p in listing if p.endswith(".parquet"))
        if not parts:
            if schema is None:
                raise StoreError(f"no part files in {folder}")
            return schema.empty_table()
        return pa.concat_tables([self._read_parquet(p, schema) for p in parts])

    def read_part(self, round_id: int, record: FileRecord, schema: pa.Schema) -> pa.Table:
        if self.is_committed(round_id):
            self.verify_file(round_id, record)
        return self._read_parquet(self.round_path(round_id, record.path), schema)

    def scratch_dir(self, round_id: int) -> str:
        """A local folder for a trainer's working files (checkpoints), the same on every attempt at the round so a
        re-run finds them; removed when the round commits. For remote stores it lives on this machine's disk, so
        only a re-run on the same machine resumes from it."""
        base = self.round_path(round_id, ".scratch") if self.is_local else self._remote_scratch(round_id)
        os.makedirs(base, exist_ok=True)
        return base

    def phase_files(self, round_id: int, phase: str) -> PhaseFiles:
        """Where training phase `phase` of the round keeps its checkpoints and, when launched, its job files."""
        return PhaseFiles.under(self.scratch_dir(round_id), phase)

    def _remote_scratch(self, round_id: int) -> str:
        digest = hashlib.sha256(self.root.encode()).hexdigest()[:12]
        return os.path.join(tempfile.gettempdir(), "flywheel-scratch", digest, round_name(round_id))

    def save_model(self, round_id: int, model: Any, tokenizer: Any) -> list[FileRecord]:
        """Save an HF model + tokenizer as the round's `model/`, atomically; returns its files."""
        final = self.round_path(round_id, MODEL_DIR)
        staging = tempfile.mkdtemp(prefix=".model-", dir=self.round_path(round_id) if self.is_local else None)
        from storage.space import disk_space_guard

        try:
            with disk_space_guard(staging):
                model.save_pretrained(staging)
                tokenizer.save_pretrained(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        records = [
            self._record(f"{MODEL_DIR}/{name}", None, _file_digest(os.path.join(staging, name)))
            for name in sorted(os.listdir(staging))
        ]
        if self.fs.exists(final):  # left by an attempt that crashed before recording it: stale
            self.fs.rm(final, recursive=True)
        if self.is_local:
            os.replace(staging, final)
        else:
            upload = f"{final}.tmp-{uuid.uuid4().hex}"
            self.fs.put(staging, upload, recursive=True)
            self.fs.mv(upload, final, recursive=True)
            shutil.rmtree(staging)
        return records

    def local_model_path(self, round_id: int) -> str:
        """A local folder holding the round's model, downloaded once for remote stores."""
        remote = self.round_path(round_id, MODEL_DIR)
        if not self.fs.exists(remote):
            raise StoreError(f"round {round_id} has no model folder: {remote}")
        if self.is_committed(round_id):
            for record in self.committed_files(round_id):
                if record.path.startswith(f"{MODEL_DIR}/"):
                    self.verify_file(round_id, record)
        if self.is_local:
            return remote
        cache = os.path.join(tempfile.gettempdir(), "flywheel-models", self.run_name, round_name(round_id))
        if not os.path.isdir(cache):
            staging = f"{cache}.tmp-{uuid.uuid4().hex}"
            self.fs.get(remote, staging, recursive=True)
            os.replace(staging, cache)
        return cache

    def read_manifest(self, round_id: int) -> dict[str, Any]:
        """A committed round's manifest, checked against its own hash (when it has one) and its schema."""
        path = self.round_path(round_id, MANIFEST)
        if not self.fs.exists(path):
            raise StoreError(f"round {round_id} is not committed: no {path}")
        body = self._read_json(path, self.recovery(round_id))
        recorded = body.get(SELF_HASH)
        if recorded is not None and recorded != manifest_digest(body):
            raise StoreIntegrityError(
                f"{path}: its content does not match its {SELF_HASH} (expected {recorded}, found "
                f"{manifest_digest(body)}): the manifest was edited or damaged; {self.recovery(round_id)}"
            )
        problems = manifest_problems(body, round_id)
        if problems:
            raise StoreIntegrityError(f"{path}: {'; '.join(problems)}; {self.recovery(round_id)}")
        return body

    def committed_files(self, round_id: int) -> list[FileRecord]:
        return [FileRecord(**entry) for entry in self.read_manifest(round_id)["files"]]

    def recovery(self, round_id: int) -> str:
        """What a user can do about a damaged committed round."""
        if round_id == 0:
            return "restore the run folder from a copy, or start a new run (round 0 is the run's baseline)"
        return (
            f"restore the file from a copy, or set the round aside with `flywheel rollback {self.run_name} "
            f"--to {round_id - 1}` and re-run it (`flywheel resume {self.run_name}`)"
        )

    def verify_file(self, round_id: int, record: FileRecord, hashes: bool = True) -> None:
        """Raise StoreIntegrityError unless the round's file has the size (and sha256) its manifest records."""
        problem = self._file_problem(self.round_path(round_id, record.path), record, hashes)
        if problem is not None:
            raise StoreIntegrityError(f"{problem}; {self.recovery(round_id)}")

    def file_problems(self, round_id: int, hashes: bool = True) -> list[str]:
        """Every committed file of the round that is missing or differs from its manifest, one line each."""
        return [
            problem
            for record in self.committed_files(round_id)
            if (problem := self._file_problem(self.round_path(round_id, record.path), record, hashes)) is not None
        ]

    def run_file_problems(self, hashes: bool = True) -> list[str]:
        """`pool.parquet` and `run.yaml` checked against the newest manifest that records them."""
        committed = self.committed_rounds()
        if not committed:
            return []
        recorded = self.read_manifest(committed[-1]).get("run_files", [])
        return [
            problem
            for entry in recorded
            if (problem := self._file_problem(self.path(entry["path"]), FileRecord(**entry), hashes)) is not None
        ]

    def verify_dependencies(self) -> None:
        """Check, before a round starts, the committed data the next round reads: the run's pool and config,
        every committed round's manifest and tables, and the newest round's model. Raises on the first problem."""
        for open_round in self.open_rounds():
            self.read_progress(open_round)  # a broken journal is named now, not when its round starts
        committed = self.committed_rounds()
        if not committed:
            return
        head = self.head()
        if head is not None and head not in committed:
            raise StoreIntegrityError(
                f"{self.path('HEAD')} names round {head}, which is not committed (committed: {committed}); "
                f"`flywheel rollback {self.run_name} --to {committed[-1]}` rewrites it"
            )
        problems = self.run_file_problems()
        for round_id in committed:
            for record in self.committed_files(round_id):
                top_level_table = "/" not in record.path and record.path.endswith(".parquet")
                if top_level_table or (round_id == committed[-1] and record.path.startswith(f"{MODEL_DIR}/")):
                    problem = self._file_problem(self.round_path(round_id, record.path), record, True)
                    if problem is not None:
                        problems.append(f"{problem}; {self.recovery(round_id)}")
        if problems:
            raise StoreIntegrityError("\n  ".join(["committed data of the run is damaged:", *problems]))

    def _verify_run_file(self, relative: str) -> None:
        for problem in self.run_file_problems():
            if problem.startswith(self.path(relative)):
                raise StoreIntegrityError(f"{problem}; restore it from a copy of the run")

    def _file_problem(self, path: str, record: FileRecord, hashes: bool) -> str | None:
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return f"{path} is missing (the manifest records {record.bytes} bytes, sha256 {record.sha256})"
        size = int(info.get("size") or 0)
        if size != record.bytes:
            return (
                f"{path} has {size} bytes, its manifest records {record.bytes} bytes "
                f"(sha256 {record.sha256}): the committed file was truncated or modified"
            )
        if not hashes:
            return None
        key = (path, size, info.get("mtime", info.get("LastModified")))
        found = _VERIFIED.get(key) or self._digest(path)
        if found != record.sha256:
            return f"{path} has sha256 {found}, its manifest records {record.sha256}: the committed file was modified"
        _VERIFIED[key] = found
        return None

    def commit(self, round_id: int, manifest: dict[str, Any], files: list[FileRecord]) -> None:
        """Write the manifest last (after checking every listed file is in place), then move HEAD."""
        for record in files:
            if not self.fs.exists(self.round_path(round_id, record.path)):
                raise StoreError(f"cannot commit round {round_id}: {record.path} is missing")
        scratch = self.round_path(round_id, ".scratch") if self.is_local else self._remote_scratch(round_id)
        shutil.rmtree(scratch, ignore_errors=True)
        run_files = [
            asdict(self._record(name, None, (self.fs.size(self.path(name)), self._digest(self.path(name)))))
            for name in RUN_FILES
            if self.fs.exists(self.path(name))
        ]
        body = {
            **manifest,
            "round": round_id,
            "status": "committed",
            "files": [asdict(f) for f in files],
            "run_files": run_files,
        }
        body = json.loads(json.dumps(body))  # hashed as it will read back (JSON turns keys to strings)
        body[SELF_HASH] = manifest_digest(body)
        self._write_json(self.round_path(round_id, MANIFEST), body)
        self._write_bytes(self.path("HEAD"), f"{round_id}\n".encode())
        progress = self.round_path(round_id, PROGRESS)
        if self.fs.exists(progress):  # the journal of an open round; the manifest supersedes it
            self.fs.rm(progress)

    # -- atomic primitives ---------------------------------------------------------------------------
    def _write_bytes(self, path: str, data: bytes) -> str:
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        temporary = f"{parent}/.{path.rsplit('/', 1)[1]}.tmp-{uuid.uuid4().hex}"
        from storage.space import disk_space_guard

        try:
            with disk_space_guard(path if self.is_local else tempfile.gettempdir()):
                with self.fs.open(temporary, "wb") as handle:
                    handle.write(data)
                    if self.is_local:
                        handle.flush()
                        os.fsync(handle.fileno())
        except BaseException:
            if self.fs.exists(temporary):  # a partial temporary file only takes space
                self.fs.rm(temporary)
            raise
        self.fs.mv(temporary, path)
        return hashlib.sha256(data).hexdigest()

    def _write_json(self, path: str, body: dict[str, Any]) -> str:
        return self._write_bytes(path, json.dumps(body, indent=2, sort_keys=True).encode())

    def _read_json(self, path: str, fix: str) -> dict[str, Any]:
        """A JSON object from the store; anything else is an error naming the file and `fix`."""
        try:
            body = json.loads(self._read_bytes(path))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise StoreError(f"{path}: not valid JSON ({error}); {fix}") from error
        if not isinstance(body, dict):
            raise StoreError(f"{path}: expected a JSON object, found {type(body).__name__}; {fix}")
        return body

    def _digest(self, path: str) -> str:
        digest = hashlib.sha256()
        with self.fs.open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def _write_parquet(self, path: str, table: pa.Table) -> tuple[int, str]:
        data = parquet_bytes(table)
        return len(data), self._write_bytes(path, data)

    def _read_bytes(self, path: str) -> bytes:
        with self.fs.open(path, "rb") as handle:
            return handle.read()

    def _read_parquet(self, path: str, schema: pa.Schema | None) -> pa.Table:
        if not self.fs.exists(path):
            raise StoreError(f"missing file: {path}")
        try:
            with self.fs.open(path, "rb") as handle:
                table = pq.read_table(handle)
        except (pa.ArrowInvalid, OSError) as error:
            raise StoreError(f"unreadable Parquet file {path}: {error}") from error
        if schema is not None and table.schema.remove_metadata() != schema:
            raise StoreError(f"{path}: schema differs from the expected one:\n{table.schema}\nexpected:\n{schema}")
        return table

    def _record(self, relative: str, rows: int | None, size_and_digest: tuple[int, str]) -> FileRecord:
        size, digest = size_and_digest
        return FileRecord(relative, rows, size, digest)


def table_file(name: str) -> str:
    """The path of table `name` in its round's folder."""
    return f"{name}.parquet"


def lists_table(files: list[FileRecord], name: str) -> bool:
    """Whether `files` (a round's file records, committed or about to be) hold the table `name`."""
    return lists_file(files, table_file(name))


def lists_file(files: list[FileRecord], relative: str) -> bool:
    """Whether `files` (a round's file records, committed or about to be) hold the file `relative`."""
    return any(record.path == relative for record in files)


def parquet_bytes(table: pa.Table) -> bytes:
    """A table as the Parquet bytes the store writes (zstd)."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def manifest_digest(body: dict[str, Any]) -> str:
    """sha256 of a manifest's canonical JSON (sorted keys, no whitespace), without its own hash."""
    canonical = {key: value for key, value in body.items() if key != SELF_HASH}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def manifest_problems(body: dict[str, Any], round_id: int) -> list[str]:
    """What is wrong with the structure of a committed round's manifest (empty when nothing is)."""
    problems = []
    if body.get("round") != round_id:
        problems.append(f"'round' is {body.get('round')!r}, expected {round_id}")
    if body.get("status") != "committed":
        problems.append(f"'status' is {body.get('status')!r}, expected 'committed'")
    files = body.get("files")
    if not isinstance(files, list):
        return [*problems, f"'files' must be a list, found {type(files).__name__}"]
    for position, entry in enumerate([*files, *body.get("run_files", [])]):
        if not isinstance(entry, dict) or set(entry) != {"path", "rows", "bytes", "sha256"}:
            problems.append(f"file entry {position} must have exactly path, rows, bytes, sha256: {entry!r}")
        elif not (
            isinstance(entry["path"], str)
            and isinstance(entry["bytes"], int)
            and isinstance(entry["sha256"], str)
            and len(entry["sha256"]) == 64
            and (entry["rows"] is None or isinstance(entry["rows"], int))
        ):
            problems.append(f"file entry {position} has a field of the wrong type: {entry!r}")
    for key in ("metrics", "timings_s"):
        if key in body and not isinstance(body[key], dict):
            problems.append(f"'{key}' must be an object, found {type(body[key]).__name__}")
    return problems


def _file_digest(path: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return os.path.getsize(path), digest.hexdigest()
