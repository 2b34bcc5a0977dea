"""What a run shows in TensorBoard (curves, pictures, histograms, graph, hparams), read back from events."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra import compose, initialize_config_dir
from lightning.pytorch.loggers import TensorBoardLogger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from lightning_labs.callbacks.inside import WeightHistograms, conv_stages, record_outputs
from lightning_labs.inference.pictures import confusion_figure, prediction_grid
from lightning_labs.models import LeNet5, build_net
from lightning_labs.runtime.config import config_path, to_plain
from lightning_labs.training.run import train


def events(run_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(
        str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0, "histograms": 0}
    )
    return accumulator.Reload()


def test_a_short_run_logs_curves_pictures_histograms_graph_and_hparams(make_cfg) -> None:
    cfg = make_cfg("trainer.max_epochs=2", "trainer.limit_test_batches=null")
    metrics, _ = train(cfg)
    run = Path(cfg.paths.output_dir)
    tags = events(run).Tags()

    scalars = set(tags["scalars"])
    assert {
        "train/loss",
        "train/acc",
        "val/loss",
        "val/acc",
        "val/acc_best",
        "test/acc",
        "lr-AdamW",
    } <= scalars
    assert {
        "time/epoch_seconds",
        "time/images_per_second",
        "time/data_seconds",
        "time/step_seconds",
    } <= scalars
    # DeviceUsage (psutil): three CPU cards in one group, not DeviceStatsMonitor's dozen with swap.
    assert {tag for tag in scalars if tag.startswith("device/")} == {
        "device/cpu_percent",
        "device/cpu_percent_mean",
        "device/cpu_percent_peak",
    }
    assert not [tag for tag in scalars if "DeviceStatsMonitor" in tag or "swap" in tag]

    images = set(tags["images"])
    assert {"predictions/test", "confusion_matrix/test", "feature_maps/input"} <= images
    assert {"feature_maps/features.0", "feature_maps/features.3"} <= images  # LeNet-5's two conv stages
    accumulator = events(run)
    assert len(accumulator.Images("feature_maps/features.0")) == 2  # one per epoch
    grid = Image.open(io.BytesIO(accumulator.Images("predictions/test")[-1].encoded_image_string))
    assert grid.width > 2 * grid.height > 600  # 4 rows x 10 columns, legible

    assert {"weights/features.0.weight", "weights/classifier.2.weight"} <= set(tags["histograms"])
    assert tags["graph"]
    assert "_hparams_/experiment" in accumulator.PluginTagToContent("hparams")
    # Each epoch trains 6 batches of 64 images in at most its epoch_seconds (which add validation).
    rates = [e.value for e in accumulator.Scalars("time/images_per_second")]
    seconds = [e.value for e in accumulator.Scalars("time/epoch_seconds")]
    assert len(rates) == len(seconds) == 2 and metrics["time/images_per_second"] == pytest.approx(rates[-1])
    assert all(
        rate * epoch_seconds >= 6 * 64 * (1 - 1e-6)
        for rate, epoch_seconds in zip(rates, seconds, strict=True)
    )
    assert json.loads((run / "environment.json").read_text())["torch"] == torch.__version__


def test_the_prediction_grid_captions_prediction_and_label_and_marks_mistakes() -> None:
    images = torch.rand(12, 1, 28, 28)
    labels = [i % 10 for i in range(12)]
    predictions = [*labels[:10], 7, 7]  # the last two: 0 and 1 predicted as 7
    names = [f"digit {i}" for i in range(10)]
    figure = prediction_grid(images, labels, predictions, names, columns=5)
    axes = [a for a in figure.axes if a.get_title()]
    assert len(axes) == 12 and len(figure.axes) == 15  # 3 rows x 5, three cells left empty
    assert axes[3].get_title() == "digit 3 / digit 3"
    assert axes[10].get_title() == "digit 7 / digit 0"
    colours = [a.title.get_color() for a in axes]
    assert colours[:10] == ["tab:green"] * 10 and colours[10:] == ["tab:red"] * 2


def test_the_confusion_matrix_names_classes_and_writes_counts() -> None:
    counts = torch.tensor([[5, 1], [0, 3]])
    figure = confusion_figure(counts, ["cat", "dog"], annotate=True)
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["cat", "dog"]
    assert axes.get_xlabel() == "predicted class" and axes.get_ylabel() == "true class"
    assert sorted(t.get_text() for t in axes.texts) == ["0", "1", "3", "5"]


def test_feature_maps_default_to_the_last_convolution_of_each_resolution() -> None:
    lenet = LeNet5(in_channels=1, num_classes=10)
    assert conv_stages(lenet, torch.zeros(1, 1, 28, 28)) == ["features.0", "features.3"]  # not 1x1 C5
    vgg = build_net(
        {"_target_": "lightning_labs.models.ConvNet", "layers": [8, "M", 8, 8, "M", 16]}, (), None
    )
    assert conv_stages(vgg, torch.zeros(1, 3, 32, 32)) == ["features.0", "features.7", "features.11"]


def test_an_unknown_feature_map_layer_lists_the_convolutions() -> None:
    lenet = LeNet5(in_channels=1, num_classes=10)
    with pytest.raises(ValueError, match=r"no layer named \['conv9'\].*features\.0.*lightning_labs.inspect"):
        record_outputs(lenet, ["conv9"], torch.zeros(1, 1, 28, 28))


def test_switching_the_pictures_off_leaves_the_curves(make_cfg) -> None:
    off = [f"callbacks.{name}=null" for name in ("prediction_grid", "confusion_matrix", "feature_maps")]
    cfg = make_cfg(*off, "callbacks.weight_histograms=null", "logger.tensorboard.log_graph=false")
    train(cfg)
    tags = events(Path(cfg.paths.output_dir)).Tags()
    assert not tags["images"] and not tags["histograms"] and not tags["graph"]
    assert "val/acc" in tags["scalars"]


EXPERIMENTS = {
    "lenet5_mnist": ("train", {"model.act": "sigmoid", "model.pool": "avg", "trainer.max_epochs": 15}),
    "vgg11_cifar10": (
        "train",
        {
            "model.name": "vgg11",
            "optimizer.lr": 0.4,
            "optimizer.momentum": 0.9,
            "optimizer.weight_decay": 5e-4,
            "data.batch_size": 512,
            "trainer.max_epochs": 20,
            "scheduler._target_": "torch.optim.lr_scheduler.OneCycleLR",
            "scheduler.max_lr": 0.4,
        },
    ),
    "cnn_cifar10": ("train", {"model.name": "cnn", "data.variant": "cifar10", "trainer.max_epochs": 20}),
    "resnet50_imagenet_ddp": (
        "train",
        {
            "model.name": "resnet50",
            "data.name": "imagenet",
            "optimizer.lr": 0.1,
            "optimizer.weight_decay": 1e-4,
            "optimizer.scale_lr": "linear",
            "optimizer.base_batch_size": 256,
            "scheduler.step_size": 5,
            "scheduler.gamma": 0.2,
            "trainer.max_epochs": 20,
            "trainer.strategy._target_": "lightning.pytorch.strategies.DDPStrategy",
        },
    ),
    "resnet50_cpu_vs_gpu_latency": (
        "benchmark",
        {"model.name": "resnet50", "num_classes": 1000, "input_shape": [3, 224, 224]},
    ),
}


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_each_lab_preset_composes_with_its_recipe(name: str, tmp_path: Path) -> None:
    entry, expected = EXPERIMENTS[name]
    overrides = [f"experiment={name}", "paths.data_dir=/data", f"paths.output_dir={tmp_path}"]
    with initialize_config_dir(config_path(), version_base="1.3"):
        plain = to_plain(compose(entry, overrides=overrides))
    for key, value in expected.items():
        node = plain
        for part in key.split("."):
            node = node[part]
        assert node == value, key


def test_the_sweep_preset_runs_the_pooling_by_activation_grid() -> None:
    with initialize_config_dir(config_path(), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=pool_act_sweep"], return_hydra_config=True)
    assert dict(cfg.hydra.sweeper.params) == {"model.pool": "max,avg", "model.act": "relu,sigmoid"}


def test_a_weight_tensor_with_nan_or_inf_gets_a_warning_instead_of_a_histogram(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A diverged network's histograms: TensorBoard cannot bin inf, and the run must not crash on it."""
    logger = TensorBoardLogger(tmp_path, name="tensorboard", version="")
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight[0, 0] = float("inf")
    trainer = SimpleNamespace(is_global_zero=True, loggers=[logger], current_epoch=0, global_step=5)
    WeightHistograms().on_train_epoch_end(trainer, SimpleNamespace(net=net))
    logger.experiment.flush()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert events.Tags()["histograms"] == ["weights/1.weight"]
    assert "weights/0.weight holds NaN or inf values after epoch 1" in caplog.text
