"""Your own ``torch.utils.data.Dataset`` as a run's data (``data=custom``), built torchvision-style.

Your class is built as ``MyDataset(train=True|False, transform=..., **its settings)`` and gives
``(image, label)`` pairs: the image a PIL image, a numpy array (H x W or H x W x C) or a tensor
(C x H x W), which the given ``transform`` turns into the network's input; the label a class
number. Only ``setup`` (and the first look at the class count or input shape before training)
imports your module: a checkpoint records both, so ``predict image=...`` and ``export`` rebuild
this DataModule where your module is not importable.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from hydra.utils import get_class
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

from lightning_labs.data.base import ClassificationData, fingerprint
from lightning_labs.runtime.config import instantiate, to_plain
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)

PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}  # a picture file converted for a network of that many channels


def plain_tensor(image: torch.Tensor) -> torch.Tensor:
    """A transform's ``tv_tensors.Image`` as a plain tensor, which batches like any other."""
    return image.as_subclass(torch.Tensor)


def import_dataset_class(target: str) -> type:
    """The class named by ``data.dataset._target_``, or an error that says how to make it importable."""
    try:
        return get_class(target)
    except (ImportError, ValueError) as err:
        package = target.split(".")[0]
        raise ImportError(
            f"cannot import {target}: run from the folder that holds {package} (with python -m "
            f"lightning_labs.<command>; the ll-* scripts do not look there), or add it to PYTHONPATH "
            f"(PYTHONPATH=/path/to/folder/above/{package}). ({err})"
        ) from None


def tensor_image(where: str, image: Any) -> torch.Tensor:
    """``image`` checked to be what the given transform makes: a C x H x W tensor."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(
            f"{where} gave a {type(image).__name__} image: apply the transform your Dataset is given "
            "(image = self.transform(image) in __getitem__)."
        )
    if image.dim() != 3:
        raise ValueError(
            f"{where} is an image of shape {_shape(image.shape)}: images must be C x H x W tensors, "
            "H x W (x C) numpy arrays or PIL images."
        )
    return image


class CheckedSamples(Dataset):
    """Your Dataset's samples, each checked as it is read: a C x H x W tensor of the input shape
    and a label in ``0..num_classes-1``; a wrong one stops with a message naming its index."""

    def __init__(self, data: Dataset, source: str, shape: Sequence[int], num_classes: int | None) -> None:
        self.data, self.source = data, source
        self.shape, self.num_classes = tuple(shape), num_classes

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.data[index]
        where = f"{self.source}[{index}]"
        if tuple(tensor_image(where, image).shape) != self.shape:
            raise ValueError(
                f"{where} is an image of shape {_shape(image.shape)}, but the first training image is "
                f"{_shape(self.shape)}, the network's input: every image must have one shape. Resize "
                "them in your Dataset, or give data.input_shape=[C,H,W] of the images."
            )
        return image, self.label(index, label)

    def label(self, index: int, label: Any) -> int:
        """``label`` as an int, checked to be a class number."""
        where = f"{self.source}[{index}]"
        try:
            number = operator.index(label)
        except TypeError:
            raise TypeError(
                f"{where} has the label {label!r} ({type(label).__name__}): labels must be class "
                "numbers (int)."
            ) from None
        known = self.num_classes is not None
        if number < 0 or (known and number >= self.num_classes):  # type: ignore[operator]
            wanted = f"0 to {self.num_classes - 1} ({self.num_classes} classes)" if known else "from 0"  # type: ignore[operator]
            raise ValueError(
                f"{where} has the label {number}: labels are class numbers {wanted}. Fix the label "
                "in your Dataset (or set data.num_classes to the number of classes)."
            )
        return number


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(n) for n in shape)


class CustomData(ClassificationData):
    """Your own Dataset class, with a validation split held out of its training set.

    Args:
        dataset: your class's config: ``_target_`` (``my_pkg.MyDataset``) and its own arguments
            (``root``...); ``train`` and ``transform`` are added. Imported in ``setup`` only.
        num_classes: class count; null: your Dataset's ``classes`` list, else the largest
            training label + 1.
        class_names: what predictions call the classes; null: your Dataset's ``classes``, if any.
        input_shape: channels, height, width of every image; null: the first training image's.
        val_fraction, split_seed: share of the training set held out for validation, and the
            seed of that split.
        train_transforms: transforms (v2 configs or callables) applied to each training image
            after ``ToImage``, before ``ToDtype(float32, scale=True)`` and ``Normalize(mean, std)``
            (which every image gets); one mean/std value applies to every channel.
    """

    name = "custom"

    def __init__(
        self,
        dataset: Mapping[str, Any],
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        input_shape: Sequence[int] | None = None,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        train_transforms: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset_config = dict(to_plain(dataset))
        self.target = str(self.dataset_config.pop("_target_", None))
        if self.target in ("None", "???"):
            raise ValueError(
                "data=custom needs your Dataset class: data.dataset._target_=my_pkg.MyDataset "
                "(and its arguments, e.g. +data.dataset.root=/path)."
            )
        if not 0 < val_fraction < 1:
            raise ValueError(f"data.val_fraction must be between 0 and 1, got {val_fraction}")
        if class_names and num_classes is not None and len(class_names) != num_classes:
            raise ValueError(
                f"data.class_names has {len(class_names)} names but data.num_classes={num_classes}"
            )
        if input_shape is not None and len(input_shape) != 3:
            raise ValueError(f"data.input_shape must be [channels, height, width], got {list(input_shape)}")
        self.class_names = [str(name) for name in class_names or []]
        self._num_classes = num_classes if num_classes is not None else (len(class_names or []) or None)
        self._input_shape = None if input_shape is None else tuple(int(n) for n in input_shape)
        self.val_fraction, self.split_seed = val_fraction, split_seed
        self.train_transforms = list(train_transforms or [])
        self.datasets: dict[str, Dataset] = {}
        self._labels: dict[str, list[int]] = {}
        self._plain_train: Dataset | None = None

    @property
    def num_classes(self) -> int:
        if self._num_classes is None:
            self._read_training_set()
        return int(self._num_classes)  # type: ignore[arg-type]

    @property
    def input_shape(self) -> tuple[int, int, int]:  # type: ignore[override]
        if self._input_shape is None:
            self._read_training_set()
        return self._input_shape  # type: ignore[return-value]

    def state_dict(self) -> dict[str, Any]:
        # What predict and export need without your module: the class count and the input shape.
        return {
            **super().state_dict(),
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._num_classes = state_dict.get("num_classes", self._num_classes)
        shape = state_dict.get("input_shape")
        self._input_shape = tuple(shape) if shape else self._input_shape

    def _build(self, train: bool, transform: Callable[[Any], Any]) -> Dataset:
        """Your Dataset, built as torchvision builds its own."""
        cls = import_dataset_class(self.target)
        try:
            return cls(train=train, transform=transform, **self.dataset_config)
        except TypeError as err:
            settings = ", ".join(f"{key}=..." for key in self.dataset_config)
            raise TypeError(
                f"{self.target}(train={train}, transform=..., {settings}) failed: {err}. data=custom "
                "builds your Dataset torchvision-style: its __init__ must take train and transform, and "
                "its other arguments come from data.dataset (+data.dataset.root=...)."
            ) from None

    def _normalize(self) -> list[Any]:
        return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean, self.std), plain_tensor]

    def _eval_transform(self) -> v2.Compose:
        return v2.Compose([v2.ToImage(), *self._normalize()])

    def _train_transform(self) -> v2.Compose:
        steps = [t if callable(t) else instantiate(t) for t in self.train_transforms]
        return v2.Compose([v2.ToImage(), *steps, *self._normalize()])

    def _read_training_set(self) -> None:
        """Input shape, class count and checked labels of the training set: imports your module."""
        if "train" in self._labels:
            return
        if self._plain_train is None:
            self._plain_train = self._build(True, self._eval_transform())
        dataset = self._plain_train
        if len(dataset) < 2:  # type: ignore[arg-type]
            raise ValueError(f"{self.target}(train=True) holds {len(dataset)} samples: it needs at least 2")
        if self._input_shape is None:
            self._input_shape = tuple(tensor_image(f"{self.target}[0]", dataset[0][0]).shape)
        if len(self.mean) not in (1, self._input_shape[0]):
            raise ValueError(
                f"data.mean={list(self.mean)} has {len(self.mean)} values, but the images have "
                f"{self._input_shape[0]} channels: give one value per channel (or one for all)."
            )
        labels = self._read_labels(dataset, "train", self._num_classes)
        if self._num_classes is None:
            classes = getattr(dataset, "classes", None) or []
            self._num_classes = max(len(classes), max(labels) + 1)
            self.class_names = self.class_names or [str(name) for name in classes]
            if self._num_classes < 2:
                raise ValueError(f"{self.target}: every training label is 0, a classifier needs 2 classes")
            log.info("%s: %d classes (from the training labels)", self.target, self._num_classes)

    def _read_labels(self, dataset: Dataset, split: str, num_classes: int | None) -> list[int]:
        """Every label of a split, checked: your Dataset's ``targets`` list where it has one
        (torchvision's convention), else read sample by sample (images and all)."""
        checked = CheckedSamples(dataset, self.target, self._input_shape, num_classes)
        targets = getattr(dataset, "targets", None)
        if targets is not None and len(targets) == len(checked):
            labels = [checked.label(i, label) for i, label in enumerate(targets)]
        else:
            log.info(
                "%s: reading the %d %s samples once for their labels (a `targets` list of labels on "
                "your Dataset skips this)",
                self.target,
                len(checked),
                split,
            )
            labels = [checked[i][1] for i in range(len(checked))]
        self._labels[split] = labels
        return labels

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", None) and "train" not in self.datasets:
            self._split_training_set()
        if stage in ("fit", "test", "predict", None) and "test" not in self.datasets:
            test = self._build(False, self._eval_transform())
            self.datasets["test"] = CheckedSamples(test, self.target, self.input_shape, self.num_classes)
            labels = getattr(test, "targets", None)
            if labels is not None:
                self._labels["test"] = [int(label) for label in labels]
            log.info("%s: %d test samples", self.target, len(test))  # type: ignore[arg-type]

    def _split_training_set(self) -> None:
        """Train and validation subsets of your training set: the same samples, transformed
        with augmentation (train) or without (validation)."""
        self._read_training_set()
        shape, classes = self.input_shape, self.num_classes
        plain = CheckedSamples(self._plain_train, self.target, shape, classes)  # type: ignore[arg-type]
        augmented = CheckedSamples(self._build(True, self._train_transform()), self.target, shape, classes)
        order = torch.randperm(len(plain), generator=torch.Generator().manual_seed(self.split_seed))
        n_val = max(1, round(len(plain) * self.val_fraction))
        val, train = order[:n_val].tolist(), order[n_val:].tolist()
        self.datasets["train"], self.datasets["val"] = Subset(augmented, train), Subset(plain, val)
        every = self._labels["train"]
        self._labels["train"], self._labels["val"] = [every[i] for i in train], [every[i] for i in val]
        log.info(
            "%s: %d train / %d val samples (val_fraction=%s, split_seed=%d)",
            self.target,
            len(train),
            len(val),
            self.val_fraction,
            self.split_seed,
        )

    def split_fingerprints(self) -> dict[str, tuple[int, str]]:
        """Each split's size and a digest of its labels (where known without reading every image)."""
        return {
            split: (len(labels), fingerprint(torch.tensor(labels).numpy().tobytes()))
            for split, labels in self._labels.items()
            if split in self.datasets
        }

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.datasets.get("train"), train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.datasets.get("val"), train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.datasets.get("test"), train=False)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def eval_transform(self, image: Image.Image) -> torch.Tensor:
        """A picture file as the network sees it: converted to the trained channels and size."""
        channels, height, width = self.input_shape
        if channels not in PIL_MODES:
            raise ValueError(
                f"The network takes {channels}-channel images: only 1 (L), 3 (RGB) or 4 (RGBA) channels "
                "can come from a picture file."
            )
        image = image.convert(PIL_MODES[channels])
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        return self._eval_transform()(image)
