"""How fast training runs and where its time goes: epoch time, images per second, and the split of
the training time between waiting for batches and computing the steps, as scalars under ``time/``.
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch


def synchronize(device: torch.device) -> None:
    """Wait for the kernels queued on a CUDA device (no-op elsewhere: the CPU computes in the call)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class EpochSpeed(L.Callback):
    """Logs, once per training epoch (TensorBoard, the epoch line, ``metrics.json``):

    - ``time/epoch_seconds``: the whole epoch, training and validation;
    - ``time/step_seconds``: inside the training steps (``on_train_batch_start`` to
      ``on_train_batch_end``: forward, loss, backward, optimizer step);
    - ``time/data_seconds``: the rest of the training part of the epoch, between one step and the
      next (the first: from the epoch's start). That is waiting for the next batch (DataLoader
      workers, or loading in the main process, and starting the workers on the first batch), its
      copy to the device, the batched pipeline's augmentation (``on_after_batch_transfer``), and
      Lightning's bookkeeping between steps (logging, progress-bar redraws, checkpoints saved
      every N steps), usually small. Validation inside an epoch (``val_check_interval`` below 1)
      is left out.
    - ``time/images_per_second``: training images over ``data_seconds + step_seconds``, over all
      DDP processes (this rank's images x world size: the distributed sampler gives every rank
      the same number).

    ``data_seconds + step_seconds`` is thus the training part of the epoch: a large data share
    means the network waits for its input (add ``data.num_workers``, use the batched pipeline).

    GPU asynchrony: CUDA kernels run after the Python call that queued them returns, so without
    a synchronisation the GPU's work would be counted wherever the CPU next waits for it (often
    in the next batch's copy, as data time). On a CUDA device the step is therefore timed
    between two ``torch.cuda.synchronize()`` calls, at its start (the batch's copy and augmentation
    finish in the data time) and at its end (the step's kernels finish in the step time). That is
    two waits per step, which the step had to make anyway before its forward pass and before the
    next one; only the CPU's queuing of the next kernels ahead of the GPU is lost, little for
    steps of a millisecond or more (``callbacks.epoch_speed=null`` removes both). On the CPU
    nothing is synchronised.
    """

    def __init__(self) -> None:
        self.started = self.step_started = self.step_ended = self.validation_started = 0.0
        self.data = self.step = 0.0
        self.images = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = self.step_ended = time.perf_counter()
        self.data = self.step = 0.0
        self.images = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run resumed mid-epoch starts without on_train_epoch_start: time the rest of the epoch.
        self.on_train_epoch_start(trainer, pl_module)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, *_: Any
    ) -> None:
        synchronize(pl_module.device)
        self.step_started = time.perf_counter()
        self.data += self.step_started - self.step_ended

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *_: Any
    ) -> None:
        synchronize(pl_module.device)
        self.step_ended = time.perf_counter()
        self.step += self.step_ended - self.step_started
        self.images += len(batch[1])

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.validation_started = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Validation within the epoch is neither data nor step time: move the last step's end past it.
        self.step_ended += time.perf_counter() - self.validation_started

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.log("time/epoch_seconds", time.perf_counter() - self.started, rank_zero_only=True)
        if self.images:
            pl_module.log("time/data_seconds", self.data, rank_zero_only=True)
            pl_module.log("time/step_seconds", self.step, rank_zero_only=True)
            rate = self.images * trainer.world_size / (self.data + self.step)
            pl_module.log("time/images_per_second", rate, rank_zero_only=True)
