"""CIFAR-10 and CIFAR-100 from torchvision's on-disk format (python pickles)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10, CIFAR100

from lightning_labs.data.in_memory import InMemoryImageData

# torchvision's dataset classes name the folder, files and keys; they are also the downloaders.
VARIANTS: dict[str, tuple[type[CIFAR10], int]] = {"cifar10": (CIFAR10, 10), "cifar100": (CIFAR100, 100)}


def missing_files(root: Path, dataset: type[CIFAR10]) -> list[str]:
    """The files of ``dataset``'s on-disk layout that are not under ``root``."""
    names = [name for name, _ in dataset.train_list + dataset.test_list] + [dataset.meta["filename"]]
    folder = root / dataset.base_folder
    return [name for name in names if not (folder / name).is_file()]


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as file:
        return pickle.load(file, encoding="latin1")


class CIFARData(InMemoryImageData):
    """32 x 32 colour images: ``variant=cifar10`` (10 classes) or ``cifar100`` (100 fine classes).

    The pickles are read here rather than through ``torchvision.datasets.CIFAR10``, which
    insists on the md5 of the official release and so rejects re-packed or sub-sampled copies
    (and the small files the tests write); the download is still checked by torchvision.

    Args:
        root: folder that holds ``cifar-10-batches-py`` or ``cifar-100-python``.
        variant: ``cifar10`` or ``cifar100``.
        download: fetch the archive through torchvision when it is not on disk (needs network).
    """

    input_shape = (3, 32, 32)

    def __init__(
        self, root: str = "data", variant: str = "cifar10", download: bool = False, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if variant not in VARIANTS:
            raise ValueError(f"Unknown CIFAR variant {variant!r}; choose one of: {', '.join(VARIANTS)}")
        self.layout, self._num_classes = VARIANTS[variant]
        self.variant = self.name = variant
        self.root = Path(root)
        self.folder = self.root / self.layout.base_folder
        self.download = download

    @property
    def num_classes(self) -> int:
        return self._num_classes

    def check_files(self) -> None:
        missing = missing_files(self.root, self.layout)
        if missing:
            raise FileNotFoundError(
                f"{self.variant} not found: {self.folder} lacks {', '.join(missing)}. Pass "
                f"data.download=true to fetch it into {self.root} (needs network), or point "
                f"data.root at the folder that holds {self.layout.base_folder}/."
            )

    def prepare_data(self) -> None:
        if self.download and missing_files(self.root, self.layout):
            self.layout(str(self.root), train=True, download=True)

    def load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        files = self.layout.train_list if train else self.layout.test_list
        label_key = "labels" if self.variant == "cifar10" else "fine_labels"
        images, labels = [], []
        for name, _ in files:
            try:
                batch = _unpickle(self.folder / name)
                images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                labels += batch[label_key]
            except Exception as err:
                raise ValueError(
                    f"Could not read {self.folder / name}: {err!r}. The file may be truncated or "
                    "corrupt: delete the folder and fetch it again (data.download=true)."
                ) from None
        self.class_names = list(
            _unpickle(self.folder / self.layout.meta["filename"])[self.layout.meta["key"]]
        )
        return torch.from_numpy(np.concatenate(images)), torch.as_tensor(labels)
