"""What a resumed run continues, refuses and tests: best of its history, schedule length, settings."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import FAST
from hydra import compose, initialize_config_dir
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from lightning_labs.checkpoints.restore import load_checkpoint
from lightning_labs.runtime.config import config_path
from lightning_labs.training.run import train

# A cheap run: no logger, the weights zeroed from epoch 1 on (see ZeroWeightsFrom).
QUIET = ["logger=none", "seed=3", "+callbacks.spoil._target_=test_resume_policies.ZeroWeightsFrom"]


class ZeroWeightsFrom(Callback):
    """Zero the network before validating epoch ``epoch`` and later ones, so that validation
    accuracy falls after the best epoch whatever training did (all logits equal: class 0 wins)."""

    def __init__(self, epoch: int = 1) -> None:
        self.epoch = epoch

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.current_epoch >= self.epoch:
            with torch.no_grad():
                for param in pl_module.net.parameters():
                    param.zero_()


def compose_train(data_root: Path, output_dir: Path, *overrides: str) -> DictConfig:
    """The train config of a fast run writing into ``output_dir`` (``make_cfg`` for module fixtures)."""
    base = [f"paths.output_dir={output_dir}", f"paths.data_dir={data_root}", *FAST, *QUIET]
    with initialize_config_dir(config_path(), version_base="1.3"):
        return compose("train", overrides=[*base, *overrides])


@pytest.fixture(scope="module")
def outputs(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``outputs/`` holding one finished 2-epoch LeNet-5 run, ``train/first``, whose best epoch
    (0) is not its last: epoch 1 validates zeroed weights."""
    root = tmp_path_factory.mktemp("outputs")
    cfg = compose_train(data_root, root / "train" / "first", "trainer.max_epochs=2", "scheduler=step")
    metrics, objects = train(cfg)
    callback = objects["trainer"].checkpoint_callback
    assert load_checkpoint(callback.best_model_path)["epoch"] == 0
    assert metrics["val/acc"] < metrics["val/acc_best"]  # the fall this file relies on
    return root


def checkpoints(outputs: Path) -> Path:
    return outputs / "train" / "first" / "checkpoints"


def test_a_run_resumed_into_a_new_directory_tests_the_best_of_its_whole_history(
    outputs: Path, data_root: Path, tmp_path: Path
) -> None:
    first = load_checkpoint(checkpoints(outputs) / "best.ckpt")
    first_run = json.loads((outputs / "train" / "first" / "metrics.json").read_text())["metrics"]
    cfg = compose_train(
        data_root,
        tmp_path / "resumed",
        "trainer.max_epochs=3",  # StepLR has a fixed length: the run may be extended
        "scheduler=step",
        f"ckpt_path={checkpoints(outputs) / 'last.ckpt'}",
    )
    metrics, objects = train(cfg)

    best = tmp_path / "resumed" / "checkpoints" / "best.ckpt"
    assert objects["trainer"].current_epoch == 3  # epoch 2 trained (and validated worse)
    assert json.loads((tmp_path / "resumed" / "metrics.json").read_text())["best_checkpoint"] == str(best)
    tested = load_checkpoint(best)
    assert tested["epoch"] == 0
    assert all(torch.equal(tested["state_dict"][k], v) for k, v in first["state_dict"].items())
    assert metrics["val/acc"] < metrics["val/acc_best"] == pytest.approx(first_run["val/acc_best"])
    # The test accuracy is the first run's best epoch's, which it tested on the same batches.
    assert metrics["test/acc"] == pytest.approx(first_run["test/acc"])


def test_a_resume_whose_earlier_best_checkpoint_is_gone_is_refused(
    outputs: Path, data_root: Path, tmp_path: Path
) -> None:
    checkpoint = load_checkpoint(checkpoints(outputs) / "last.ckpt")
    for state in checkpoint["callbacks"].values():
        if state.get("best_model_path", "").endswith("best.ckpt"):
            state["best_model_path"] = str(tmp_path / "moved" / "best.ckpt")
    torch.save(checkpoint, tmp_path / "last.ckpt")
    cfg = compose_train(
        data_root,
        tmp_path / "resumed",
        "trainer.max_epochs=3",
        "scheduler=step",
        f"ckpt_path={tmp_path / 'last.ckpt'}",
    )
    with pytest.raises(FileNotFoundError, match=r"names .*moved/best\.ckpt as its best so far \(val/acc="):
        train(cfg)
    assert not (tmp_path / "resumed" / "checkpoints").exists()


@pytest.mark.parametrize(
    ("scheduler", "name", "length"),
    [("onecycle", "OneCycleLR", "total_steps=6"), ("cosine", "CosineAnnealingLR", "T_max=6")],
)
def test_extending_a_schedule_fitted_to_the_run_is_refused_before_training(
    make_cfg, tmp_path: Path, scheduler: str, name: str, length: str
) -> None:
    first = make_cfg(f"scheduler={scheduler}", "logger=none", f"paths.output_dir={tmp_path / 'first'}")
    train(first)
    longer = make_cfg(
        f"scheduler={scheduler}",
        "logger=none",
        "trainer.max_epochs=2",
        f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}",
        f"paths.output_dir={tmp_path / 'longer'}",
    )
    with pytest.raises(
        ValueError,
        match=rf"its {name} schedule has {length}, .* this run is 12 optimizer steps long\..*model\.weights=",
    ):
        train(longer)
    assert not (tmp_path / "longer" / "checkpoints" / "last.ckpt").exists()


@pytest.mark.parametrize(
    ("override", "difference"),
    [
        ("model.act=sigmoid", "model.net.act: 'relu' -> 'sigmoid'"),
        ("optimizer.lr=0.01", "optimizer.lr: 0.003 -> 0.01"),
        ("scheduler=none", "scheduler: {"),
    ],
)
def test_resuming_with_other_network_or_training_settings_is_refused_naming_them(
    outputs: Path, data_root: Path, tmp_path: Path, override: str, difference: str
) -> None:
    cfg = compose_train(
        data_root,
        tmp_path / "resumed",
        "trainer.max_epochs=3",
        "scheduler=step",
        override,
        f"ckpt_path={checkpoints(outputs) / 'last.ckpt'}",
    )
    with pytest.raises(ValueError, match="was trained with other settings") as refused:
        train(cfg)
    assert difference in str(refused.value) and "model.weights=" in str(refused.value)
    assert not (tmp_path / "resumed" / "checkpoints").exists()


@pytest.fixture
def foreign_runs(outputs: Path, tmp_path: Path) -> list[Path]:
    """Two newer last.ckpt in their own run folders under ``outputs``, of runs that cannot be
    continued by the first run's config: another network (ResNet-18), another scheduler."""
    others = {
        "model": {"name": "resnet18", "net": {"arch": "resnet18"}},
        "scheduler": {"_target_": "torch.optim.lr_scheduler.OneCycleLR"},
    }
    newer = (checkpoints(outputs) / "last.ckpt").stat().st_mtime + 60
    paths = []
    for group, config in others.items():
        checkpoint = load_checkpoint(checkpoints(outputs) / "last.ckpt")
        checkpoint["run_config"][group] = config
        path = outputs / "train" / f"{tmp_path.name}-{group}" / "checkpoints" / "last.ckpt"
        path.parent.mkdir(parents=True)
        torch.save(checkpoint, path)
        os.utime(path, (newer, newer))
        paths.append(path)
    yield paths
    for path in paths:
        path.unlink()


def test_ckpt_path_last_resumes_the_newest_run_of_this_model_and_data(
    outputs: Path, foreign_runs: list[Path], data_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = compose_train(
        data_root,
        tmp_path / "resumed",
        "trainer.max_epochs=2",  # as saved: nothing left to fit, the best is tested
        "scheduler=step",
        "ckpt_path=last",
        f"paths.log_dir={outputs}",
    )
    with caplog.at_level(logging.INFO):
        train(cfg)
    assert f"Resuming from {checkpoints(outputs) / 'last.ckpt'}" in caplog.text


def test_ckpt_path_last_without_a_run_of_this_model_lists_the_runs_found(
    outputs: Path, foreign_runs: list[Path], data_root: Path, tmp_path: Path
) -> None:
    cfg = compose_train(
        data_root, tmp_path / "resumed", "model=cnn", "ckpt_path=last", f"paths.log_dir={outputs}"
    )
    with pytest.raises(FileNotFoundError, match=r"none of the 3 checkpoints/last\.ckpt") as refused:
        train(cfg)
    message = str(refused.value)
    assert all(str(path) in message for path in foreign_runs)
    assert message.index(str(foreign_runs[1])) < message.index(str(checkpoints(outputs) / "last.ckpt"))
    assert "(model=cnn, data=MNISTData)" in message
    assert "model=lenet5, data=MNISTData; differs in model.name: 'lenet5' -> 'cnn'" in message
    assert "model=resnet18, data=MNISTData; differs in" in message
