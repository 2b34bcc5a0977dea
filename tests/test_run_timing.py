"""Where a run's time goes (data vs steps), how busy the device is, per-epoch points of short
epochs, named learning-rate groups, and the model's size in metrics.json."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch
from conftest import FAST
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_labs.callbacks import DeviceUsage, EpochSpeed
from lightning_labs.callbacks.progress import summary_line
from lightning_labs.runs.report import usage_line
from lightning_labs.runtime.config import config_path
from lightning_labs.training.run import train

# LeNet-5 on 1x28x28 MNIST, counted by hand: conv 6@5x5 pad 2 (28x28), conv 16@5x5 (10x10),
# conv 120@5x5 (1x1), fc 120->84, fc 84->10; pooling makes no multiply-accumulates.
LENET5_PARAMS = 156 + 2416 + 48120 + 10164 + 850
LENET5_MACS = 6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 120 * 400 + 120 * 84 + 84 * 10


@pytest.fixture(scope="module")
def short_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two epochs of 6 steps with Lightning's default logging interval of 50 steps, the
    convolutions frozen for the first epoch (no model_facts callback: FAST switches it off)."""
    out = tmp_path_factory.mktemp("timing") / "run"
    overrides = [
        f"paths.output_dir={out}",
        f"paths.data_dir={data_root}",
        *FAST,
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=50",
        "optimizer=sgd",
        "model.freeze=[features]",
        "model.unfreeze_at_epoch=1",
        "test=false",
    ]
    with initialize_config_dir(config_path(), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(cfg)
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0}).Reload()
    return {
        "summary": json.loads((out / "metrics.json").read_text()),
        "events": events,
        "warnings": [str(w.message) for w in caught],
    }


def scalars(events: EventAccumulator, tag: str) -> list[float]:
    return [event.value for event in events.Scalars(tag)]


def test_data_and_step_time_add_up_to_the_training_part_of_each_epoch(short_run) -> None:
    events = short_run["events"]
    data, step = scalars(events, "time/data_seconds"), scalars(events, "time/step_seconds")
    epochs = scalars(events, "time/epoch_seconds")
    assert len(data) == len(step) == len(epochs) == 2
    for d, s, e in zip(data, step, epochs, strict=True):
        assert d > 0 and s > 0
        assert d + s <= e  # the epoch adds validation
        assert d + s >= 0.5 * e  # 6 training steps outweigh 2 validation batches
    metrics = short_run["summary"]["metrics"]
    assert metrics["time/data_seconds"] == pytest.approx(data[-1])
    assert metrics["time/step_seconds"] == pytest.approx(step[-1])


class SlowData(Dataset):
    """Each item takes ``seconds`` to load."""

    def __init__(self, seconds: float, length: int) -> None:
        self.seconds, self.length = seconds, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        time.sleep(self.seconds)
        return torch.zeros(4), torch.tensor(0)


class SlowSteps(L.LightningModule):
    """Training steps of ``step`` seconds, validation steps of ``validation`` seconds."""

    def __init__(self, step: float, validation: float) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 2)
        self.step, self.validation = step, validation

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        time.sleep(self.step)
        return nn.functional.cross_entropy(self.layer(batch[0]), batch[1])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        time.sleep(self.validation)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_slow_loading_counts_as_data_time_and_validation_as_neither() -> None:
    # 6 batches loading in 40 ms, steps of 5 ms; 2 validation batches of 100 ms every 3 steps.
    trainer = L.Trainer(
        max_epochs=1,
        val_check_interval=3,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[EpochSpeed()],
    )
    loader = DataLoader(SlowData(0.04, 6), batch_size=1)
    validation = DataLoader(SlowData(0.0, 2), batch_size=1)
    trainer.fit(SlowSteps(step=0.005, validation=0.1), loader, validation)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    data, step = metrics["time/data_seconds"], metrics["time/step_seconds"]
    assert 6 * 0.04 <= data < 6 * 0.04 + 0.3  # two validations (0.4 s) would push it past
    assert 6 * 0.005 <= step < data
    assert data + step + 2 * 2 * 0.1 <= metrics["time/epoch_seconds"]
    assert metrics["time/images_per_second"] == pytest.approx(6 / (data + step))


def test_on_the_cpu_device_cards_hold_the_cpu_and_no_gpu_figures(short_run) -> None:
    tags = short_run["events"].Tags()["scalars"]
    device = sorted(tag for tag in tags if tag.startswith("device/"))
    assert device == ["device/cpu_percent", "device/cpu_percent_mean", "device/cpu_percent_peak"]
    assert not [tag for tag in tags if "DeviceStatsMonitor" in tag or "swap" in tag]
    events = short_run["events"]
    assert [event.step for event in events.Scalars("device/cpu_percent")] == [5, 11]  # as the lr points
    points = scalars(events, "device/cpu_percent")
    assert all(0 < p <= 100 * torch.get_num_threads() + 50 for p in points)  # 100 = one core
    metrics = short_run["summary"]["metrics"]
    # The last epoch has one point, over the same span as the mean.
    assert metrics["device/cpu_percent_mean"] == pytest.approx(points[-1], rel=1e-6)
    assert metrics["device/cpu_percent_peak"] == pytest.approx(points[-1], rel=1e-6)
    assert not [name for name in metrics if name.startswith("device/gpu")]  # absent, not 0


def test_short_epochs_log_the_learning_rate_and_loss_once_per_epoch_by_group_name(short_run) -> None:
    events = short_run["events"]
    tags = events.Tags()["scalars"]
    assert [event.step for event in events.Scalars("lr-SGD/trainable")] == [5, 11]  # each epoch's last step
    assert [event.step for event in events.Scalars("lr-SGD/unfrozen")] == [11]  # joined in epoch 2
    assert not [tag for tag in tags if "/pg" in tag]
    assert len(events.Scalars("train/loss_step")) == 2
    assert not [w for w in short_run["warnings"] if "smaller than the logging interval" in w]


def test_metrics_json_holds_the_model_size_without_the_model_facts_callback(short_run) -> None:
    metrics = short_run["summary"]["metrics"]
    assert metrics["model/params"] == LENET5_PARAMS == 61706
    assert metrics["model/macs"] == LENET5_MACS


def test_the_epoch_line_and_the_report_say_where_the_time_went() -> None:
    metrics = {
        "train/loss": 0.5,
        "time/data_seconds": 1.0,
        "time/step_seconds": 3.0,
        "device/cpu_percent_mean": 96.4,
        "device/cpu_percent_peak": 120.0,
    }
    line = summary_line("Epoch 2/15", metrics, ["train"], 4.5)
    assert line == (
        "Epoch 2/15: train/loss 0.5000, 4.5 s; data 1.00 s + steps 3.00 s (25% waiting for data), CPU 96%"
    )
    gpu = {**metrics, "device/gpu_percent_mean": 87.2, "device/gpu_percent_peak": 99.0}
    gpu["device/gpu_peak_allocated_gib"] = 3.25
    assert summary_line("Epoch 2", gpu, ["train"], 4.5).endswith(
        ", CPU 96%, GPU 87% (peak 99%), GPU memory 3.2 GiB"
    )
    assert usage_line(metrics) == (
        "Last epoch: 1.00 s waiting for data and 3.00 s in training steps (25% of the training time "
        "waiting for data); CPU 96% mean, 120% peak (this process; 100% is one core); "
        "no GPU figures: trained on the CPU."
    )
    assert "GPU utilisation 87% mean, 99% peak; 3.2 GiB of GPU memory at most; CPU 96%" in usage_line(gpu)
    assert usage_line({"test/acc": 0.9}) is None


def test_on_a_gpu_the_device_figures_are_nvml_s_and_missing_nvml_leaves_utilisation_out(monkeypatch) -> None:
    # No GPU here: torch.cuda's NVML readings stand in, as nvidia-smi would give them.
    gib = 1024**3
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (2 * gib, 10 * gib))
    monkeypatch.setattr(torch.cuda, "utilization", lambda device: 73)
    usage, cuda = DeviceUsage(), torch.device("cuda", 0)
    sample = usage.sample(cuda)
    assert sample["device/gpu_percent"] == 73 and sample["device/gpu_memory_gib"] == 8
    assert sample["device/cpu_percent"] >= 0

    def no_nvml(device: torch.device) -> int:
        raise ModuleNotFoundError("pynvml does not seem to be installed")

    monkeypatch.setattr(torch.cuda, "utilization", no_nvml)
    assert set(usage.sample(cuda)) == {"device/cpu_percent", "device/gpu_memory_gib"}


def test_on_a_gpu_the_step_time_includes_the_kernels_still_running_when_the_step_returns(
    monkeypatch,
) -> None:
    queued: list[float] = []  # seconds of GPU work not finished yet

    def synchronize(device: torch.device | None = None) -> None:
        time.sleep(sum(queued))
        queued.clear()

    monkeypatch.setattr(torch.cuda, "synchronize", synchronize)
    speed, module, batch = EpochSpeed(), SimpleNamespace(device=torch.device("cuda", 0)), (None, [0] * 8)
    speed.on_train_epoch_start(None, module)
    queued.append(0.1)  # the batch's copy and augmentation, queued before the step
    speed.on_train_batch_start(None, module, batch, 0)
    queued.append(0.05)  # the step's kernels, queued: its Python returned at once
    speed.on_train_batch_end(None, module, None, batch, 0)
    assert speed.data >= 0.1 and 0.05 <= speed.step < 0.1  # each wait where its work was queued
