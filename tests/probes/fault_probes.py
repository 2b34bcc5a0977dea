"""Faults that reliability tests inject from the command line (``+callbacks.x._target_=fault_probes.X``).

They run inside the training process a test starts, which finds them through PYTHONPATH.
"""

from __future__ import annotations

import os
import signal

import lightning as L


class SignalAtStep(L.Callback):
    """Send this process ``signal`` (by name: SIGKILL, SIGTERM, SIGINT) once ``step`` steps are done.

    SIGKILL ends the process on the spot, as ``kill -9`` or an out-of-memory kill would: no
    handler runs and nothing is flushed. The step is exact, so the test knows what was lost.
    """

    def __init__(self, step: int, signal: str = "SIGKILL") -> None:
        self.step = step
        self.signal = signal

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), getattr(signal, self.signal))


class NaNBatchAtStep(L.Callback):
    """Turn the images of the batch at ``step`` into NaN, as a corrupt record or overflow would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx
    ) -> None:
        if trainer.global_step == self.step:
            batch[0].fill_(float("nan"))
