"""Logging set-up shared by the entry points: rank-zero messages only, and no third-party noise."""

from __future__ import annotations

import logging
import warnings

from lightning.pytorch.utilities import rank_zero_only

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
)


class RankZeroFilter(logging.Filter):
    """Passes the records of global rank 0, less product tips; the run's log file uses it too."""

    def filter(self, record: logging.LogRecord) -> bool:
        return rank_zero_only.rank == 0 and not str(record.msg).startswith(_NOISE)


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
