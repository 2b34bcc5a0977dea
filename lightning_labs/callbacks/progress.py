"""What a run shows while it trains: the progress bar, and one line per epoch with its final figures.

Epochs are counted as the user counts them, from 1 to ``trainer.max_epochs``, in both.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)

# The figures of the per-epoch line, named as in TensorBoard and metrics.json.
SUMMARY_METRICS = {"train": ("train/loss", "train/acc"), "val": ("val/loss", "val/acc")}


def epoch_label(epoch: int, max_epochs: int | None) -> str:
    """``Epoch 3/15`` for the third of 15 epochs (``epoch`` counted from 1); ``Epoch 3`` without a limit."""
    return f"Epoch {epoch}/{max_epochs}" if max_epochs is not None and max_epochs > 0 else f"Epoch {epoch}"


def usage_text(metrics: Mapping[str, float]) -> str:
    """Where the epoch's training time went and how busy the hardware was, from the figures of the
    ``epoch_speed`` and ``device_stats`` callbacks that were logged (empty without them):
    ``data 0.31 s + steps 2.90 s (10% waiting for data), CPU 180%, GPU 87% (peak 99%), GPU memory 3.2 GiB``.
    """
    parts = []
    if "time/data_seconds" in metrics and "time/step_seconds" in metrics:
        data, step = float(metrics["time/data_seconds"]), float(metrics["time/step_seconds"])
        parts.append(f"data {data:.2f} s + steps {step:.2f} s ({data / (data + step):.0%} waiting for data)")
    if "device/cpu_percent_mean" in metrics:
        parts.append(f"CPU {float(metrics['device/cpu_percent_mean']):.0f}%")
    if "device/gpu_percent_mean" in metrics:
        mean, peak = float(metrics["device/gpu_percent_mean"]), float(metrics["device/gpu_percent_peak"])
        parts.append(f"GPU {mean:.0f}% (peak {peak:.0f}%)")
    if "device/gpu_peak_allocated_gib" in metrics:
        parts.append(f"GPU memory {float(metrics['device/gpu_peak_allocated_gib']):.1f} GiB")
    return ", ".join(parts)


def summary_line(label: str, metrics: Mapping[str, float], stages: list[str], seconds: float) -> str:
    """``Epoch 2/15: train/loss 0.3120, train/acc 0.9012, val/loss 0.2511, val/acc 0.9250, 4.1 s``,
    then, where logged, :func:`usage_text` after a semicolon."""
    figures = [
        f"{name} {float(metrics[name]):.4f}"
        for stage in stages
        for name in SUMMARY_METRICS[stage]
        if name in metrics
    ]
    line = f"{label}: {', '.join([*figures, f'{seconds:.1f} s'])}"
    usage = usage_text(metrics)
    return f"{line}; {usage}" if usage else line


class EpochSummary(L.Callback):
    """Logs one line per finished epoch, to the console and the run's log file (``train.log``).

    The progress bar is redrawn while figures change and ends on the previous epoch's training
    loss; this line holds the figures a report needs, once they are final. Lightning validates
    before the module's ``on_train_epoch_end`` logs the epoch's training loss and accuracy, and
    calls a callback's ``on_train_epoch_end`` before the module's, so the line is written just
    after: when the next epoch starts, or when training ends (the time and device figures of the
    ``epoch_speed`` and ``device_stats`` callbacks are logged by then too). Validation figures are shown only
    for epochs that ran validation (``check_val_every_n_epoch``). Epoch hooks only: no per-step
    cost. Rank zero only (through the package's logger).
    """

    def __init__(self) -> None:
        self.started = 0.0
        self.validated = False
        self.finished: tuple[int, float] | None = None  # (epoch from 1, seconds), not yet written

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run resumed mid-epoch starts without on_train_epoch_start: time the rest of the epoch.
        self.started, self.validated, self.finished = time.perf_counter(), False, None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write_finished(trainer)
        self.started, self.validated = time.perf_counter(), False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.validated = True

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.finished = (trainer.current_epoch + 1, time.perf_counter() - self.started)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write_finished(trainer)

    def _write_finished(self, trainer: L.Trainer) -> None:
        """Log the line of the epoch that ended last, now that the module has logged its figures."""
        if self.finished is None:
            return
        epoch, seconds = self.finished
        stages = ["train", "val"] if self.validated else ["train"]
        label = epoch_label(epoch, trainer.max_epochs)
        log.info(summary_line(label, trainer.callback_metrics, stages, seconds))
        self.finished = None


class RichProgressBarFromOne(RichProgressBar):
    """Lightning's rich progress bar, reading ``Epoch 3/3`` in the last of three epochs.

    Lightning's own reads ``Epoch 2/2`` there (the epoch's index from 0, over the last index).
    The bar's figures are also refreshed when training ends: Lightning refreshes them before
    the module logs the last epoch's training loss, so the bar would end on the one before.

    Lightning's bar gathers its figures and moves its count on every training batch, whatever
    ``refresh_rate`` says (about 0.1 ms per step); this one does so only on the batches it
    redraws (every ``refresh_rate``-th and the epoch's last), which is all the screen shows.
    """

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        done = batch_idx + 1
        redraw = done % max(self.refresh_rate, 1) == 0 or done >= self.total_train_batches
        if redraw or self.train_progress_bar_id is None:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def _get_train_description(self, current_epoch: int) -> str:
        label = epoch_label(current_epoch + 1, self.trainer.max_epochs)
        return f"{label:{len(self.validation_description)}}"  # as wide as "Validation": no flicker

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._update_metrics(trainer, pl_module)
        self.refresh()
