"""A sweep (``-m``) refused in one message before any job starts, and summed up when it ends.

Hydra's basic sweeper raises the first failed job's exception once all jobs have run, printing a
traceback and skipping ``on_multirun_end``. Here a failed job instead returns
:class:`~lightning_labs.runtime.errors.JobFailed` (see :func:`~lightning_labs.runtime.errors.clear_errors`).
Each job records how it ended in ``.hydra/job_return.json`` of its folder, in the process that ran it
(with the parallel and submitit launchers that is not the sweep's process), and the sweep ends with
one line per job read from those files, the ``compare`` command to run next, and exit status 1 when
a job failed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from lightning_labs.runtime.errors import EXIT_FAILED, JobFailed, one_line
from lightning_labs.runtime.launch import global_rank
from lightning_labs.runtime.launch_checks import check_sweep

JOB_RETURN = Path(".hydra") / "job_return.json"
COMPARE = "python -m lightning_labs.compare"


@dataclass(frozen=True)
class JobEnd:
    """How one job of a sweep ended, as its ``.hydra/job_return.json`` tells (``unfinished`` without one)."""

    number: int
    choices: str
    folder: Path
    status: str  # done | failed | unfinished
    detail: str  # the returned metric, or the first line of the error
    log_files: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """``#1 model.act=relu  done: test/acc 0.9812``, and for a failed job where to read more."""
        head = f"  #{self.number} {self.choices} " if self.choices else f"  #{self.number}"
        text = [f"{head} {self.status}" + (f": {self.detail}" if self.detail else "")]
        if self.status != "done":
            text.append(f"     see {', '.join(self.log_files) or self.folder}")
        return text


def swept_keys(overrides: list[str]) -> set[str]:
    """The keys a sweep varies (``model.act=relu,tanh`` gives ``model.act``), as Hydra parses them."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return {o.get_key_element() for o in parsed if o.is_sweep_override()}


def sweep_keys(config: DictConfig) -> set[str]:
    """The keys a sweep varies: swept on the command line, or searched by Optuna (sweeper params)."""
    params = config.hydra.sweeper.get("params") or {}
    return swept_keys(list(config.hydra.overrides.task)) | set(params)


def choices(overrides: list[str], swept: set[str]) -> str:
    """The overrides of the ``swept`` keys, what tells this job from the others; a search's sampled
    floats at 4 significant digits (the config keeps them whole)."""
    from lightning_labs.runs.search import short_setting

    shown = [o.split("=", 1) for o in overrides if o.split("=", 1)[0].lstrip("+~") in swept]
    return " ".join(f"{key}={short_setting(value)}" for key, value in shown)


def record(job_return: JobReturn, metric: str) -> dict[str, Any]:
    """What ``job_return.json`` holds: ``done`` with the returned metric, or ``failed`` with the error.

    A job fails by returning :class:`JobFailed`, or by raising (with ``HYDRA_FULL_ERROR=1``, or
    before :func:`clear_errors` could catch it); ``JobReturn.return_value`` re-raises the latter,
    so the status is read first.
    """
    try:
        value = job_return.return_value
    except Exception as err:  # the job raised: JobReturn re-raises its exception
        return {"status": "failed", "detail": one_line(err), "log_files": []}
    if isinstance(value, JobFailed):
        return {"status": "failed", "detail": value.error, "log_files": list(value.log_files)}
    shown = f"{metric} {value:.4f}" if isinstance(value, float) else ""
    return {"status": "done", "detail": shown, "log_files": []}


def job_end(folder: Path, swept: set[str]) -> JobEnd:
    """Read how the job in ``folder`` ended; its overrides of the ``swept`` keys are its choices."""
    try:
        overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or []
    except (OSError, yaml.YAMLError):
        overrides = []
    try:
        ended = json.loads((folder / JOB_RETURN).read_text())
    except (OSError, ValueError):
        ended = {"status": "unfinished", "detail": "no end recorded (killed, or still running)"}
    number = int(folder.name) if folder.name.isdigit() else -1
    shown = choices([str(o) for o in overrides], swept)
    return JobEnd(number, shown, folder, ended["status"], ended["detail"], tuple(ended.get("log_files", ())))


def summary(jobs: list[JobEnd], folder: str, metric: str = "test/acc") -> str:
    """``Sweep: 3 done, 1 failed, in <folder>``, a line per job, an Optuna search's best trial,
    then the compare command."""
    from lightning_labs.runs.search import best_lines

    done = sum(job.status == "done" for job in jobs)
    lines = [f"Sweep: {done} done, {len(jobs) - done} failed, in {folder}"]
    for job in jobs:
        lines += job.lines()
    lines += best_lines(Path(folder))
    sort = "" if metric == "test/acc" else f" --metric {metric}"  # compare sorts by test/acc unless told
    lines.append(f"Compare them: {COMPARE} {folder}{sort}")
    return "\n".join(lines)


class SweepSummary(Callback):
    """Hydra callback (conf/hydra/default.yaml): refuses a sweep that cannot run, sums one up.

    Messages go to stderr with ``print``: outside a job, Hydra's logging is not the run's.
    """

    def __init__(self) -> None:
        self.swept: set[str] = set()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.swept = sweep_keys(config)
        try:
            check_sweep(config, config.hydra.launcher)
        except RuntimeError as err:
            print(one_line(err), file=sys.stderr)
            sys.exit(EXIT_FAILED)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN or global_rank() != 0:
            return
        path = Path(config.hydra.runtime.output_dir) / JOB_RETURN
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record(job_return, str(config.get("optimized_metric", "result")))))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from lightning_labs.runs.discovery import find_jobs

        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = [job_end(folder, self.swept) for folder in find_jobs(sweep_dir)]
        failed = any(job.status != "done" for job in jobs)
        metric = str(config.get("optimized_metric") or "test/acc")
        print(summary(jobs, str(sweep_dir), metric), file=sys.stderr if failed else sys.stdout)
        if failed:
            sys.exit(EXIT_FAILED)
