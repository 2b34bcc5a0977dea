"""What a run needs to know about how its processes were launched (DDP, torchrun, SLURM).

Lightning's DDP strategy does the process management: started as one command, it re-runs the
command line once per extra device; started by torchrun or ``srun``, every rank runs the command
itself. Either way the ranks must agree on one Hydra run directory before any of them can talk to
another, so its name comes from what the launcher shares with every rank (the torchrun rendezvous
id, the SLURM job and step), and only rank zero writes into it.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lightning_labs.launch import int_env, torchrun_run_id
from lightning_labs.logs import get_logger

log = get_logger(__name__)

LR_SCALING = (None, "linear")


def uses_ddp(trainer_cfg: DictConfig) -> bool:
    """Whether the trainer config asks for a DDP strategy (by name or by ``_target_``)."""
    strategy = trainer_cfg.get("strategy")
    name = strategy.get("_target_", "") if isinstance(strategy, DictConfig) else str(strategy or "")
    return "ddp" in name.lower()


def check_launch(cfg: DictConfig) -> None:
    """Refuse, before any process starts, the launches that would hang, duplicate or scatter outputs."""
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN and uses_ddp(cfg.trainer):
        raise RuntimeError(
            "A sweep (-m) cannot use a DDP trainer: DDP starts each extra rank by re-running the whole "
            "command line, which would re-run the sweep. Sweep on one device per job (trainer=default, "
            "cpu or gpu), or start one DDP job per setting (a shell loop, or a SLURM job array over "
            "scripts/slurm/train.sbatch)."
        )
    explicit_dir = any(o.startswith("hydra.run.dir=") for o in hydra_cfg.overrides.hydra)
    if torchrun_run_id() == "none" and int_env("WORLD_SIZE") > 1 and not explicit_dir:
        raise RuntimeError(
            "torchrun started this job without a rendezvous id, so its ranks cannot agree on one run "
            "directory. Add --rdzv-id=<a name unique to this job> (or --standalone on one node), or "
            "give every rank the same hydra.run.dir=<path>."
        )


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
