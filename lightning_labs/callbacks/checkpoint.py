"""Lightning's ModelCheckpoint, at a smaller cost per training step."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch import callbacks


class ModelCheckpoint(callbacks.ModelCheckpoint):
    """``lightning.pytorch.callbacks.ModelCheckpoint`` that costs next to nothing on steps it cannot save.

    Lightning names each callback of each hook call by its ``state_key``, which ModelCheckpoint
    rebuilds every time from five settings (a dict's repr, some microseconds); with three
    checkpoint callbacks and six hooks per step that adds up. Here the key is built once: the
    settings it is made of are fixed when the callback is built. A callback that saves only at
    epoch ends (``every_n_train_steps`` 0 and no ``train_time_interval``) also returns at once
    from ``on_train_batch_end``, where Lightning's would decide the same after a few checks; so
    of the three default callbacks only ``step_checkpoint``, when set, checks each step.

    The class keeps Lightning's name, so its ``state_key`` (``ModelCheckpoint{...}``) is the one
    Lightning's writes: checkpoints saved with either restore the other's best score.
    """

    @property
    def state_key(self) -> str:
        key = self.__dict__.get("_cached_state_key")
        if key is None:
            key = self.__dict__["_cached_state_key"] = super().state_key
        return key

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._every_n_train_steps < 1 and self._train_time_interval is None:
            return  # Lightning's returns too (skip_batch and skip_time), after reading the trainer's state
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
