"""Train the frozen layers too from a given epoch on (gradual fine-tuning)."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import BaseFinetuning
from torch.optim import Optimizer

from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)


class UnfreezeAtEpoch(BaseFinetuning):
    """After ``at_epoch`` epochs with them frozen, the layers frozen by ``model.freeze`` train as well.

    ``at_epoch`` counts finished epochs (Lightning's epoch index), so ``at_epoch=2`` thaws them at
    the start of the third epoch, "Epoch 3/N" as the tool prints epochs.

    Their parameters join the optimizer as a new group at the first group's learning rate times
    ``lr_factor``; the group copies the first group's other settings, so the run's scheduler
    (one-cycle included) keeps driving it. It is named ``unfrozen`` (the first, ``trainable``), so
    the learning-rate cards read ``lr-SGD/unfrozen`` and ``lr-SGD/trainable``. Lightning's
    ``BaseFinetuning`` records the group in checkpoints, and a resumed run past ``at_epoch`` thaws
    the layers again.
    """

    def __init__(self, at_epoch: int, lr_factor: float = 0.1) -> None:
        super().__init__()
        self.at_epoch = at_epoch
        self.lr_factor = lr_factor

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        """Nothing to do: the model froze its layers when it was built (``model.freeze``)."""

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: Optimizer) -> None:
        if epoch < self.at_epoch:
            return
        thawed = pl_module.unfreeze()
        in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
        new = [p for p in thawed if id(p) not in in_optimizer]
        if not new:
            return
        first = optimizer.param_groups[0]
        scaled = {
            k: v * self.lr_factor for k, v in first.items() if k in ("lr", "initial_lr", "max_lr", "min_lr")
        }
        settings = {k: v for k, v in first.items() if k != "params"}
        optimizer.add_param_group({**settings, **scaled, "params": new, "name": "unfrozen"})
        log.info(
            "Epoch %d: %s frozen parameters now train (lr x %s)",
            epoch + 1,  # counted from 1, as the epoch lines and the progress bar count them
            f"{sum(p.numel() for p in new):,}",
            self.lr_factor,
        )
