"""CIFAR-10 and CIFAR-100 from torchvision's on-disk format (python pickles)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

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


def _text(value: Any) -> Any:
    """``value`` as ``str`` when it is ``bytes``: what Python 3 writes for CIFAR's Python 2 strings."""
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _unpickle(path: Path) -> dict[str, Any]:
    """One CIFAR pickle as a dict with text keys.

    The official pickles come from Python 2 and load with text keys; a batch written back by
    Python 3 after the dataset page's own reader (``encoding="bytes"``), as students who cut a
    subset do, has ``bytes`` keys (``b"data"``) and ``bytes`` class names (``b"airplane"``).
    """
    try:
        with open(path, "rb") as file:
            batch = pickle.load(file, encoding="latin1")
    except Exception as err:
        raise ValueError(
            f"Could not read {path}: {err!r}. The file may be truncated or corrupt: delete the "
            "folder and fetch it again (data.download=true)."
        ) from None
    if not isinstance(batch, dict):
        raise ValueError(f"{path} holds a {type(batch).__name__}, not the dict of a CIFAR pickle")
    return {_text(key): value for key, value in batch.items()}


def _entry(batch: dict[str, Any], key: str, path: Path) -> Any:
    """``batch[key]``, or an error naming the file and the keys it does have."""
    if key not in batch:
        raise ValueError(
            f"{path} has no {key!r} entry (it has: {', '.join(map(str, batch))}). Is it a file of "
            "the other CIFAR variant? data=cifar10 reads cifar-10-batches-py/, data=cifar100 "
            "reads cifar-100-python/."
        )
    return batch[key]


def _read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """The images (N x 3 x 32 x 32 uint8) and labels of one pickle, checked against each other."""
    batch = _unpickle(path)
    data, labels = _entry(batch, "data", path), _entry(batch, label_key, path)
    try:
        pixels = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else np.asarray(data)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{path}: its 'data' or {label_key!r} entry is not an array of numbers ({err}): the "
            "file is damaged or not a CIFAR batch; fetch it again (data.download=true)"
        ) from None
    if pixels.dtype != np.uint8:  # e.g. a subset written back as int64: fine if it holds bytes
        if pixels.size and (pixels.dtype.kind not in "iu" or pixels.min() < 0 or pixels.max() > 255):
            raise ValueError(
                f"{path}: its pixels are {pixels.dtype}, not whole numbers from 0 to 255 as in "
                "CIFAR; write the 'data' entry as uint8"
            )
        pixels = pixels.astype(np.uint8)
    if pixels.size != len(labels) * 3 * 32 * 32:
        raise ValueError(
            f"{path}: {pixels.size} bytes of pixels for {len(labels)} labels, expected "
            f"{len(labels)} x 3072 (3 x 32 x 32): the file is damaged or not a CIFAR batch; "
            "fetch it again (data.download=true)"
        )
    return pixels.reshape(-1, 3, 32, 32), labels


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
        batches = [_read_batch(self.folder / name, label_key) for name, _ in files]
        meta = self.folder / self.layout.meta["filename"]
        self.set_class_names(
            [_text(n) for n in _entry(_unpickle(meta), self.layout.meta["key"], meta)], str(meta)
        )
        images, labels = zip(*batches, strict=True)
        return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))
