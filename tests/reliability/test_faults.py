"""Numerical faults, full disks, dead DataLoader workers and hostile checkpoint files."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
from pathlib import Path

import pytest
import torch
from cli import QUICK, run_tool
from data_files import write_image_folder
from torch.utils.data import Dataset

from lightning_labs.checkpoints import atomic_io as checkpoint_io
from lightning_labs.checkpoints.atomic_io import AtomicCheckpointIO
from lightning_labs.checkpoints.restore import load_checkpoint
from lightning_labs.data import ClassificationData, FolderData
from lightning_labs.training.run import train


def nan_run(data_root: Path, run_dir: Path, *extra: str):
    return run_tool(
        "train",
        *QUICK,
        f"paths.data_dir={data_root}",
        f"hydra.run.dir={run_dir}",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=12",
        "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=2",
        "callbacks.step_checkpoint.every_n_train_steps=5",
        "+callbacks.fault._target_=fault_probes.NaNBatchAtStep",
        "+callbacks.fault.step=7",
        *extra,
    )


def test_a_nan_loss_stops_the_run_naming_the_step_and_the_last_good_checkpoint(
    data_root: Path, tmp_path: Path
) -> None:
    result = nan_run(data_root, tmp_path)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1
    assert "NonFiniteLossError: The training loss is nan at step 7 (epoch 1, batch 8)" in output
    assert f"Last good checkpoint: {tmp_path / 'checkpoints' / 'last.ckpt'} (step 5, training loss " in output
    good = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert good["global_step"] == 5
    assert all(torch.isfinite(t).all() for name, t in good["state_dict"].items() if name.startswith("net."))
    assert "Traceback" not in output


def test_a_nan_loss_can_be_skipped_on_request(data_root: Path, tmp_path: Path) -> None:
    result = nan_run(data_root, tmp_path, "module.on_nonfinite_loss=skip")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        " ".join((result.stdout + result.stderr).split()).count("at step 7 (epoch 1, batch 8): batch skipped")
        == 1
    )
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["metrics"]["test/acc"] > 0.2  # the weights were not spoiled (chance: 0.1)


def test_a_nan_stop_does_not_call_a_diverged_checkpoint_good(data_root: Path, tmp_path: Path) -> None:
    diverge = ["+callbacks.diverge._target_=fault_probes.DivergeAtStep", "+callbacks.diverge.step=3"]
    result = nan_run(data_root, tmp_path, *diverge)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1
    assert "Last good checkpoint" not in output
    assert (
        "No checkpoint was saved while training was sound (training loss below 3 ln(classes) = 6.91" in output
    )
    assert "last.ckpt (step 5, training loss " in output


def test_skipping_most_batches_stops_the_run(data_root: Path, tmp_path: Path) -> None:
    broken = ["+callbacks.broken._target_=fault_probes.NaNBatchesFrom", "+callbacks.broken.batch=3"]
    result = nan_run(data_root, tmp_path, "module.on_nonfinite_loss=skip", *broken)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1
    assert (
        "NonFiniteLossError: 2 of this epoch's 12 batches had a non-finite loss and were skipped, more "
        "than module.max_skipped_fraction=0.1" in output
    )
    assert not (tmp_path / "metrics.json").exists()


def test_an_interrupted_save_leaves_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1, "weights": torch.ones(3)}, path)

    def disk_full(obj: object, file) -> None:
        file.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint_io.torch, "save", disk_full)
    with pytest.raises(OSError, match=r"No space left on device.*the previous .*last.ckpt is unchanged"):
        io.save_checkpoint({"step": 2, "weights": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"] == 1
    assert os.listdir(path.parent) == ["last.ckpt"]  # no temporary file left behind


def test_a_full_disk_during_training_keeps_the_last_checkpoint(make_cfg, monkeypatch) -> None:
    cfg = make_cfg("trainer.max_epochs=3", "test=false")
    real_save, saves = torch.save, []

    def fill_up_on_the_third_save(obj: object, file) -> None:
        saves.append(obj)
        if len(saves) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(obj, file)

    monkeypatch.setattr(checkpoint_io.torch, "save", fill_up_on_the_third_save)
    with pytest.raises(OSError, match=r"Could not save the checkpoint .*No space left on device"):
        train(cfg)
    monkeypatch.undo()
    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    assert load_checkpoint(checkpoints / "last.ckpt")["epoch"] == 0  # epoch 0's save, intact


class KillsItsWorker(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> torch.Tensor:
        os.kill(os.getpid(), signal.SIGKILL)
        return torch.zeros(1)


class LoaderOnly(ClassificationData):
    name = "loader-only"
    input_shape = (1, 1, 1)


@pytest.mark.timeout(60)  # a hang fails this test, and the suite goes on
def test_a_dataloader_worker_that_dies_is_an_error_not_a_hang() -> None:
    loader = LoaderOnly(batch_size=2, num_workers=1)._loader(KillsItsWorker(), train=False)
    with pytest.raises(RuntimeError, match=r"DataLoader worker .* (exited unexpectedly|killed)"):
        next(iter(loader))


class RunsCode:
    """A pickle that, once unpickled, would write a file: what a hostile checkpoint can do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "the payload ran"))


def test_a_malicious_checkpoint_is_not_executed(tmp_path: Path, data_root: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "payload": RunsCode(marker)}, hostile)

    with pytest.raises(ValueError, match=r"could run code from the file.*trust_checkpoint=true"):
        load_checkpoint(hostile)
    result = run_tool(
        "eval",
        "trainer=cpu",
        f"paths.data_dir={data_root}",
        f"paths.log_dir={tmp_path}",
        f"ckpt_path={hostile}",
    )
    assert result.returncode == 1 and "trust_checkpoint=true" in " ".join(
        result.stderr.split() + result.stdout.split()
    )
    assert not marker.exists()

    load_checkpoint(hostile, trusted=True)  # the explicit opt-in: the risk is real
    assert marker.read_text() == "the payload ran"


def test_a_whole_pickled_model_is_refused_with_the_way_to_opt_in(tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    torch.save(torch.nn.Linear(2, 2), path)  # what torch.save(model) in the labs writes
    with pytest.raises(ValueError, match=r"beyond tensors and plain values.*trust_checkpoint=true"):
        load_checkpoint(path)


def test_unreadable_images_are_skipped_by_name_when_asked(tmp_path: Path, caplog) -> None:
    classes = write_image_folder(tmp_path, classes=2, per_class=4, size=32)
    bad = sorted((tmp_path / "train" / classes[1]).iterdir())[2]
    bad.write_bytes(bad.read_bytes()[:200])
    settings = {"root": str(tmp_path), "image_size": 32, "resize_size": 32, "batch_size": 3, "num_workers": 0}

    failing = FolderData(**settings)
    failing.setup("fit")
    with pytest.raises(OSError, match=f"Could not read the image {bad}"):
        list(failing._loader(failing.datasets["train"], train=False, collate_fn=failing._collate))

    skipping = FolderData(**settings, bad_images="skip")
    skipping.setup("fit")
    with caplog.at_level(logging.WARNING):
        batches = list(
            skipping._loader(skipping.datasets["train"], train=False, collate_fn=skipping._collate)
        )
    assert sum(len(labels) for _, labels in batches) == 7  # 8 images, one unreadable
    assert f"Skipped: Could not read the image {bad}" in caplog.text
