"""Writers of small datasets in the real on-disk formats, so that the real loaders are exercised.

Images are learnable: each class has its own colour/intensity pattern plus noise, so a model
trained for a few steps beats chance.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

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


def _bytes(value: object) -> object:
    """Strings (alone or in a list) as ``bytes``: what ``pickle.load(encoding="bytes")`` returns."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [v.encode() for v in value]
    return value


def _dump(path: Path, obj: dict, bytes_keys: bool = False) -> None:
    """A pickle as the official files (protocol 2, text keys), or with ``bytes_keys`` as
    written back by Python 3 after the dataset page's reader (``b"data"``, ``b"airplane"``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if bytes_keys:
        obj = {key.encode(): _bytes(value) for key, value in obj.items()}
    with open(path, "wb") as file:
        pickle.dump(obj, file, protocol=pickle.DEFAULT_PROTOCOL if bytes_keys else 2)


def write_cifar10(
    root: Path, per_batch: int = 40, n_test: int = 100, seed: int = 0, bytes_keys: bool = False
) -> Path:
    """``root/cifar-10-batches-py``: data_batch_1..5, test_batch and batches.meta."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    meta = {"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}
    _dump(folder / "batches.meta", meta, bytes_keys)
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
            bytes_keys,
        )
    return root


def write_cifar100(
    root: Path, n_train: int = 300, n_test: int = 100, seed: int = 0, bytes_keys: bool = False
) -> Path:
    """``root/cifar-100-python``: train, test and meta with fine and coarse labels."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    _dump(
        folder / "meta",
        {
            "fine_label_names": [f"fine_{i}" for i in range(100)],
            "coarse_label_names": [f"coarse_{i}" for i in range(20)],
        },
        bytes_keys,
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
            bytes_keys,
        )
    return root


# The first ten ImageNet-1k class folders (WordNet ids), in the dataset's own sorted order.
IMAGENET_WNIDS = [
    "n01440764",  # tench
    "n01443537",  # goldfish
    "n01484850",  # great white shark
    "n01491361",  # tiger shark
    "n01494475",  # hammerhead
    "n01496331",  # electric ray
    "n01498041",  # stingray
    "n01514668",  # cock
    "n01514859",  # hen
    "n01518878",  # ostrich
]


def imagenet_wnids(count: int) -> list[str]:
    """``count`` ImageNet-style class folder names (real wnids first, then made-up ones), sorted."""
    made_up = [f"n{2000000 + 7919 * i:08d}" for i in range(max(0, count - len(IMAGENET_WNIDS)))]
    return sorted((IMAGENET_WNIDS + made_up)[:count])


def _folder_image(
    rng: np.random.Generator, label: int, num_classes: int, width: int, height: int
) -> Image.Image:
    """One class's picture: its own colour and coarse 4x4 pattern, plus per-image noise."""
    palette = np.random.default_rng(4321)
    colours = palette.uniform(40, 215, size=(num_classes, 3))
    patterns = palette.choice([-45.0, 45.0], size=(num_classes, 4, 4))
    grid = np.kron(patterns[label], np.ones((-(-height // 4), -(-width // 4))))[:height, :width]
    pixels = colours[label][None, None, :] + grid[:, :, None] + rng.normal(0, 20, size=(height, width, 3))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def write_image_folder(
    root: Path,
    classes: int | Sequence[str],
    per_class: int | Mapping[str, int],
    size: int | tuple[int, int],
    splits: Sequence[str] = ("train", "val"),
    seed: int = 0,
) -> list[str]:
    """``root/<split>/<class>/*.JPEG``, ImageNet's layout, in real JPEG files; returns the class names.

    Args:
        classes: a number of classes (named like ImageNet's wnids, ``n01440764``...) or the names.
        per_class: images per class in every split, or a number per split name.
        size: image side, or (width, height); every other image is turned on its side, so a
            split mixes landscape and portrait pictures as ImageNet does.
    """
    names = imagenet_wnids(classes) if isinstance(classes, int) else list(classes)
    width, height = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    for split in splits:
        count = per_class if isinstance(per_class, int) else per_class[split]
        for label, name in enumerate(sorted(names)):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                w, h = (width, height) if i % 2 == 0 else (height, width)
                image = _folder_image(rng, label, len(names), w, h)
                image.save(folder / f"{name}_{split}_{i:04d}.JPEG", format="JPEG", quality=90)
    return names
