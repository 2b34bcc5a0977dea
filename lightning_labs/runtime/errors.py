"""A failed command ends with one clear message and a non-zero exit status, not a traceback.

The messages of the package's errors say what was wrong and how to fix it; the traceback
helps only whoever debugs the package, so it goes to the run's log file instead of the
console (``HYDRA_FULL_ERROR=1`` shows it there too, as Hydra does).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lightning_labs.runtime.launch import global_rank

# Not rank-zero filtered: an error on any DDP rank is shown (the log file keeps rank 0's).
log = logging.getLogger(__name__)
T = TypeVar("T")
EXIT_FAILED = 1
EXIT_SIGTERM = 128 + 15  # what a shell reports for a process ended by SIGTERM
# Terminal colour and style codes, e.g. the bold that torch.load puts in its weights_only error.
# The console handler drops the escape character itself and would print the rest ("[1m").
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


@dataclass(frozen=True)
class JobFailed:
    """What a failed job of a sweep returns to Hydra: its one-line error and its log files.

    Raising would make Hydra's sweeper stop at the first failed job with a traceback; returning
    this lets the other jobs run and :class:`~lightning_labs.runtime.sweep_summary.SweepSummary`
    count the failures and end the sweep with a non-zero exit status.
    """

    error: str
    log_files: tuple[str, ...]

    def __float__(self) -> float:
        """NaN: a search sweeper (Optuna) takes the job's result as a float, and records NaN as a
        failed trial that no search step builds on."""
        return float("nan")


def _log_files() -> list[str]:
    return [h.baseFilename for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]


def _traceback_to_log_files(err: BaseException) -> None:
    record = logging.LogRecord(
        __name__,
        logging.ERROR,
        __file__,
        0,
        "Traceback of the error:",
        None,
        (type(err), err, err.__traceback__),
    )
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _message(err: BaseException) -> str:
    """The error's own message, without the traceback a DataLoader worker's error carries in its text.

    PyTorch re-raises a worker's exception in the main process as "Caught X in DataLoader worker
    process N. Original Traceback ...", ending with the original "X: message" line: the message
    is what the user needs; the whole text still goes to the log file with the traceback.
    """
    text = ANSI_ESCAPE.sub("", str(err))
    if text.startswith("Caught ") and "\nOriginal Traceback" in text:
        last = text.rstrip().splitlines()[-1]
        return last.split(": ", 1)[1] if ": " in last else last
    return text


def one_line(err: BaseException) -> str:
    """``Type: message``, as the console shows an error (rank-prefixed on DDP ranks other than 0)."""
    rank = f"[rank {global_rank()}] " if global_rank() else ""
    return f"{rank}{type(err).__name__}: {_message(err)}"


def _stopped_by_sigterm(err: BaseException) -> bool:
    """Whether ``err`` is Lightning's stop on SIGTERM (looked up only if Lightning is loaded: a
    command that fails before importing it fails in about a second)."""
    exceptions = sys.modules.get("lightning.pytorch.utilities.exceptions")
    return exceptions is not None and isinstance(err, exceptions.SIGTERMException)


def _in_sweep() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def clear_errors(task: Callable[[DictConfig], T]) -> Callable[[DictConfig], T | JobFailed]:
    """Wrap a Hydra task: its exceptions become one logged message and exit status 1.

    In a sweep the error is logged the same way and the job returns :class:`JobFailed`, so that
    the sweep goes on with its other jobs and sums up the failures at its end.
    """

    @functools.wraps(task)
    def run(cfg: DictConfig) -> T | JobFailed:
        try:
            return task(cfg)
        except SystemExit as err:  # Lightning's stop on SIGTERM is a SystemExit
            if not _stopped_by_sigterm(err):
                raise
            log.error("Stopped by SIGTERM. Resume with ckpt_path=last (or the path of the run's last.ckpt).")
            sys.exit(EXIT_SIGTERM)  # the checkpoint was saved by CheckpointOnInterrupt
        except Exception as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            _traceback_to_log_files(err)
            logs = " and ".join(_log_files()) or "no log file"
            where = f"traceback in {logs}; HYDRA_FULL_ERROR=1 prints it here"
            if _in_sweep():  # one line per failed job; the sweep's summary lists them again
                log.error("%s (%s)", one_line(err), where)
                return JobFailed(one_line(err), tuple(_log_files()))
            log.error("%s", one_line(err))
            log.error("(%s)", where)
            sys.exit(EXIT_FAILED)

    return run
