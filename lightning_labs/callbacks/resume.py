"""A run resumed into a new run directory keeps the best checkpoint of its whole history."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn

from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)


class KeepBestAcrossResume(Callback):
    """Bring the resumed run's best checkpoint, and its score, into the new checkpoint folder.

    Lightning restores a ``ModelCheckpoint``'s best score only when the checkpoint it resumes
    from was written to the same folder ("dirpath has changed" otherwise). The first epoch of a
    run resumed elsewhere would then become its ``best.ckpt`` whatever its score, and the run
    would test that instead of the best of its history. This copies the earlier best file into
    the new folder and gives the callback its score, so later epochs replace it only if they
    beat it. (With ``save_top_k`` above 1, only the best of the earlier ones comes along.)
    """

    def __init__(self) -> None:
        self.saved_states: dict[str, Any] = {}

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Called before the callbacks load their states; they are set up after that, in on_fit_start.
        if trainer.state.fn == TrainerFn.FITTING:
            self.saved_states = checkpoint.get("callbacks") or {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for callback in trainer.checkpoint_callbacks:
            state = self.saved_states.get(callback.state_key) or {}
            moved = state.get("dirpath") != callback.dirpath
            if callback.monitor and moved and state.get("best_model_path"):
                carry_best(trainer, callback, Path(state["best_model_path"]), state["best_model_score"])
        self.saved_states = {}


def carry_best(trainer: L.Trainer, callback: ModelCheckpoint, earlier: Path, score: torch.Tensor) -> None:
    """Copy ``earlier`` (the best so far, of ``score``) into the callback's folder as its best."""
    if not earlier.is_file():
        raise FileNotFoundError(
            f"The checkpoint resumed from names {earlier} as its best so far ({callback.monitor}="
            f"{float(score):.4f}), and that file is gone: this run could not test the best of its "
            "history. Put the file back, or start a new run from the weights with "
            f"model.weights={trainer.ckpt_path} instead of ckpt_path."
        )
    copy = Path(callback.dirpath) / earlier.name
    if trainer.is_global_zero and not (copy.exists() and copy.samefile(earlier)):
        copy.parent.mkdir(parents=True, exist_ok=True)
        partial = copy.with_name(f".{copy.name}.tmp")  # a kill during the copy leaves no half file
        shutil.copy2(earlier, partial)
        os.replace(partial, copy)
    trainer.strategy.barrier()
    callback.best_model_path = callback.kth_best_model_path = str(copy)
    callback.best_model_score = callback.kth_value = score
    callback.best_k_models = {str(copy): score}
    log.info(
        "Resumed into a new run directory: the best checkpoint so far (%s=%.4f), %s, is copied to %s; "
        "later epochs replace it only if they beat it",
        callback.monitor,
        float(score),
        earlier,
        copy,
    )
