"""Writers of small datasets in the real on-disk formats, so that the real loaders are exercised.

Images are learnable: each class has its own colour/intensity pattern plus noise, so a model
trained for a few steps beats chance.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

from lightning_labs.data.mnist import BUNDLED_SAMPLE


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (LeCun's format): magic with the uint8 type code and rank, sizes, raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def read_idx(path: Path) -> np.ndarray:
    data = path.read_bytes()
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def write_mnist(root: Path, n_train: int, n_test: int) -> Path:
    """``root/MNIST/raw/*-ubyte`` holding real digits taken from the bundled sample."""
    raw = BUNDLED_SAMPLE / "MNIST" / "raw"
    images = read_idx(raw / "train-images-idx3-ubyte")
    labels = read_idx(raw / "train-labels-idx1-ubyte")
    out = root / "MNIST" / "raw"
    write_idx(out / "train-images-idx3-ubyte", images[:n_train])
    write_idx(out / "train-labels-idx1-ubyte", labels[:n_train])
    write_idx(out / "t10k-images-idx3-ubyte", images[n_train : n_train + n_test])
    write_idx(out / "t10k-labels-idx1-ubyte", labels[n_train : n_train + n_test])
    return root


def _class_images(rng: np.random.Generator, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows of 3072 bytes (R plane, G plane, B plane of 32x32), as in the CIFAR pickles."""
    palette = np.random.default_rng(1234).uniform(30, 225, size=(num_classes, 3, 32, 32))
    pixels = palette[labels] + rng.normal(0, 25, size=(len(labels), 3, 32, 32))
    return pixels.clip(0, 255).astype(np.uint8).reshape(len(labels), 3072)


def _dump(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        pickle.dump(obj, file, protocol=2)


def write_cifar10(root: Path, per_batch: int = 40, n_test: int = 100, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py``: data_batch_1..5, test_batch and batches.meta."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _dump(folder / "batches.meta", {"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072})
    batches = [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]
    for name, size in batches:
        labels = rng.integers(0, 10, size)
        _dump(
            folder / name,
            {
                "batch_label": name,
                "labels": labels.tolist(),
                "data": _class_images(rng, labels, 10),
                "filenames": [f"{name}_{i}.png" for i in range(size)],
            },
        )
    return root


def write_cifar100(root: Path, n_train: int = 300, n_test: int = 100, seed: int = 0) -> Path:
    """``root/cifar-100-python``: train, test and meta with fine and coarse labels."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    _dump(
        folder / "meta",
        {
            "fine_label_names": [f"fine_{i}" for i in range(100)],
            "coarse_label_names": [f"coarse_{i}" for i in range(20)],
        },
    )
    for name, size in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 100, size)
        _dump(
            folder / name,
            {
                "batch_label": name,
                "fine_labels": labels.tolist(),
                "coarse_labels": (labels // 5).tolist(),
                "data": _class_images(rng, labels, 100),
                "filenames": [f"{name}_{i}.png" for i in range(size)],
            },
        )
    return root
