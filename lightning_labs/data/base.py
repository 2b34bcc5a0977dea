"""The shared DataModule: a whole image dataset held as uint8 tensors, batched without per-image Python.

The lab datasets (MNIST, CIFAR) fit in memory many times over. Files are parsed once by
torchvision's own dataset classes; after that a batch is one tensor index, and augmentation plus
normalisation run per batch on the training device (``on_after_batch_transfer``), which is what
lets a small model train at the speed of the model rather than of the data loader.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from lightning_labs.data.augment import normalize, random_crop, random_hflip
from lightning_labs.logs import get_logger

log = get_logger(__name__)


class TensorImages(Dataset):
    """Images (uint8, N x C x H x W) and labels; ``__getitems__`` returns a whole batch at once."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices)
        return self.images[index], self.labels[index]


def _batch_as_is(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``collate_fn`` for :class:`TensorImages`: the batch is already stacked."""
    return batch


class ImageClassificationData(L.LightningDataModule):
    """Base class: subclasses say what the data is (``input_shape``, ``num_classes``) and ``load`` it.

    Args:
        batch_size: images per training step (and per evaluation step).
        num_workers: DataLoader worker processes; 0 is fastest for tensor-resident data.
        pin_memory: page-locked host memory for faster copies to a GPU.
        val_fraction: share of the training split held out for validation.
        split_seed: seed of the train/validation split, fixed so that runs compare.
        crop_padding: random-crop augmentation: pad by this many pixels, crop back (0: off).
        hflip: random horizontal flip augmentation.
        mean, std: per-channel normalisation constants of the dataset.
    """

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        crop_padding: int = 0,
        hflip: bool = False,
        mean: Sequence[float] = (0.5,),
        std: Sequence[float] = (0.5,),
    ) -> None:
        super().__init__()
        if not 0 < val_fraction < 1:
            raise ValueError(f"data.val_fraction must be between 0 and 1, got {val_fraction}")
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.crop_padding = crop_padding
        self.hflip = hflip
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.class_names: list[str] = []
        self.train_set: TensorImages | None = None
        self.val_set: TensorImages | None = None
        self.test_set: TensorImages | None = None

    @property
    def facts(self) -> dict[str, object]:
        """What a network must know about this data to be built for it."""
        return {
            "in_channels": self.input_shape[0],
            "num_classes": self.num_classes,
            "image_size": list(self.input_shape[1:]),
        }

    def load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Images as uint8 N x C x H x W and int64 labels of the train or test split."""
        raise NotImplementedError

    def _checked_load(self, train: bool) -> TensorImages:
        images, labels = self.load(train)
        if tuple(images.shape[1:]) != tuple(self.input_shape) or images.dtype != torch.uint8:
            raise ValueError(
                f"{self.name}: the {'train' if train else 'test'} files hold {images.dtype} images "
                f"of shape {tuple(images.shape[1:])}, expected uint8 {self.input_shape}"
            )
        if len(images) != len(labels) or len(labels) == 0:
            raise ValueError(
                f"{self.name}: {len(images)} images but {len(labels)} labels in the "
                f"{'train' if train else 'test'} split"
            )
        return TensorImages(images, labels.long())

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", None) and self.train_set is None:
            full = self._checked_load(train=True)
            order = torch.randperm(len(full), generator=torch.Generator().manual_seed(self.split_seed))
            n_val = max(1, round(len(full) * self.val_fraction))
            val, train = order[:n_val], order[n_val:]
            self.val_set = TensorImages(full.images[val], full.labels[val])
            self.train_set = TensorImages(full.images[train], full.labels[train])
            log.info(
                "%s: %d train / %d val images (val_fraction=%s, split_seed=%d)",
                self.name,
                len(train),
                len(val),
                self.val_fraction,
                self.split_seed,
            )
        if stage in ("test", "predict", None) and self.test_set is None:
            self.test_set = self._checked_load(train=False)
            log.info("%s: %d test images", self.name, len(self.test_set))

    def _loader(self, dataset: TensorImages | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{self.name}: call setup() before asking for a DataLoader")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train and len(dataset) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            collate_fn=_batch_as_is,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False)

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """The training augmentation on a uint8 batch."""
        images = random_crop(images, self.crop_padding)
        return random_hflip(images) if self.hflip else images

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Lightning also sends the model's example input (a bare float tensor) through this hook
        # for its summary; only the (uint8 images, labels) batches of our loaders are transformed.
        if not isinstance(batch, (tuple, list)):
            return batch
        images, labels = batch
        if self.trainer is not None and self.trainer.training:
            images = self.augment(images)
        mean = torch.tensor(self.mean, device=images.device)
        std = torch.tensor(self.std, device=images.device)
        return normalize(images, mean, std), labels
