"""Datasets small enough to hold in memory (MNIST, CIFAR), as uint8 tensors batched without per-image Python.

The lab datasets fit in memory many times over. Files are parsed once, then one of two pipelines
makes the batches (``data.pipeline``):

* ``batched`` (the default): a batch is one tensor index, and augmentation plus normalisation run
  per batch on the training device (``on_after_batch_transfer``), which lets a small model train
  at the speed of the model rather than of the data loader.
* ``per_sample``: torchvision.transforms.v2 transforms run image by image in the DataLoader
  workers, as in the classic labs; ``data.train_transforms`` / ``data.test_transforms`` swap in
  any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from lightning_labs.data.augment import normalize, random_crop, random_hflip
from lightning_labs.data.base import ClassificationData, fingerprint
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)

PIPELINES = ("batched", "per_sample")


class TensorImages(Dataset):
    """Images (uint8, N x C x H x W) and labels; ``__getitems__`` returns a whole batch at once."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices, device=self.images.device)
        return self.images[index], self.labels[index]

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def nbytes(self) -> int:
        return self.images.nbytes + self.labels.nbytes

    def to(self, device: torch.device) -> TensorImages:
        """The split on ``device`` (itself when it is there already)."""
        if self.images.device == device:
            return self
        return TensorImages(self.images.to(device), self.labels.to(device))

    def fingerprint(self) -> str:
        """Every label and 64 images spread over the split: a changed file or split shows."""
        sample = self.images[:: max(1, len(self.images) // 64)].contiguous().cpu()
        return fingerprint(self.labels.cpu().numpy().tobytes(), sample.numpy().tobytes())


class TransformedImages(Dataset):
    """The ``per_sample`` pipeline's dataset: each uint8 image goes through ``transform`` on its own."""

    def __init__(self, data: TensorImages, transform: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.data, self.transform = data, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.transform(tv_tensors.Image(self.data.images[index]))
        return image.as_subclass(torch.Tensor), self.data.labels[index]


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
        pipeline: ``batched`` (augment and normalise whole batches on the training device) or
            ``per_sample`` (torchvision.transforms.v2, image by image in the DataLoader workers).
        train_transforms, test_transforms: ``per_sample`` only: v2 transforms (in a config, a
            list of ``_target_`` entries) applied in order to each uint8 C x H x W image of the
            training, resp. validation and test, splits, in place of ``crop_padding`` and
            ``hflip``; null keeps that recipe (training) or no augmentation (evaluation). Every
            image then gets ``ToDtype(float32, scale=True)`` and ``Normalize(mean, std)``.
        Other arguments: see :class:`ClassificationData` (``num_workers=0`` is fastest with
            ``batched``; ``per_sample`` gains from workers).
    """

    def __init__(
        self,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        crop_padding: int = 0,
        hflip: bool = False,
        pipeline: str = "batched",
        train_transforms: Sequence[Callable[[Any], Any]] | None = None,
        test_transforms: Sequence[Callable[[Any], Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0 < val_fraction < 1:
            raise ValueError(f"data.val_fraction must be between 0 and 1, got {val_fraction}")
        if pipeline not in PIPELINES:
            raise ValueError(f"Unknown data.pipeline {pipeline!r}; choose one of: {', '.join(PIPELINES)}")
        given = {"train_transforms": train_transforms, "test_transforms": test_transforms}
        for key, transforms in given.items():
            if transforms is not None and pipeline != "per_sample":
                raise ValueError(
                    f"data.{key} is applied image by image: it needs data.pipeline=per_sample "
                    f"(data.pipeline={pipeline} augments whole batches with crop_padding and hflip)"
                )
            if not all(callable(t) for t in transforms or ()):
                raise TypeError(
                    f"data.{key} must list transforms, e.g. "
                    "[{_target_: torchvision.transforms.v2.RandomRotation, degrees: 10}]"
                )
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.crop_padding = crop_padding
        self.hflip = hflip
        self.pipeline = pipeline
        self.train_transforms = None if train_transforms is None else list(train_transforms)
        self.test_transforms = None if test_transforms is None else list(test_transforms)
        self.train_set: TensorImages | None = None
        self.val_set: TensorImages | None = None
        self.test_set: TensorImages | None = None

    def split_fingerprints(self) -> dict[str, tuple[int, str]]:
        splits = {"train": self.train_set, "val": self.val_set, "test": self.test_set}
        return {
            name: (len(split), split.fingerprint()) for name, split in splits.items() if split is not None
        }

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
        split = "train" if train else "test"
        if len(images) != len(labels) or len(labels) == 0:
            raise ValueError(
                f"{self.name}: {len(images)} images but {len(labels)} labels in the {split} split"
            )
        labels = labels.long()
        outside = labels[(labels < 0) | (labels >= self.num_classes)]
        if len(outside):
            raise ValueError(
                f"{self.name}: {len(outside)} labels of the {split} split are outside "
                f"0..{self.num_classes - 1} (e.g. {outside[0].item()}): the files do not belong to a "
                f"{self.num_classes}-class dataset. Check the files (or the data config that names them)."
            )
        return TensorImages(images, labels)

    def setup(self, stage: str | None = None) -> None:
        """Load the splits ``stage`` needs; training loads the test split too, so that a broken
        test file stops the run before it trains rather than after."""
        self.check_files()
        if stage in ("fit", "validate", None) and self.train_set is None:
            full = self._checked_load(train=True)
            order = torch.randperm(len(full), generator=torch.Generator().manual_seed(self.split_seed))
            n_val = max(1, round(len(full) * self.val_fraction))
            val, train = order[:n_val], order[n_val:]
            if len(train) == 0:
                raise ValueError(
                    f"{self.name}: the training split is empty: all {len(full)} images went to validation "
                    f"(data.val_fraction={self.val_fraction}). Lower data.val_fraction."
                )
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
        if stage in ("fit", "test", "predict", None) and self.test_set is None:
            self.test_set = self._checked_load(train=False)
            log.info("%s: %d test images", self.name, len(self.test_set))
        self._keep_on_training_device()

    def _keep_on_training_device(self) -> None:
        """On a CUDA device, keep the splits there: each batch is then cut, augmented and
        normalised on the GPU, with no copy from the host and no wait for one. Only for the
        ``batched`` pipeline without workers (worker processes cannot index GPU memory), and only
        when the splits take under a quarter of the GPU's free memory (MNIST: 55 MB, CIFAR: 180 MB)."""
        device = self.training_device
        if device.type != "cuda" or self.pipeline != "batched" or self.num_workers > 0:
            return
        splits = {"train_set": self.train_set, "val_set": self.val_set, "test_set": self.test_set}
        present = {name: split for name, split in splits.items() if split is not None}
        if all(split.device == device for split in present.values()):
            return
        size = sum(split.nbytes for split in present.values())
        free, _ = torch.cuda.mem_get_info(device)
        if size > free / 4:
            log.info(
                "%s: %.0f MB of images stay in host memory (over a quarter of the GPU's free %.0f MB)",
                self.name,
                size / 2**20,
                free / 2**20,
            )
            return
        for name, split in present.items():
            setattr(self, name, split.to(device))
        log.info(
            "%s: the splits (%.0f MB) are kept on %s: batches are cut and augmented there",
            self.name,
            size / 2**20,
            device,
        )

    def train_dataloader(self) -> DataLoader:
        return self._split_loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._split_loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._split_loader(self.test_set, train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._split_loader(self.test_set, train=False)

    def _split_loader(self, split: TensorImages | None, train: bool) -> DataLoader:
        if self.pipeline == "per_sample" and split is not None:
            return self._loader(TransformedImages(split, self.sample_transform(train)), train)
        return self._loader(split, train, collate_fn=_batch_as_is)  # (None: _loader says why)

    def sample_transform(self, train: bool) -> v2.Compose:
        """The ``per_sample`` pipeline's transform of one uint8 image, for training or evaluation."""
        steps = self.train_transforms if train else self.test_transforms
        if steps is None:  # the batched recipe, image by image
            steps = []
            if train and self.crop_padding > 0:
                steps.append(v2.RandomCrop(self.input_shape[1:], padding=self.crop_padding))
            if train and self.hflip:
                steps.append(v2.RandomHorizontalFlip())
        return v2.Compose([*steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean, self.std)])

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """The ``batched`` pipeline's training augmentation of a uint8 batch."""
        images = random_crop(images, self.crop_padding)
        return random_hflip(images) if self.hflip else images

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Lightning also sends the model's example input (a bare float tensor) through this hook
        # for its graph; only the (uint8 images, labels) batches of the batched pipeline are
        # transformed here (per_sample batches arrive augmented and normalised).
        if self.pipeline == "per_sample" or not isinstance(batch, (tuple, list)):
            return super().on_after_batch_transfer(batch, dataloader_idx)
        images, labels = batch
        if self.trainer is not None and self.trainer.training:
            images = self.augment(images)
        return super().on_after_batch_transfer((self._normalize(images), labels), dataloader_idx)

    def _normalize(self, images: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, device=images.device)
        std = torch.tensor(self.std, device=images.device)
        return normalize(images, mean, std)

    def eval_transform(self, image: Image.Image) -> torch.Tensor:
        channels, height, width = self.input_shape
        image = image.convert("L" if channels == 1 else "RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        pixels = TF.pil_to_tensor(image)
        if self.pipeline == "per_sample":
            return self.sample_transform(train=False)(tv_tensors.Image(pixels)).as_subclass(torch.Tensor)
        return self._normalize(pixels.unsqueeze(0))[0]
