"""Per-step curves with at least one point per epoch, however short the epoch."""

from __future__ import annotations

import math
import warnings

import lightning as L

# Lightning's advice to lower log_every_n_steps, given before the epoch's length is known here.
SHORT_EPOCH_WARNING = r"The number of training batches \(\d+\) is smaller than the logging interval"


def steps_per_epoch(trainer: L.Trainer) -> int | None:
    """Optimizer steps in one training epoch; None for a loader without a length."""
    batches = trainer.num_training_batches
    if math.isinf(batches):
        return None
    return max(1, math.ceil(batches / trainer.accumulate_grad_batches))


class LogEveryEpoch(L.Callback):
    """Lowers ``trainer.log_every_n_steps`` to the optimizer steps of one epoch when that is fewer.

    Lightning writes per-step values (the learning rate, ``train/loss_step``, ``device/*``) every
    ``log_every_n_steps`` (50) optimizer steps. An epoch of 6 steps would log its first learning
    rate at step 50, after 8 epochs, and a run shorter than that none at all (a blank learning-rate
    panel). With the interval at the epoch's length, each such epoch logs once, at its last step;
    epochs of 50 steps or more keep their points every 50 steps, so a one-cycle warm-up stays
    visible. Lightning's warning that the epoch is shorter than the interval (given before the
    epoch's length is known to callbacks) is silenced: the interval is fixed here.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        warnings.filterwarnings("ignore", message=SHORT_EPOCH_WARNING)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        steps = steps_per_epoch(trainer)
        if steps is not None and 0 < steps < trainer.log_every_n_steps:
            trainer.log_every_n_steps = steps
