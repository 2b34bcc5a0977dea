"""Storage faults on real files: damaged checkpoints, a really full disk, leftovers of killed saves."""

from __future__ import annotations

import logging
import logging.config
import os
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from lightning_labs.checkpoints.atomic_io import AtomicCheckpointIO
from lightning_labs.checkpoints.restore import load_checkpoint
from lightning_labs.checkpoints.safe_load import torch_load
from lightning_labs.runtime.config import CONFIG_DIR

MARKER = torch.arange(4096, dtype=torch.float32)  # bytes easy to find in the file


def flip_bits(path: Path, needle: bytes, bits: int = 3) -> None:
    """Flip ``bits`` bits in the middle of ``needle``'s bytes inside the file, as a bad disk would."""
    data = bytearray(path.read_bytes())
    at = data.index(needle) + len(needle) // 2
    for i in range(bits):
        data[at + 97 * i] ^= 1 << i
    path.write_bytes(bytes(data))


def test_a_checkpoint_with_flipped_bits_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "best.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": MARKER}, "hyper_parameters": {}}, path)
    flip_bits(path, MARKER.numpy().tobytes())
    # torch.load itself does not notice: the weights come back slightly wrong.
    quietly_wrong = torch.load(path, weights_only=True)["state_dict"]["w"]
    assert not torch.equal(quietly_wrong, MARKER)
    for load in (torch_load, load_checkpoint, AtomicCheckpointIO().load_checkpoint):
        with pytest.raises(ValueError, match=rf"{path} is damaged: the checksum of its entry .*data/0"):
            load(path)


def test_a_zip_that_is_not_a_checkpoint_gets_the_bad_file_message(tmp_path: Path) -> None:
    path = tmp_path / "photos.ckpt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cat.txt", "not a network")
    with pytest.raises(ValueError, match=rf"Could not read {path}: it is not a complete PyTorch file"):
        load_checkpoint(path)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 3 MB tmpfs, so that a save runs out of space the way it does on a full disk."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"this machine does not allow mounting a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_really_full_disk_keeps_the_previous_checkpoint_and_no_temporary(small_disk: Path) -> None:
    path = small_disk / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1, "w": MARKER}, path)
    big = {"step": 2, "w": torch.zeros(1_000_000)}  # 4 MB: more than the disk holds
    with pytest.raises(OSError, match=rf"Could not save the checkpoint {path} \(No space left on device\): "):
        io.save_checkpoint(big, path)
    assert os.listdir(path.parent) == ["last.ckpt"]  # the half-written temporary file is gone
    assert torch_load(path)["step"] == 1


def test_temporaries_of_killed_saves_are_removed_but_not_those_of_live_ones(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = folder / f".last.ckpt.{dead.pid}.tmp"
    live = folder / f".last.ckpt.{os.getppid()}.tmp"
    stale.write_bytes(b"PK half a checkpoint")
    live.write_bytes(b"PK being written")
    AtomicCheckpointIO().save_checkpoint({"step": 1}, folder / "last.ckpt")
    assert sorted(p.name for p in folder.iterdir()) == sorted(["last.ckpt", live.name])


def file_logger(path: Path) -> logging.Logger:
    """A logger writing to ``path`` through the run log handler of conf/hydra/default.yaml."""
    spec = OmegaConf.to_container(OmegaConf.load(Path(CONFIG_DIR) / "hydra" / "default.yaml"))
    handler = {**spec["job_logging"]["handlers"]["file"], "filename": str(path)}
    del handler["formatter"], handler["filters"]
    name = f"run_log_{path.parent.name}"
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"file": handler},
            "loggers": {name: {"handlers": ["file"], "level": "INFO", "propagate": False}},
        }
    )
    return logging.getLogger(name)


def test_the_run_log_writes_file_names_that_are_not_utf8_escaped(tmp_path: Path, capsys) -> None:
    name = os.fsdecode(b"bad\xff.jpg")  # how Python names such a file: 'bad\udcff.jpg'
    file_logger(tmp_path / "train.log").warning("Skipped: %s", name)
    assert "Logging error" not in capsys.readouterr().err
    assert "Skipped: bad\\udcff.jpg" in (tmp_path / "train.log").read_text()


def test_a_full_disk_under_the_run_log_is_said_once(small_disk: Path, capsys) -> None:
    log = file_logger(small_disk / "train.log")
    log.info("before the disk filled up")
    (small_disk / "filler").write_bytes(
        b"\0" * (os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize)
    )
    for step in range(200):
        log.info("step %d of a run on a full disk", step)
    err = capsys.readouterr().err
    assert err.count("Could not write the log file") == 1
    assert f"{small_disk / 'train.log'} (No space left on device): messages go to the console only" in err
    assert "Logging error" not in err
