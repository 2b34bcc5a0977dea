"""Logging set-up shared by the entry points: rank-zero messages only, and no third-party noise."""

from __future__ import annotations

import logging
import sys
import warnings

from lightning_labs.runtime.launch import global_rank

# Messages that say nothing about the user's run: product tips, and warnings that do not apply here
# (a DataLoader without workers is the fast choice for tensor-resident data; frozen BatchNorm layers
# are in eval mode on purpose, and the run logs what it froze; the graph tracer's deprecation is
# Lightning's to act on).
_NOISE = ("💡 Tip",)
_NOISY_WARNINGS = (
    r".*does not have many workers.*",
    r".*module\(s\) in eval mode at the start of training.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*LeafSpec.*is deprecated.*",
    r".*torch\.jit\.trace(_method)?` is deprecated.*",  # TensorBoardLogger(log_graph=True) traces
    # Our DataModules save the training position themselves (ClassificationData.state_dict):
    r".*resuming from a checkpoint that ended before the epoch ended.*",
    # A run resumed into a new folder carries its best checkpoint over and says so (callbacks/resume.py):
    r".*The dirpath has changed from .*won't be reloaded.*",
)


class RankZeroFilter(logging.Filter):
    """Passes the records of global rank 0, less product tips; the run's log file uses it too."""

    def filter(self, record: logging.LogRecord) -> bool:
        return global_rank() == 0 and not str(record.msg).startswith(_NOISE)


class LogFile(logging.FileHandler):
    """The run's log file; when it cannot be written (a full disk), one line says so, then the console only.

    A plain ``FileHandler`` prints a traceback for every record it fails to write: hundreds of
    lines that bury the one message saying why the run stopped.
    """

    def handleError(self, record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        if not isinstance(err, OSError):
            super().handleError(record)
            return
        print(
            f"Could not write the log file {self.baseFilename} ({err.strerror or err}): messages go "
            "to the console only from now on.",
            file=sys.stderr,
        )
        self.setLevel(logging.CRITICAL + 1)  # writes nothing more


def get_logger(name: str) -> logging.Logger:
    """A logger whose records are emitted on global rank 0 only."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RankZeroFilter) for f in logger.filters):
        logger.addFilter(RankZeroFilter())
    return logger


def quiet_third_party() -> None:
    """Silence known noise and send Lightning's own log records through our handlers.

    Lightning attaches its own console handler when it is imported before logging is
    configured, which keeps its messages out of the run's log file; routing them to the root
    logger puts them in both the console and ``train.log``.
    """
    for pattern in _NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # A logger's filters see only records made on that very logger: Lightning's messages are
    # made on its rank_zero modules' loggers.
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        get_logger(name)
