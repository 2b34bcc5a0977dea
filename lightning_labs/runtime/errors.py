"""A failed command ends with one clear message and a non-zero exit status, not a traceback.

The messages of the package's errors say what was wrong and how to fix it; the traceback
helps only whoever debugs the package, so it goes to the run's log file instead of the
console (``HYDRA_FULL_ERROR=1`` shows it there too, as Hydra does).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
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
    text = str(err)
    if text.startswith("Caught ") and "\nOriginal Traceback" in text:
        last = text.rstrip().splitlines()[-1]
        return last.split(": ", 1)[1] if ": " in last else last
    return text


def _stopped_by_sigterm(err: BaseException) -> bool:
    """Whether ``err`` is Lightning's stop on SIGTERM (looked up only if Lightning is loaded: a
    command that fails before importing it fails in about a second)."""
    exceptions = sys.modules.get("lightning.pytorch.utilities.exceptions")
    return exceptions is not None and isinstance(err, exceptions.SIGTERMException)


def _in_sweep() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def clear_errors(task: Callable[[DictConfig], T]) -> Callable[[DictConfig], T]:
    """Wrap a Hydra task: its exceptions become one logged message and exit status 1.

    In a sweep the error is logged the same way and then raised, so that Hydra handles the
    failed job as it does any other.
    """

    @functools.wraps(task)
    def run(cfg: DictConfig) -> T:
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
            where = " and ".join(_log_files())
            rank = f"[rank {global_rank()}] " if global_rank() else ""
            log.error("%s%s: %s", rank, type(err).__name__, _message(err))
            log.error("(traceback in %s; HYDRA_FULL_ERROR=1 prints it here)", where or "no log file")
            if _in_sweep():
                raise
            sys.exit(EXIT_FAILED)

    return run
