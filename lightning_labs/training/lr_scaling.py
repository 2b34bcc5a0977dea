"""The learning rate scaled to the global batch, and the optimizer's own arguments."""

from __future__ import annotations

from typing import Any

import lightning as L
from omegaconf import DictConfig, OmegaConf

from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)

LR_SCALING = (None, "linear")


def global_batch_size(per_device: int, trainer: L.Trainer) -> int:
    """Images per optimizer step over all processes: per device x devices x nodes x accumulation."""
    return per_device * trainer.num_devices * trainer.num_nodes * trainer.accumulate_grad_batches


def scale_learning_rate(cfg: DictConfig, per_device_batch: int, trainer: L.Trainer) -> None:
    """Apply ``optimizer.scale_lr`` to ``cfg.optimizer.lr`` in place, and say what the batch is.

    ``linear`` (Goyal et al., 2017, "Accurate, Large Minibatch SGD") multiplies the learning
    rate by global batch / ``optimizer.base_batch_size`` (default: ``data.batch_size``, i.e. the
    configured rate is the one for a single device). The scaled value replaces ``optimizer.lr``
    in the config, so every setting that refers to it (``scheduler.max_lr``) follows.
    """
    rule = cfg.optimizer.get("scale_lr")
    if rule not in LR_SCALING:
        raise ValueError(
            f"optimizer.scale_lr={rule!r} is not a scaling rule; use linear or null (no scaling)"
        )
    global_batch = global_batch_size(per_device_batch, trainer)
    base_batch = cfg.optimizer.get("base_batch_size") or per_device_batch
    base_lr = cfg.optimizer.lr
    if rule == "linear":
        cfg.optimizer.lr = base_lr * global_batch / base_batch
    log.info(
        "Global batch %d = %d per device x %d devices x %d nodes x %d accumulated; learning rate %g%s",
        global_batch,
        per_device_batch,
        trainer.num_devices,
        trainer.num_nodes,
        trainer.accumulate_grad_batches,
        cfg.optimizer.lr,
        f" (scale_lr=linear: {base_lr:g} x {global_batch}/{base_batch})" if rule else " (scale_lr=null)",
    )


def optimizer_arguments(optimizer_cfg: DictConfig) -> dict[str, Any]:
    """The optimizer's own arguments: the config less the batch-scaling options read above."""
    arguments = OmegaConf.to_container(optimizer_cfg, resolve=True)
    for option in ("scale_lr", "base_batch_size"):
        arguments.pop(option, None)
    return arguments
