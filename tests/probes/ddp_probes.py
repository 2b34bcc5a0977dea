"""Callbacks that DDP tests add from the command line (``+callbacks.x._target_=ddp_probes.X``).

They run inside the training processes the tests start, which find them through PYTHONPATH.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader


def _indices(loader: DataLoader) -> list[int]:
    return [int(i) for i in loader.sampler]


class RecordShards(L.Callback):
    """Write ``shards-rank<N>.json``: the dataset indices each loader of this rank serves, and
    how many images its training and test steps actually received."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)
        self.record: dict[str, Any] = {"train_images": 0, "test_images": 0}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.record["train"] = _indices(trainer.train_dataloader)
        self.record["val"] = _indices(trainer.val_dataloaders)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, *_: Any
    ) -> None:
        self.record["train_images"] += len(batch[1])

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.record["test"] = _indices(trainer.test_dataloaders)

    def on_test_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, *_: Any
    ) -> None:
        self.record["test_images"] += len(batch[1])

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"shards-rank{trainer.global_rank}.json"
        path.write_text(json.dumps(self.record))


class FailOnRank(L.Callback):
    """Raise on one rank at one training step, as a bug or a bad batch would."""

    def __init__(self, rank: int, at_step: int) -> None:
        self.rank, self.at_step = rank, at_step

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_rank == self.rank and batch_idx == self.at_step:
            raise RuntimeError(f"probe failure on rank {self.rank} at step {self.at_step}")
