"""End-to-end runs: few-step fits on real-format files, resume, eval, sweeps and clear errors."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.errors import MissingConfigException
from lightning.pytorch.callbacks import Callback
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_labs.checkpoints.restore import data_from_checkpoint, load_checkpoint, model_from_checkpoint
from lightning_labs.inference.evaluate import evaluate
from lightning_labs.training.run import build, train


def checkpoint_accuracy(path: Path, batches: int | None, k: int = 1) -> tuple[float, int]:
    """Top-k accuracy of ``path``'s network (eval mode) over the first ``batches`` of its data's
    test split, counted here from its predictions: (correct / images, images)."""
    checkpoint = load_checkpoint(path)
    net = model_from_checkpoint(checkpoint).net.eval()
    datamodule = data_from_checkpoint(checkpoint)
    datamodule.setup("test")
    correct = total = 0
    for batch in itertools.islice(datamodule.test_dataloader(), batches):
        images, labels = datamodule.on_after_batch_transfer(batch, 0)
        with torch.no_grad():
            top = net(images).topk(k, dim=1).indices
        correct += int((top == labels[:, None]).any(dim=1).sum())
        total += len(labels)
    return correct / total, total


def scalars(run_dir: Path, tag: str) -> list[float]:
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return [e.value for e in events.Scalars(tag)]


def test_lenet5_learns_mnist_digits_and_writes_its_outputs(make_cfg) -> None:
    cfg = make_cfg(
        "trainer.limit_train_batches=15",
        "trainer.max_epochs=2",
        "trainer.limit_val_batches=null",
        "trainer.limit_test_batches=null",
    )
    metrics, objects = train(cfg)
    run = Path(cfg.paths.output_dir)

    losses = scalars(run, "train/loss_step")
    assert len(losses) == 30 and sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    assert metrics["test/acc"] > 0.6  # chance is 0.1: real digits after 30 steps
    assert metrics["val/acc_best"] >= metrics["val/acc"] - 1e-6

    assert {p.name for p in (run / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["metrics"]["test/acc"] == pytest.approx(metrics["test/acc"])
    assert summary["global_step"] == 30 and summary["data"] == "mnist"
    assert {"val/acc", "val/loss", "val/acc_best", "lr-AdamW"} <= set(
        EventAccumulator(str(run / "tensorboard")).Reload().Tags()["scalars"]
    )
    assert objects["model"].hparams.net["in_channels"] == 1  # filled from the data


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=vgg11", "data=cifar10", "data.batch_size=16", "optimizer=sgd", "scheduler=step"],
        ["model=cnn", "data=cifar100", "data.batch_size=32", "optimizer=adam", "scheduler=cosine"],
        [
            "model=lenet5",
            "data=synthetic",
            "data.input_shape=[1,28,28]",
            "model.act=sigmoid",
            "model.pool=avg",
            "scheduler=none",
        ],
    ],
    ids=["vgg11-cifar10", "cnn-cifar100", "lenet5-synthetic"],
)
def test_each_model_fits_and_tests_on_its_data(make_cfg, overrides: list[str]) -> None:
    cfg = make_cfg(*overrides)
    metrics, objects = train(cfg)
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    # test/acc is the best checkpoint's over 2 test batches: k/n, counted here from its predictions.
    best = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    accuracy, images = checkpoint_accuracy(best, batches=cfg.trainer.limit_test_batches)
    assert images == 2 * cfg.data.batch_size
    assert metrics["test/acc"] == pytest.approx(accuracy, abs=1e-6) and "test/loss" in metrics
    assert objects["trainer"].global_step == 6
    assert (Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt").is_file()


def test_cnn_beats_chance_on_cifar_format_files(make_cfg) -> None:
    cfg = make_cfg(
        "model=cnn",
        "data=cifar10",
        "data.batch_size=20",
        "trainer.limit_train_batches=null",
        "trainer.max_epochs=3",
        "trainer.limit_val_batches=null",
        "trainer.limit_test_batches=null",
    )
    metrics, _ = train(cfg)
    assert metrics["test/acc"] > 0.3  # chance is 0.1


# Callbacks whose pictures and statistics a test of the figures does not need (they cost seconds).
PICTURES_OFF = [
    f"callbacks.{name}=null"
    for name in ("prediction_grid", "confusion_matrix", "feature_maps", "weight_histograms", "device_stats")
]


def test_evaluation_losses_are_the_plain_cross_entropy(make_cfg) -> None:
    """val/loss and test/loss leave out the training loss's label smoothing."""
    cfg = make_cfg("module.label_smoothing=0.1", *PICTURES_OFF)
    metrics, objects = train(cfg)
    model, datamodule = objects["model"], objects["datamodule"]  # one epoch: best = last weights
    model.eval()
    for stage, limit in (("val", cfg.trainer.limit_val_batches), ("test", cfg.trainer.limit_test_batches)):
        loader = getattr(datamodule, f"{stage}_dataloader")()
        batches = [datamodule.on_after_batch_transfer(b, 0) for b in itertools.islice(loader, limit)]
        with torch.no_grad():
            logits = torch.cat([model(images) for images, _ in batches])
        labels = torch.cat([labels for _, labels in batches])
        assert metrics[f"{stage}/loss"] == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5)


def test_each_epoch_logs_one_line_with_its_final_figures(make_cfg, caplog) -> None:
    """The line of epoch N holds epoch N's logged train/loss; the bar counts epochs from 1."""
    cfg = make_cfg(
        "trainer=cpu",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=6",
        "trainer.limit_val_batches=2",
        "trainer.check_val_every_n_epoch=2",  # epoch 1 has no validation: its line shows none
        "trainer.log_every_n_steps=1",
        "callbacks.model_facts=null",
        *PICTURES_OFF,
        fast=False,
    )
    objects = build(cfg)
    trainer, model = objects["trainer"], objects["model"]
    with caplog.at_level("INFO"):
        trainer.fit(model, datamodule=objects["datamodule"])
    lines = [r.getMessage() for r in caplog.records if r.name == "lightning_labs.callbacks.progress"]
    run = Path(cfg.paths.output_dir)
    train_losses, val_losses = scalars(run, "train/loss"), scalars(run, "val/loss")
    assert len(lines) == 2 and len(train_losses) == 2 and len(val_losses) == 1
    timing = r"; data \d+\.\d\d s \+ steps \d+\.\d\d s \(\d+% waiting for data\)"  # epoch_speed
    assert re.fullmatch(
        rf"Epoch 1/2: train/loss {train_losses[0]:.4f}, train/acc \d\.\d{{4}}, \d+\.\d s{timing}", lines[0]
    )
    assert re.fullmatch(
        rf"Epoch 2/2: train/loss {train_losses[1]:.4f}, train/acc \d\.\d{{4}}, "
        rf"val/loss {val_losses[0]:.4f}, val/acc \d\.\d{{4}}, \d+\.\d s{timing}",
        lines[1],
    )

    bar = trainer.progress_bar_callback
    task = bar.progress.tasks[bar.train_progress_bar_id]
    assert task.description.strip() == "Epoch 2/2"  # Lightning's own bar: "Epoch 1/1"
    shown = bar._metric_component.render(task).plain
    assert f"train/loss: {train_losses[1]:.3f}" in shown  # the last epoch's, not the one before


class CrashAtEpoch(Callback):
    """Stands in for a killed job: fails when the given epoch starts."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("simulated crash")


def test_a_crashed_run_resumes_from_last_checkpoint(make_cfg, tmp_path: Path) -> None:
    crashing = make_cfg(
        "trainer.max_epochs=2",
        f"+callbacks.crash._target_={__name__}.CrashAtEpoch",
        "+callbacks.crash.epoch=1",
    )
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(crashing)
    run = Path(crashing.paths.output_dir)
    last = run / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["global_step"] == 6  # the finished epoch survived the crash
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))

    resumed = make_cfg(
        "trainer.max_epochs=2", f"ckpt_path={last}", f"paths.output_dir={tmp_path / 'resumed'}"
    )
    metrics, objects = train(resumed)
    assert objects["trainer"].global_step == 12  # continued, not restarted
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")["epoch"] == 1
    assert "test/acc" in metrics


def test_eval_reproduces_the_test_accuracy_of_a_saved_checkpoint(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("trainer.limit_test_batches=null")
    metrics, _ = train(cfg)
    best = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    checkpoint = load_checkpoint(best)
    assert checkpoint["run_config"]["data"]["_target_"] == "lightning_labs.data.MNISTData"
    assert data_from_checkpoint(checkpoint).class_names[3] == "3 - three"  # kept for predictions

    eval_cfg = make_cfg(
        f"ckpt_path={best}",
        "trainer=cpu",
        "trainer.enable_progress_bar=false",
        f"paths.output_dir={tmp_path / 'eval'}",
        config_name="eval",
    )
    results = evaluate(eval_cfg)
    assert results["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    written = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert written["metrics"]["test/acc"] == results["test/acc"]
    assert written["trained_with"] == json.loads((best.parent.parent / "environment.json").read_text())


def test_checkpoints_with_pickled_objects_are_refused_unless_trusted(tmp_path: Path) -> None:
    path = tmp_path / "odd.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "extra": Path("x")}, path)
    with pytest.raises(ValueError, match="trust_checkpoint=true"):
        load_checkpoint(path)
    assert load_checkpoint(path, trusted=True)["extra"] == Path("x")
    (tmp_path / "broken.ckpt").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="not a complete PyTorch file"):
        load_checkpoint(tmp_path / "broken.ckpt")
    with pytest.raises(FileNotFoundError, match="No file at"):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_unknown_model_name_lists_the_available_ones(make_cfg) -> None:
    with pytest.raises(
        MissingConfigException, match=r"(?s)Could not find 'model/resnet9'.*cnn.*lenet5.*vgg11"
    ):
        make_cfg("model=resnet9")


def test_channel_mismatch_fails_before_training_naming_both_shapes(make_cfg) -> None:
    cfg = make_cfg("model=vgg11", "+model.net.in_channels=3")  # MNIST is 1x28x28
    with pytest.raises(ValueError, match=r"shape \(1, 28, 28\).*expecting 3 input channels"):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


def test_missing_dataset_folder_is_a_clear_error(make_cfg, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"batches-py lacks data_batch_1.*data.download=true"):
        train(make_cfg("data=cifar10", f"data.root={tmp_path / 'none'}"))


def test_resuming_from_a_bad_checkpoint_fails_before_training(make_cfg, tmp_path: Path) -> None:
    (tmp_path / "cut.ckpt").write_bytes(b"PK\x03\x04 cut off")
    cfg = make_cfg(f"ckpt_path={tmp_path / 'cut.ckpt'}")
    with pytest.raises(ValueError, match=r"cut\.ckpt: it is not a complete PyTorch file"):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["32-true", "16-mixed", "bf16-mixed"])
def test_gpu_trainer_learns_with_each_precision(make_cfg, precision: str) -> None:
    cfg = make_cfg(
        "trainer=gpu",
        f"trainer.precision={precision}",
        "trainer.limit_train_batches=15",
        "trainer.max_epochs=2",
        "trainer.limit_test_batches=null",
    )
    metrics, objects = train(cfg)
    assert objects["trainer"].strategy.root_device.type == "cuda"
    assert metrics["test/acc"] > 0.6
    # the in-memory splits were kept on the GPU: batches cut and augmented there, nothing to pin
    datamodule = objects["datamodule"]
    assert datamodule.train_set.device.type == datamodule.test_set.device.type == "cuda"
    assert not datamodule.pins_memory(datamodule.train_set)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_per_sample_batches_on_a_gpu_come_from_pinned_memory(make_cfg) -> None:
    cfg = make_cfg("trainer=gpu", "data.pipeline=per_sample", "trainer.limit_train_batches=5")
    metrics, objects = train(cfg)
    datamodule = objects["datamodule"]
    assert datamodule.train_set.device.type == "cpu"  # per-sample transforms run on the host
    assert datamodule.train_dataloader().pin_memory
    assert metrics["test/acc"] > 0.1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_gpu_trainer_without_a_gpu_says_what_to_use(make_cfg) -> None:
    with pytest.raises(RuntimeError, match="trainer=cpu"):
        train(make_cfg("trainer=gpu"))


def test_command_line_multirun_gives_one_directory_per_job(tmp_path: Path, data_root: Path) -> None:
    sweep = tmp_path / "sweep"
    command = [
        sys.executable,
        "-m",
        "lightning_labs.train",
        "-m",
        "model.pool=max,avg",
        f"hydra.sweep.dir={sweep}",
        f"paths.data_dir={data_root}",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
    ]
    env = {**os.environ, "COLUMNS": "120"}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1"]
    pools = set()
    for job in jobs:
        accuracy, images = checkpoint_accuracy(job / "checkpoints" / "best.ckpt", batches=1)
        assert images == 64  # one test batch of data=mnist
        test_acc = json.loads((job / "metrics.json").read_text())["metrics"]["test/acc"]
        assert test_acc == pytest.approx(accuracy, abs=1e-6)
        assert list((job / "tensorboard").glob("events.out.tfevents.*"))
        log = (job / "train.log").read_text()
        assert log.count("Testing the best checkpoint") == 1
        assert log.count("Epoch 1/1: train/loss ") == 1  # the per-epoch line, in the log file too
        assert log.count("Restoring states from the checkpoint") == 1  # Lightning's messages, once
        overrides = json.loads((job / "metrics.json").read_text())["overrides"]
        pools |= {o.removeprefix("model.pool=") for o in overrides if o.startswith("model.pool=")}
    assert pools == {"max", "avg"}
    # ... and once on the console: Lightning's own handler ("INFO: ...") was replaced by the run's
    assert not re.search(r"^INFO: ", result.stdout + result.stderr, re.MULTILINE)


class TinyUserNet(torch.nn.Module):
    """Stands in for a user's own network in their own package."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(in_channels, width, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(width, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_a_users_own_network_plugs_in_from_the_command_line(make_cfg) -> None:
    cfg = make_cfg("model=custom", f"model.net._target_={__name__}.TinyUserNet", "+model.net.width=8")
    metrics, objects = train(cfg)
    net = objects["model"].net
    assert isinstance(net, TinyUserNet) and net.body[0].in_channels == 1 and net.body[0].out_channels == 8
    assert "test/acc" in metrics
    checkpoint = load_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert checkpoint["hyper_parameters"]["net"]["_target_"].endswith("TinyUserNet")


@pytest.mark.slow  # 15 epochs: 30 s on a quiet machine, minutes on a busy one (make test ARGS="-m slow")
def test_default_recipe_reaches_98_percent_on_the_bundled_mnist_sample(tmp_path: Path) -> None:
    """The README's main job, as shipped: LeNet-5, bundled real digits, 15 epochs."""
    from hydra import compose, initialize_config_dir

    from lightning_labs.runtime.config import config_path

    overrides = [
        f"paths.output_dir={tmp_path}",
        f"paths.data_dir={tmp_path / 'no-full-mnist-here'}",
        "trainer=cpu",
        "trainer.enable_progress_bar=false",
        "callbacks.rich_progress_bar=null",
    ]
    with initialize_config_dir(config_path(), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    metrics, _ = train(cfg)
    assert metrics["test/acc"] >= 0.98
