"""What every DataModule of the package shares: the facts a network needs, loaders, one-image transform."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler


class ClassificationData(L.LightningDataModule):
    """Base of the image-classification DataModules.

    Constructing one touches no file, so a config can be checked, a network sized and a
    checkpoint's data rebuilt for prediction anywhere; files are found and read in ``setup``,
    which fails with a message naming the path and the fix when they are missing.

    Args:
        batch_size: images per training (and evaluation) step.
        num_workers: DataLoader worker processes.
        pin_memory: page-locked host memory for faster copies to a GPU.
        mean, std: per-channel normalisation constants of the dataset.
    """

    name: str
    input_shape: tuple[int, int, int]

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        mean: Sequence[float] = (0.5,),
        std: Sequence[float] = (0.5,),
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be at least 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be 0 or more, got {num_workers}")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.class_names: list[str] = []

    @property
    def num_classes(self) -> int:
        raise NotImplementedError

    @property
    def facts(self) -> dict[str, Any]:
        """What a network must know about this data to be built for it."""
        return {
            "in_channels": self.input_shape[0],
            "num_classes": self.num_classes,
            "image_size": list(self.input_shape[1:]),
        }

    def eval_transform(self, image: Image.Image) -> torch.Tensor:
        """One image file's picture as the network sees it at evaluation (C x H x W, normalised)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        # Saved in every checkpoint by Lightning: predictions can name classes without the data.
        return {"class_names": list(self.class_names)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.class_names = list(state_dict.get("class_names", self.class_names))

    def _eval_sampler(self, dataset: Dataset) -> Sampler[int] | None:
        """Under DDP, each evaluation image on exactly one rank.

        Lightning's default distributed sampler repeats images to even out the ranks' shares,
        which would count them twice in val/test metrics; this one leaves the shares off by at
        most one image, so the synced metrics equal those of a single process.
        """
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1:
            return None
        return UnrepeatedDistributedSampler(
            dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
        )

    def _loader(
        self, dataset: Dataset | None, train: bool, collate_fn: Callable[[Any], Any] | None = None
    ) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{self.name}: call setup() before asking for a DataLoader")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=train,
            sampler=None if train else self._eval_sampler(dataset),
            drop_last=train and len(dataset) > self.batch_size,  # a lone last image breaks BatchNorm
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            collate_fn=collate_fn,
        )
