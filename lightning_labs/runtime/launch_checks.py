"""What a run needs to know about how its processes were launched (DDP, torchrun, SLURM).

Lightning's DDP strategy does the process management: started as one command, it re-runs the
command line once per extra device; started by torchrun or ``srun``, every rank runs the command
itself. Either way the ranks must agree on one Hydra run directory before any of them can talk to
another, so its name comes from what the launcher shares with every rank (the torchrun rendezvous
id, the SLURM job and step), and only rank zero writes into it.
"""

from __future__ import annotations

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig

from lightning_labs.runtime.launch import int_env, torchrun_run_id


def uses_ddp(trainer_cfg: DictConfig) -> bool:
    """Whether the trainer config asks for a DDP strategy (by name or by ``_target_``)."""
    strategy = trainer_cfg.get("strategy")
    name = strategy.get("_target_", "") if isinstance(strategy, DictConfig) else str(strategy or "")
    return "ddp" in name.lower()


def is_slurm_launcher(launcher: DictConfig | None) -> bool:
    """Whether the sweep's launcher is submitit's SLURM one (``hydra/launcher=submitit_slurm``)."""
    return launcher is not None and str(launcher.get("_target_", "")).endswith(".SlurmLauncher")


def check_sweep(cfg: DictConfig, launcher: DictConfig | None) -> None:
    """Refuse a sweep (``-m``) job with a DDP trainer, unless SLURM starts its ranks; without a
    trainer there is nothing to check.

    Called by :class:`~lightning_labs.runtime.sweep_summary.SweepSummary` before the first job
    starts, and again in each job, where a swept ``trainer=`` choice shows.
    """
    if cfg.get("trainer") is None or not uses_ddp(cfg.trainer):
        return
    if not is_slurm_launcher(launcher):
        raise RuntimeError(
            "A sweep (-m) cannot use a DDP trainer here: DDP starts each extra rank by re-running the "
            "whole command line, which would re-run the sweep. Sweep on one device per job (trainer=default, "
            "cpu or gpu; hydra/launcher=parallel runs one job per GPU), or on a SLURM cluster add "
            "hydra/launcher=submitit_slurm, which starts one DDP job per setting."
        )
    check_slurm_ranks(cfg.trainer, launcher)


def check_slurm_ranks(trainer: DictConfig, launcher: DictConfig) -> None:
    """A DDP job on SLURM has one rank per task: the trainer's devices and nodes must be the
    launcher's tasks per node and nodes (Lightning refuses a mismatch only once the job has
    waited in the queue and started)."""
    devices = trainer.get("devices")
    count = len(devices) if isinstance(devices, ListConfig | list) else devices
    nodes = int(trainer.get("num_nodes") or 1)
    tasks, launcher_nodes = int(launcher.tasks_per_node), int(launcher.nodes)
    gpus = launcher.get("gpus_per_node")
    on_gpu = str(trainer.get("accelerator")) in ("gpu", "cuda", "auto")
    if (
        not isinstance(count, int)
        or count != tasks
        or nodes != launcher_nodes
        or (on_gpu and gpus is not None and int(gpus) < count)
    ):
        raise RuntimeError(
            f"A DDP sweep on SLURM runs one rank per task, so trainer.devices={devices} and "
            f"trainer.num_nodes={nodes} must equal hydra.launcher.tasks_per_node={tasks} and "
            f"hydra.launcher.nodes={launcher_nodes}, with hydra.launcher.gpus_per_node={gpus} GPUs for them. "
            "For 2 GPUs per job: trainer=ddp trainer.devices=2 hydra.launcher.tasks_per_node=2 "
            "hydra.launcher.gpus_per_node=2."
        )


def check_launch(cfg: DictConfig) -> None:
    """Refuse, before any process starts, the launches that would hang, duplicate or scatter outputs."""
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        check_sweep(cfg, hydra_cfg.launcher)
    explicit_dir = any(o.startswith("hydra.run.dir=") for o in hydra_cfg.overrides.hydra)
    if torchrun_run_id() == "none" and int_env("WORLD_SIZE") > 1 and not explicit_dir:
        raise RuntimeError(
            "torchrun started this job without a rendezvous id, so its ranks cannot agree on one run "
            "directory. Add --rdzv-id=<a name unique to this job> (or --standalone on one node), or "
            "give every rank the same hydra.run.dir=<path>."
        )


def check_accelerator(trainer_cfg: DictConfig) -> None:
    """Fail early, with the way out, when a GPU trainer is asked for on a machine without one."""
    import torch  # here, so that check_launch runs before torch's import (about 5 s)

    if trainer_cfg.get("accelerator") in ("gpu", "cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            "trainer.accelerator=gpu, but no CUDA GPU is visible (torch.cuda.is_available() is "
            "False). Use trainer=cpu, or trainer=default to take a GPU only when there is one."
        )
