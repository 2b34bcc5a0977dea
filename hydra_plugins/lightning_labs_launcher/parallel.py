"""``hydra/launcher=parallel``: a sweep's jobs side by side on one machine, each on its own devices.

Hydra's joblib launcher runs the jobs in a pool of worker processes but leaves the devices to
chance: every job sees every GPU and takes the first, and each job's torch starts one thread per
core, so two jobs on one machine fight over both. This launcher plans the pool first and hands the
plan to the workers (through the environment they inherit, see :mod:`lightning_labs.runtime.parallel_job`):

* with GPUs (and a trainer that may use one): one slot of ``gpus_per_job`` GPUs per concurrent
  job, so by default one job per visible GPU at a time, never two jobs on one GPU;
* on the CPU: the cores split into one set per concurrent job; a job runs on its set only
  (affinity) with that many torch threads, and its DataLoader workers count from it too.

``n_jobs`` (conf/hydra/launcher/parallel.yaml) overrides the number of concurrent jobs; asking
for more jobs than there are GPU slots is refused instead of doubling up.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_joblib_launcher import _core
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

from lightning_labs.runtime.parallel_job import PLAN_ENV, Plan

log = logging.getLogger(__name__)


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them (indices or UUIDs)."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    named = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return (named or [str(i) for i in range(count)])[:count]


def cpu_sets() -> list[int]:
    """The cores this process may run on (its affinity mask on Linux, else all of them)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def plan_jobs(
    jobs: int, gpus: Sequence[str], cpus: Sequence[int], n_jobs: int | None, gpus_per_job: int
) -> Plan:
    """How ``jobs`` jobs share the machine: how many run at once, on which GPUs and cores.

    ``gpus`` empty means CPU jobs. Raises ValueError, naming the setting to change, for a plan that
    cannot keep every job on devices of its own.
    """
    if n_jobs is not None and n_jobs < 1:
        raise ValueError(
            f"hydra.launcher.n_jobs={n_jobs}: give a count of at least 1, or null for automatic."
        )
    if gpus:
        if not 1 <= gpus_per_job <= len(gpus):
            raise ValueError(
                f"hydra.launcher.gpus_per_job={gpus_per_job}, but {len(gpus)} GPU(s) are visible "
                f"({','.join(gpus)}): give 1 to {len(gpus)}."
            )
        slots = [
            list(gpus[i : i + gpus_per_job]) for i in range(0, len(gpus) - gpus_per_job + 1, gpus_per_job)
        ]
        if n_jobs is not None and n_jobs > len(slots):
            raise ValueError(
                f"hydra.launcher.n_jobs={n_jobs} jobs at once need {n_jobs * gpus_per_job} GPUs, but "
                f"{len(gpus)} are visible: two jobs would share a GPU. Use n_jobs<={len(slots)}, fewer "
                "gpus_per_job, or trainer=cpu for CPU jobs."
            )
        concurrent = min(jobs, n_jobs or len(slots))
        share = max(1, len(cpus) // concurrent)
        return Plan(
            concurrent, slots[:concurrent], [cpus[i * share : (i + 1) * share] for i in range(concurrent)]
        )
    concurrent = min(jobs, n_jobs or len(cpus))
    if concurrent > len(cpus):  # more jobs than cores: no pinning, the OS shares the cores
        return Plan(concurrent, [], [])
    share = len(cpus) // concurrent
    return Plan(concurrent, [], [cpus[i * share : (i + 1) * share] for i in range(concurrent)])


def may_use_gpu(config: Any) -> bool:
    """Whether the sweep's trainer may take a GPU (``auto``, ``gpu`` or ``cuda``, not ``cpu``)."""
    trainer = config.get("trainer")
    return trainer is None or str(trainer.get("accelerator", "auto")) in ("auto", "gpu", "cuda")


class ParallelLauncher(JoblibLauncher):
    """Hydra's joblib launcher with a device plan: see the module docstring.

    Args:
        n_jobs: jobs at once; None: one per GPU slot, or one per core on the CPU.
        gpus_per_job: GPUs each job sees (``CUDA_VISIBLE_DEVICES``).
        **joblib: the rest of joblib.Parallel's arguments, as Hydra's joblib launcher takes them.
    """

    def __init__(self, n_jobs: int | None = None, gpus_per_job: int = 1, **joblib: Any) -> None:
        super().__init__(**joblib)
        self.n_jobs = n_jobs
        self.gpus_per_job = gpus_per_job
        self.plan: Plan | None = None

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Plan on the first call, then launch with joblib. A search sweeper (Optuna) calls this
        once per batch of trials: the plan, and with it the pool of workers and their slots, stays."""
        assert self.config is not None
        if self.plan is None:
            self.plan = self.make_plan(len(job_overrides))
            log.info("%s", self.plan.describe())
            # Loky starts its workers with this process's environment: the plan travels with it.
            os.environ[PLAN_ENV] = json.dumps(asdict(self.plan))
        self.joblib["n_jobs"] = self.plan.n_jobs
        return _core.launch(launcher=self, job_overrides=job_overrides, initial_job_idx=initial_job_idx)

    def make_plan(self, jobs: int) -> Plan:
        from lightning_labs.runtime.sweep_summary import sweep_keys

        assert self.config is not None
        gpus = visible_gpus() if may_use_gpu(self.config) else []
        plan = plan_jobs(jobs, gpus, cpu_sets(), self.n_jobs, self.gpus_per_job)
        return replace(
            plan,
            lock_dir=str(Path(str(self.config.hydra.sweep.dir)) / ".slots"),
            swept=sorted(sweep_keys(self.config)),
        )
