"""How fast training runs: epoch time and training images per second, as scalars."""

from __future__ import annotations

import time
from typing import Any

import lightning as L


class EpochSpeed(L.Callback):
    """Logs ``time/epoch_seconds`` (training and validation) and ``time/images_per_second``.

    Images per second count the training steps only (from the epoch's start to its last
    training batch), over all DDP processes (this rank's images x world size: the distributed
    sampler gives every rank the same number).
    """

    def __init__(self) -> None:
        self.started = self.last_batch_end = 0.0
        self.images = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = self.last_batch_end = time.perf_counter()
        self.images = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run resumed mid-epoch starts without on_train_epoch_start: time the rest of the epoch.
        self.on_train_epoch_start(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *_: Any
    ) -> None:
        self.images += len(batch[1])
        self.last_batch_end = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        training = self.last_batch_end - self.started
        pl_module.log("time/epoch_seconds", time.perf_counter() - self.started, rank_zero_only=True)
        if training > 0:
            rate = self.images * trainer.world_size / training
            pl_module.log("time/images_per_second", rate, rank_zero_only=True)
