"""Pictures of what the classifier predicts, logged to TensorBoard: a prediction grid and a confusion matrix.

Both read the logits that ``validation_step``/``test_step`` return, so they cost no extra forward
pass, and both draw once per evaluation epoch of their stage (``test``: once, at the end of a run).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from lightning_labs.callbacks.writer import denormalize, summary_writer
from lightning_labs.data.base import class_labels
from lightning_labs.inference.pictures import confusion_figure, prediction_grid

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
    """The first ``count`` images of the stage with "predicted / true" captions, wrong ones in red.

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
        figure = prediction_grid(
            images,
            labels.tolist(),
            predictions.tolist(),
            names,
            self.columns,
            title=f"{self.stage} predictions",
        )
        writer.add_figure(f"predictions/{self.stage}", figure, global_step=trainer.global_step)


class ConfusionMatrixFigure(EvaluationFigure):
    """The stage's confusion matrix (torchmetrics, synced across DDP ranks): ``confusion_matrix/<stage>``.

    Rows are true classes, columns predictions; cells hold image counts (written in the cells
    for up to ``max_annotated`` classes). The last counts stay in ``counts`` (``eval`` reads its
    per-class accuracy from them, with or without a logger).
    """

    def __init__(self, stage: str = "test", max_annotated: int = 20) -> None:
        super().__init__(stage)
        self.max_annotated = max_annotated
        self.matrix: MulticlassConfusionMatrix | None = None
        self.counts: torch.Tensor | None = None

    def reset(self, pl_module: L.LightningModule) -> None:
        self.matrix = MulticlassConfusionMatrix(pl_module.hparams.num_classes, validate_args=False)
        self.matrix.to(pl_module.device)

    def collect(self, logits: torch.Tensor, images: torch.Tensor, labels: torch.Tensor) -> None:
        if self.matrix is not None:
            self.matrix.update(logits, labels)

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.matrix is None:
            return
        self.counts = self.matrix.compute().cpu()  # a collective under DDP: every rank computes
        writer = summary_writer(trainer)
        if writer is None:
            return
        names = class_labels(trainer.datamodule, pl_module.hparams.num_classes)
        annotate = len(names) <= self.max_annotated
        figure = confusion_figure(self.counts, names, annotate=annotate, split=self.stage)
        writer.add_figure(f"confusion_matrix/{self.stage}", figure, global_step=trainer.global_step)
