"""Datasets small enough to hold in memory (MNIST, CIFAR), as uint8 tensors batched without per-image Python.

The lab datasets fit in memory many times over. Files are parsed once; after that a batch is one
tensor index, and augmentation plus normalisation run per batch on the training device
(``on_after_batch_transfer``), which lets a small model train at the speed of the model rather
than of the data loader.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF

from lightning_labs.data.augment import normalize, random_crop, random_hflip
from lightning_labs.data.base import ClassificationData
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


class InMemoryImageData(ClassificationData):
    """Subclasses say what the data is (``input_shape``, ``num_classes``), check and ``load`` it.

    Args:
        val_fraction: share of the training split held out for validation.
        split_seed: seed of the train/validation split, fixed so that runs compare.
        crop_padding: random-crop augmentation: pad by this many pixels, crop back (0: off).
        hflip: random horizontal flip augmentation.
        Other arguments: see :class:`ClassificationData` (``num_workers=0`` is fastest here).
    """

    def __init__(
        self,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        crop_padding: int = 0,
        hflip: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0 < val_fraction < 1:
            raise ValueError(f"data.val_fraction must be between 0 and 1, got {val_fraction}")
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.crop_padding = crop_padding
        self.hflip = hflip
        self.train_set: TensorImages | None = None
        self.val_set: TensorImages | None = None
        self.test_set: TensorImages | None = None

    def check_files(self) -> None:
        """Raise, naming the path and the fix, when the dataset's files are not where expected."""

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
        self.check_files()
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

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True, collate_fn=_batch_as_is)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False, collate_fn=_batch_as_is)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False, collate_fn=_batch_as_is)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False, collate_fn=_batch_as_is)

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
        return self._normalize(images), labels

    def _normalize(self, images: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, device=images.device)
        std = torch.tensor(self.std, device=images.device)
        return normalize(images, mean, std)

    def eval_transform(self, image: Image.Image) -> torch.Tensor:
        channels, height, width = self.input_shape
        image = image.convert("L" if channels == 1 else "RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        return self._normalize(TF.pil_to_tensor(image).unsqueeze(0))[0]
