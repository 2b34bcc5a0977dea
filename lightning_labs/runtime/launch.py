"""How this process was launched: its global rank and the run directory's name, without Lightning.

Hydra composes the config, names the run directory and sets up logging before a command's own
code runs; everything it calls comes from here, so that a mistyped option is refused in about a
second, not after the 5 s it takes to import torch and Lightning.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from lightning_utilities.core.rank_zero import rank_zero_only

# Where launchers put a process's global rank, in the order Lightning reads them.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def int_env(name: str, default: int = 1) -> int:
    return int(os.environ.get(name) or default)


def torchrun_run_id() -> str | None:
    """torchrun's rendezvous id ("none" when it was not given) if torchrun started this process."""
    return os.environ.get("TORCHELASTIC_RUN_ID")


def global_rank() -> int:
    """This process's global rank: Lightning's own record of it (``rank_zero_only.rank``, which
    its strategies update), read from the launcher's environment as Lightning does if unset."""
    if getattr(rank_zero_only, "rank", None) is None:
        found = (os.environ.get(name) for name in RANK_VARIABLES)
        rank_zero_only.rank = int(next((value for value in found if value is not None), 0))
    return rank_zero_only.rank


def run_stamp() -> str:
    """The run directory's name below ``outputs/<task>/``, the same on every rank of one job.

    ``<date>/<time to the microsecond>`` for a job started by one command (Lightning passes
    that directory on to the ranks it starts); ``torchrun-<rendezvous id>`` for torchrun with
    more than one rank; ``slurm-<job>[_<array task>].<step>`` for ``srun`` with more than one task.
    """
    run_id = torchrun_run_id()
    if run_id not in (None, "", "none") and int_env("WORLD_SIZE") > 1:
        return f"torchrun-{run_id}"
    if "SLURM_STEP_ID" in os.environ and int_env("SLURM_NTASKS") > 1:
        array = os.environ.get("SLURM_ARRAY_TASK_ID")
        job = os.environ["SLURM_JOB_ID"] + (f"_{array}" if array else "")
        return f"slurm-{job}.{os.environ['SLURM_STEP_ID']}"
    return datetime.now().strftime("%Y-%m-%d/%H-%M-%S.%f")


def if_rank_zero(value: Any) -> Any:
    """``value`` on global rank zero, else None: what the other ranks write (``hydra.output_subdir``)."""
    return value if global_rank() == 0 else None
