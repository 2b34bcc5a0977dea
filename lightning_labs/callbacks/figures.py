"""Pictures of what the classifier predicts, logged to TensorBoard: a prediction grid and a confusion matrix.

Both read the logits that ``validation_step``/``test_step`` return, so they cost no extra forward
pass, and both draw once per evaluation epoch of their stage (``test``: once, at the end of a run).
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from matplotlib.figure import Figure
from torchmetrics.classification import MulticlassConfusionMatrix

from lightning_labs.callbacks.writer import denormalize, summary_writer
from lightning_labs.data.base import class_labels

STAGES = ("val", "test")


class EvaluationFigure(L.Callback):
    """Base of callbacks that collect each evaluation batch of one stage and draw at its end."""

    def __init__(self, stage: str = "test") -> None:
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
        self.stage = stage

    def reset(self, pl_module: L.LightningModule) -> None:
        """Forget the previous epoch's batches."""

    def collect(self, logits: torch.Tensor, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Take in one batch and its logits."""

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Log the picture (called on every rank: metrics may need to sync first)."""

    def _active(self, trainer: L.Trainer, stage: str) -> bool:
        return stage == self.stage and not trainer.sanity_checking

    def _batch_end(self, trainer: L.Trainer, stage: str, outputs: Any, batch: Any) -> None:
        if self._active(trainer, stage) and isinstance(outputs, torch.Tensor):
            self.collect(outputs.detach(), batch[0], batch[1])

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active(trainer, "val"):
            self.reset(pl_module)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active(trainer, "test"):
            self.reset(pl_module)

    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *_: Any
    ) -> None:
        self._batch_end(trainer, "val", outputs, batch)

    def on_test_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *_: Any
    ) -> None:
        self._batch_end(trainer, "test", outputs, batch)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active(trainer, "val"):
            self.draw(trainer, pl_module)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active(trainer, "test"):
            self.draw(trainer, pl_module)


class PredictionGrid(EvaluationFigure):
    """The first ``count`` images of the stage with "prediction / label" captions, wrong ones in red.

    Logged as the image ``predictions/<stage>``; the labs' 4 x 10 grid by default.
    """

    def __init__(self, stage: str = "test", count: int = 40, columns: int = 10) -> None:
        super().__init__(stage)
        if count < 1 or columns < 1:
            raise ValueError(f"count and columns must be at least 1, got {count} and {columns}")
        self.count, self.columns = count, columns
        self.images: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self.predictions: list[torch.Tensor] = []

    def reset(self, pl_module: L.LightningModule) -> None:
        self.images, self.labels, self.predictions = [], [], []

    def collect(self, logits: torch.Tensor, images: torch.Tensor, labels: torch.Tensor) -> None:
        wanted = self.count - sum(len(batch) for batch in self.labels)
        if wanted > 0:
            self.images.append(images[:wanted].cpu())
            self.labels.append(labels[:wanted].cpu())
            self.predictions.append(logits[:wanted].argmax(dim=1).cpu())

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writer = summary_writer(trainer)
        if writer is None or not self.labels:
            return
        data = trainer.datamodule
        images = denormalize(torch.cat(self.images), data.mean, data.std)
        labels, predictions = torch.cat(self.labels), torch.cat(self.predictions)
        names = class_labels(trainer.datamodule, pl_module.hparams.num_classes)
        figure = prediction_grid(images, labels.tolist(), predictions.tolist(), names, self.columns)
        figure.suptitle(
            f"{self.stage} predictions: prediction / label "
            f"({int((labels != predictions).sum())} of {len(labels)} wrong, in red)"
        )
        writer.add_figure(f"predictions/{self.stage}", figure, global_step=trainer.global_step)


def prediction_grid(
    images: torch.Tensor, labels: list[int], predictions: list[int], names: list[str], columns: int
) -> Figure:
    """A grid of images (N x C x H x W in [0, 1]) titled "prediction / label"; mistakes framed in red."""
    columns = min(columns, len(images))
    rows = math.ceil(len(images) / columns)
    figure = Figure(figsize=(1.6 * columns, 1.75 * rows + 0.5), layout="constrained")
    for index, axes in enumerate(figure.subplots(rows, columns, squeeze=False).flat):
        axes.set_xticks([])
        axes.set_yticks([])
        if index >= len(images):
            axes.set_axis_off()
            continue
        image = images[index].permute(1, 2, 0).numpy()
        axes.imshow(image[..., 0] if image.shape[2] == 1 else image, cmap="gray", vmin=0, vmax=1)
        wrong = predictions[index] != labels[index]
        colour = "tab:red" if wrong else "tab:green"
        axes.set_title(f"{names[predictions[index]]} / {names[labels[index]]}", fontsize=8, color=colour)
        for spine in axes.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(2.5 if wrong else 0.5)
    return figure


class ConfusionMatrixFigure(EvaluationFigure):
    """The stage's confusion matrix (torchmetrics, synced across DDP ranks): ``confusion_matrix/<stage>``.

    Rows are true classes, columns predictions; cells hold image counts (written in the cells
    for up to ``max_annotated`` classes).
    """

    def __init__(self, stage: str = "test", max_annotated: int = 20) -> None:
        super().__init__(stage)
        self.max_annotated = max_annotated
        self.matrix: MulticlassConfusionMatrix | None = None

    def reset(self, pl_module: L.LightningModule) -> None:
        self.matrix = MulticlassConfusionMatrix(pl_module.hparams.num_classes, validate_args=False)
        self.matrix.to(pl_module.device)

    def collect(self, logits: torch.Tensor, images: torch.Tensor, labels: torch.Tensor) -> None:
        if self.matrix is not None:
            self.matrix.update(logits, labels)

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.matrix is None:
            return
        counts = self.matrix.compute()  # a collective under DDP: every rank computes
        writer = summary_writer(trainer)
        if writer is None:
            return
        names = class_labels(trainer.datamodule, pl_module.hparams.num_classes)
        figure = confusion_figure(counts.cpu(), names, annotate=len(names) <= self.max_annotated)
        figure.suptitle(f"Confusion matrix, {self.stage} ({int(counts.sum())} images)")
        writer.add_figure(f"confusion_matrix/{self.stage}", figure, global_step=trainer.global_step)


def confusion_figure(counts: torch.Tensor, names: list[str], annotate: bool) -> Figure:
    """A heat map of a confusion matrix with class names on both axes."""
    size = max(5.0, 0.45 * len(names) + 2.5)
    figure = Figure(figsize=(size + 1, size), layout="constrained")
    axes = figure.subplots()
    shown = axes.imshow(counts.numpy(), cmap="Blues")
    figure.colorbar(shown, ax=axes, shrink=0.8, label="images")
    ticks = range(len(names))
    label_names = annotate or len(names) <= 40
    axes.set_xticks(ticks, names if label_names else [], rotation=45, ha="right", fontsize=8)
    axes.set_yticks(ticks, names if label_names else [], fontsize=8)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if annotate:
        threshold = counts.max().item() / 2
        for row, values in enumerate(counts.tolist()):
            for column, value in enumerate(values):
                colour = "white" if value > threshold else "black"
                axes.text(column, row, str(value), ha="center", va="center", fontsize=7, color=colour)
    return figure
