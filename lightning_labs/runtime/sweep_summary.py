"""A sweep (``-m``) refused in one message before any job starts, and summed up when it ends.

Hydra's basic sweeper raises the first failed job's exception once all jobs have run, printing a
traceback and skipping ``on_multirun_end``. Here a failed job instead returns
:class:`~lightning_labs.runtime.errors.JobFailed` (see :func:`~lightning_labs.runtime.errors.clear_errors`),
this callback counts it, and the sweep ends with one summary naming where to look, and exit status 1.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from lightning_labs.runtime.errors import EXIT_FAILED, JobFailed, one_line
from lightning_labs.runtime.launch_checks import check_sweep


@dataclass(frozen=True)
class FailedJob:
    """One failed job of a sweep: its number, its swept choices, its folder, log files and error."""

    number: int
    choices: str
    folder: str
    log_files: tuple[str, ...]
    error: str


def swept_keys(overrides: list[str]) -> set[str]:
    """The keys a sweep varies (``model.act=relu,tanh`` gives ``model.act``), as Hydra parses them."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return {o.get_key_element() for o in parsed if o.is_sweep_override()}


def failure(job_return: JobReturn, swept: set[str]) -> FailedJob | None:
    """The failure of a finished job, or None when it completed.

    A job fails by returning :class:`JobFailed`, or by raising (with ``HYDRA_FULL_ERROR=1``, or
    before :func:`clear_errors` could catch it); ``JobReturn.return_value`` re-raises the latter,
    so the status is read first. Of its overrides, those of the ``swept`` keys are its choices.
    """
    if job_return.status == JobStatus.COMPLETED and not isinstance(job_return.return_value, JobFailed):
        return None
    failed = job_return.return_value if job_return.status == JobStatus.COMPLETED else None
    hydra = job_return.hydra_cfg.hydra
    return FailedJob(
        number=int(hydra.job.num),
        choices=" ".join(o for o in hydra.overrides.task if o.split("=", 1)[0] in swept),
        folder=str(hydra.runtime.output_dir),
        log_files=failed.log_files if failed else (),
        error=failed.error if failed else "raised (traceback above)",
    )


def summary(done: int, failed: list[FailedJob], folder: str) -> str:
    """``Sweep: 3 done, 1 failed, in <folder>`` and, for each failed job, its error and log file."""
    lines = [f"Sweep: {done} done, {len(failed)} failed, in {folder}"]
    for job in failed:
        where = ", ".join(job.log_files) or job.folder
        lines += [f"  #{job.number} {job.choices} failed: {job.error}", f"     see {where}"]
    return "\n".join(lines)


class SweepSummary(Callback):
    """Hydra callback (conf/hydra/default.yaml): refuses a sweep that cannot run, sums one up.

    Messages go to stderr with ``print``: outside a job, Hydra's logging is not the run's.
    """

    def __init__(self) -> None:
        self.done = 0
        self.failed: list[FailedJob] = []
        self.swept: set[str] = set()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.swept = swept_keys(list(config.hydra.overrides.task))
        try:
            check_sweep(config)
        except RuntimeError as err:
            print(one_line(err), file=sys.stderr)
            sys.exit(EXIT_FAILED)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        job = failure(job_return, self.swept)
        if job is None:
            self.done += 1
        else:
            self.failed.append(job)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        print(
            summary(self.done, self.failed, config.hydra.sweep.dir),
            file=sys.stderr if self.failed else sys.stdout,
        )
        if self.failed:
            sys.exit(EXIT_FAILED)
