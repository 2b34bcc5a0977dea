"""One job of a ``hydra/launcher=parallel`` sweep, in its worker process: its devices and its output.

:class:`~hydra_plugins.lightning_labs_launcher.parallel.ParallelLauncher` plans the slots (GPUs, cores)
and puts the plan in the workers' environment. Each worker claims a free slot once, with a lock
file that the operating system releases when the worker exits, and keeps it for every job it runs:
CUDA reads ``CUDA_VISIBLE_DEVICES`` only when it starts, so a worker can never move to another GPU.

Jobs side by side would interleave their progress bars and tables on one console, so each job's
output goes to ``console.log`` in its run directory, and the console gets one line when the job
starts and one when it ends.
"""

from __future__ import annotations

import fcntl
import functools
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

PLAN_ENV = "LIGHTNING_LABS_PARALLEL"
CONSOLE_LOG = "console.log"
T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    """How a parallel sweep shares the machine: jobs at once, and each slot's GPUs and cores."""

    n_jobs: int
    gpu_slots: list[list[str]]  # empty: CPU jobs
    cpu_slots: list[list[int]]  # empty: no pinning (more jobs than cores)
    lock_dir: str = ""
    swept: list[str] = field(default_factory=list)  # the swept keys, to name a job in one line

    def describe(self) -> str:
        """``2 jobs at a time, one GPU slot each: GPU 0 | GPU 1; 8 core(s) ...`` (or cores on the CPU)."""
        head = f"Parallel sweep: {self.n_jobs} job(s) at a time"
        cores = (
            f"{len(self.cpu_slots[0])} core(s) and torch thread(s) each" if self.cpu_slots else "cores shared"
        )
        if self.gpu_slots:
            gpus = " | ".join("GPU " + ",".join(slot) for slot in self.gpu_slots)
            return f"{head}, one GPU slot each: {gpus}; {cores}"
        return f"{head} on the CPU, {cores}"


_claimed: dict[str, Any] = {}  # this worker's slot: its lock file (held open) and its number


def claim_slot(plan: Plan) -> int:
    """This worker's slot number, claimed once; pins the process to the slot's GPUs and cores.

    Raises RuntimeError when every slot is taken, which the plan rules out unless jobs of another
    sweep use the same folder.
    """
    if "number" in _claimed:
        return int(_claimed["number"])
    slots = max(len(plan.gpu_slots), len(plan.cpu_slots), 1)
    Path(plan.lock_dir).mkdir(parents=True, exist_ok=True)
    for number in range(slots):
        handle: IO[str] = open(Path(plan.lock_dir) / f"slot-{number}.lock", "w")  # noqa: SIM115 (held open)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _claimed.update(handle=handle, number=number)
        pin(plan, number)
        return number
    raise RuntimeError(
        f"Every device slot of this sweep is taken ({slots}, locks in {plan.lock_dir}): another "
        "process holds them. Wait for it, or start the sweep again."
    )


def pin(plan: Plan, number: int) -> None:
    """Limit this process to slot ``number``: its GPUs (before CUDA starts), its cores, its threads."""
    if plan.gpu_slots:
        if "torch" in sys.modules and sys.modules["torch"].cuda.is_initialized():
            raise RuntimeError("CUDA started in this worker before its GPU slot was chosen.")
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(plan.gpu_slots[number])
    if plan.cpu_slots:
        cores = plan.cpu_slots[number]
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cores)
        os.environ["OMP_NUM_THREADS"] = str(len(cores))  # read by torch when it loads
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(len(cores))


def job_name(swept: list[str]) -> str:
    """``#3 model.pool=avg model.act=relu``: the job's number and swept choices."""
    from lightning_labs.runtime.sweep_summary import choices

    hydra = HydraConfig.get()
    return f"#{hydra.job.num} {choices(list(hydra.overrides.task), set(swept))}".rstrip()


def outcome(result: Any, metric: str, seconds: float) -> str:
    """``done in 41 s, val/acc_best 0.9812``, or ``failed: ValueError: ...`` for a failed job."""
    error = getattr(result, "error", None)
    if error is not None:
        return f"failed after {seconds:.0f} s: {error}"
    value = f", {metric} {result:.4f}" if isinstance(result, float) else ""
    return f"done in {seconds:.0f} s{value}"


@contextmanager
def console_to(path: Path) -> Iterator[int]:
    """Send this process's stdout and stderr (Python's and the C libraries') to ``path``; yields a
    descriptor of the console's stderr for the status lines."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    with open(path, "a") as log_file:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        try:
            yield saved_err
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)


def in_own_slot(task: Callable[[DictConfig], T]) -> Callable[[DictConfig], T]:
    """Wrap a Hydra task: in a parallel sweep's worker, run it on its slot with its output in
    ``console.log``; elsewhere (one run, other launchers) run it as it is."""

    @functools.wraps(task)
    def run(cfg: DictConfig) -> T:
        encoded = os.environ.get(PLAN_ENV)
        if not encoded or not HydraConfig.initialized():
            return task(cfg)
        plan = Plan(**json.loads(encoded))
        slot = claim_slot(plan)
        # Loky makes its own start method the default in its workers, and DataLoader workers cannot
        # start with it: the platform's default start method is put back.
        multiprocessing.set_start_method(multiprocessing.get_all_start_methods()[0], force=True)
        name = job_name(plan.swept)
        where = [f"GPU {','.join(plan.gpu_slots[slot])}"] if plan.gpu_slots else []
        if plan.cpu_slots:
            where.append(f"{len(plan.cpu_slots[slot])} core(s)")
        log_path = Path(HydraConfig.get().runtime.output_dir) / CONSOLE_LOG
        start = time.perf_counter()
        with console_to(log_path) as console:
            os.write(
                console,
                f"{name}: started ({', '.join(where) or 'shared cores'}), output in {log_path}\n".encode(),
            )
            result = task(cfg)
            metric = str(cfg.get("optimized_metric", "result"))
            os.write(console, f"{name}: {outcome(result, metric, time.perf_counter() - start)}\n".encode())
        return result

    return run
