"""A full disk on a real, small tmpfs: one clear error naming the path and the free space, nothing partial left,
committed data unchanged; half-written training checkpoints are discarded before a trainer resumes."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import torch
from safetensors.torch import save_file
from transformers.trainer_utils import get_last_checkpoint

from storage import RunStore
from storage.space import DiskFullError, discard_incomplete_checkpoints, disk_space_guard


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs; the test is skipped where this process may not mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def _noise(n_bytes: int) -> pa.Table:
    return pa.table({"blob": [os.urandom(n_bytes)]})


def test_a_full_disk_is_one_clear_error_and_committed_data_is_unchanged(small_disk: Path) -> None:
    store = RunStore(str(small_disk / "runs"), "demo")
    store.create("run_name: demo\n", _noise(1000))
    store.begin_round(0)
    store.commit(0, {"metrics": {}}, [store.write_table(0, "dataset", _noise(1000))])
    committed = {path: Path(path).read_bytes() for path in store.fs.find(store.root)}
    store.begin_round(1)
    with pytest.raises(DiskFullError) as caught:
        store.write_table(1, "dataset", _noise(3 * 2**20))
    message = str(caught.value)
    assert f"no space left on the disk holding {store.round_path(1, 'dataset.parquet')}" in message
    assert "MiB free" in message and "flywheel resume" in message
    assert not [name for name in store.fs.find(store.root) if ".tmp-" in name]  # the partial file was removed
    assert {path: Path(path).read_bytes() for path in committed} == committed
    assert store.read_table(0, "dataset", _noise(1).schema).num_rows == 1
    store.write_table(1, "dataset", _noise(1000))  # the space it took is free again


def test_a_torch_save_that_runs_out_of_space_is_reported_as_a_full_disk(small_disk: Path) -> None:
    target = small_disk / "checkpoint.pt"
    with pytest.raises(DiskFullError, match="no space left on the disk holding"):
        with disk_space_guard(str(small_disk)):
            torch.save(torch.zeros(2**20), target)  # 4 MiB on a 2 MiB disk


def test_an_error_that_is_not_a_full_disk_passes_through(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unrelated"):
        with disk_space_guard(str(tmp_path)):
            raise ValueError("unrelated")


def _checkpoint(folder: Path, step: int, state: bool = True) -> None:
    folder.mkdir(parents=True)
    save_file({"w": torch.ones(4)}, str(folder / "model.safetensors"))
    if state:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))


def test_half_written_checkpoints_are_discarded_before_resuming(tmp_path: Path) -> None:
    output = tmp_path / f"sft-{uuid.uuid4().hex[:6]}"
    _checkpoint(output / "checkpoint-10", 10)
    _checkpoint(output / "checkpoint-20", 20, state=False)  # killed (or out of space) before trainer_state.json
    _checkpoint(output / "checkpoint-30", 30)
    weights = output / "checkpoint-30" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:20])  # cut short
    assert get_last_checkpoint(str(output)) == str(output / "checkpoint-30")
    removed = discard_incomplete_checkpoints(str(output))
    assert removed == [str(output / "checkpoint-20"), str(output / "checkpoint-30")]
    assert get_last_checkpoint(str(output)) == str(output / "checkpoint-10")
    assert discard_incomplete_checkpoints(str(tmp_path / "absent")) == []
