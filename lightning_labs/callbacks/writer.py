"""The TensorBoard writer of a run, for callbacks that log pictures rather than numbers."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.tensorboard import SummaryWriter


def summary_writer(trainer: L.Trainer) -> SummaryWriter | None:
    """The run's TensorBoard ``SummaryWriter`` on global rank 0; None elsewhere or without one."""
    if not trainer.is_global_zero:
        return None
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


def denormalize(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Undo the data's normalisation: images as the eye sees them, in [0, 1]."""
    mean_t = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    return (images.float() * std_t + mean_t).clamp(0, 1)
