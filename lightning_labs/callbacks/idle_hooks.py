"""Per-batch hooks that do nothing, taken out of Lightning's way."""

from __future__ import annotations

import lightning as L

# The hooks Lightning calls on every callback for every batch (training, then evaluation).
BATCH_HOOKS = (
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
    "on_predict_batch_start",
    "on_predict_batch_end",
)


def idle_hooks(callback: L.Callback) -> list[str]:
    """The per-batch hooks ``callback`` leaves as ``Callback``'s own, which do nothing."""
    return [
        name
        for name in BATCH_HOOKS
        if getattr(type(callback), name, None) is getattr(L.Callback, name) and name not in vars(callback)
    ]


class SkipIdleBatchHooks(L.Callback):
    """Spares every callback of the run the per-batch hooks it does not implement.

    Lightning calls each of six hooks on every callback for every training step, whether the
    callback implements it or not, each call with its profiler name built and its profiler
    context entered: with the default set (checkpoints, progress, summaries, pictures, most of
    which act at epoch ends only) that is nearly a hundred calls of no-op hooks per step, about
    as long as a LeNet-5 step at batch 16 computes on the CPU (``benchmarks/train_overhead.py``).
    Lightning skips any hook attribute that is not callable; this sets the per-batch hooks a
    callback leaves as the base class's no-op to None on that instance, for the run, and puts
    them back when it ends. Hooks a callback implements are called as before.
    """

    def __init__(self) -> None:
        self.silenced: list[tuple[L.Callback, str]] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for callback in trainer.callbacks:
            for name in idle_hooks(callback):
                setattr(callback, name, None)
                self.silenced.append((callback, name))

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for callback, name in self.silenced:
            vars(callback).pop(name, None)
        self.silenced = []
