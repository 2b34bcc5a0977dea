"""Faults that reliability tests inject from the command line (``+callbacks.x._target_=fault_probes.X``).

They run inside the training process a test starts, which finds them through PYTHONPATH.
"""

from __future__ import annotations

import os
import signal

import lightning as L
import torch


class SignalAtStep(L.Callback):
    """Send this process ``signal`` (by name: SIGKILL, SIGTERM, SIGINT) once ``step`` steps are done.

    SIGKILL ends the process on the spot, as ``kill -9`` or an out-of-memory kill would: no
    handler runs and nothing is flushed. The step is exact, so the test knows what was lost.
    With ``group``, the whole process group gets it (DataLoader workers included), as from
    Ctrl-C in a terminal or SLURM's ``scancel``; the test starts the run in its own group.
    """

    def __init__(self, step: int, signal: str = "SIGKILL", group: bool = False) -> None:
        self.step = step
        self.signal = signal
        self.group = group

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            number = getattr(signal, self.signal)
            if self.group:
                os.killpg(os.getpgid(0), number)
            else:
                os.kill(os.getpid(), number)


class NaNBatchAtStep(L.Callback):
    """Turn the images of the batch at ``step`` into NaN, as a corrupt record or overflow would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx
    ) -> None:
        if trainer.global_step == self.step:
            batch[0].fill_(float("nan"))


class NaNBatchesFrom(L.Callback):
    """Turn the images of every batch from index ``batch`` of the epoch on into NaN: a broken source."""

    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx
    ) -> None:
        if batch_idx >= self.batch:
            batch[0].fill_(float("nan"))


class DivergeAtStep(L.Callback):
    """Multiply the network's weights by ``factor`` once ``step`` steps are done, as a far too high
    learning rate does over a few steps: the loss stays finite, but huge, until it overflows."""

    def __init__(self, step: int, factor: float = 1e6) -> None:
        self.step = step
        self.factor = factor

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.mul_(self.factor)
