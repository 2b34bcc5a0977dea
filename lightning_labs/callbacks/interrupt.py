"""Save a checkpoint when a run is told to stop (SIGTERM, Ctrl-C), so that it can resume."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)


class CheckpointOnInterrupt(L.Callback):
    """On SIGTERM (SLURM pre-emption, ``kill``) or a first Ctrl-C: finish the batch, save, exit.

    Lightning notices SIGTERM between batches and stops there; this callback writes the
    checkpoint then, at a batch boundary, so a resumed run repeats no step and skips none. A
    first Ctrl-C is turned into that SIGTERM; a second one stops at once, as usual.

    Args:
        path: the checkpoint to write (the run's ``last.ckpt``, which ``ckpt_path=last`` finds).
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._previous_sigint: Any = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._previous_sigint = signal.signal(signal.SIGINT, self._first_ctrl_c)

    def _first_ctrl_c(self, signum: int, frame: FrameType | None) -> None:
        log.warning("Ctrl-C: stopping after this batch and saving a checkpoint (Ctrl-C again: stop now)")
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.kill(os.getpid(), signal.SIGTERM)

    def _restore_sigint(self) -> None:
        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_sigint()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore_sigint()
        if isinstance(exception, SIGTERMException) and trainer.state.fn == "fit":
            trainer.save_checkpoint(self.path)  # every rank takes part; rank 0 writes
            log.warning("SIGTERM: saved %s at step %d", self.path, trainer.global_step)
