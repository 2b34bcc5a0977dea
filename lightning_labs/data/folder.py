"""Image folders (ImageNet and any ``root/<split>/<class>/<image>`` tree), decoded per image in workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import default_collate
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import v2

from lightning_labs.data.base import ClassificationData, fingerprint, usable_cpus
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def class_folders(split: Path) -> list[str]:
    """Sorted class names of a split folder: its sub-folders, as ImageFolder numbers them."""
    return sorted(entry.name for entry in split.iterdir() if entry.is_dir())


def load_rgb(path: str) -> Image.Image:
    """ImageFolder's loader, naming the file when it cannot be decoded (a truncated download)."""
    try:
        with open(path, "rb") as file:
            return Image.open(file).convert("RGB")
    except (OSError, Image.DecompressionBombError) as err:  # UnidentifiedImageError, truncated files too
        raise OSError(f"Could not read the image {path}: {err}") from None


def files_fingerprint(dataset: ImageFolder) -> str:
    """A split's image files (paths below its folder) and their labels, as one short digest."""
    start = len(dataset.root) + 1
    lines = (f"{path[start:]}\t{label}\n".encode(errors="surrogateescape") for path, label in dataset.samples)
    return fingerprint(*lines)


BAD_IMAGE_POLICIES = ("fail", "skip")


class SkippingImageFolder(ImageFolder):
    """An ImageFolder that gives None for an unreadable image, after a warning naming the file."""

    def __getitem__(self, index: int) -> Any:
        try:
            return super().__getitem__(index)
        except OSError as err:  # load_rgb's message names the file
            log.warning("Skipped: %s", err)
            return None


def collate_readable(samples: list[Any]) -> Any:
    """Batch the samples that could be read (a batch with a skipped image is one smaller)."""
    readable = [sample for sample in samples if sample is not None]
    if not readable:
        raise OSError(f"All {len(samples)} images of a batch were unreadable: the dataset looks damaged.")
    return default_collate(readable)


def worker_count(wanted: int) -> int:
    """``wanted`` DataLoader workers, lowered (with a note) to the CPUs this process may use."""
    cpus = usable_cpus()
    if wanted > cpus:
        log.info(
            "data.num_workers=%d lowered to %d: this process may use %d CPUs, and more decoding "
            "workers than CPUs only compete for them",
            wanted,
            cpus,
            cpus,
        )
    return min(wanted, cpus)


class FolderData(ClassificationData):
    """``root/train/<class>/*`` and ``root/val/<class>/*`` with the standard ImageNet recipe.

    Training images get RandomResizedCrop to ``image_size`` and a horizontal flip (plus
    optional colour jitter and rotation); evaluation images are resized to ``resize_size`` and
    centre-cropped to ``image_size``. Class names are the folder names; the test split is
    ``test_dir`` when given, else the validation folder.

    Args:
        root: folder holding the split folders.
        name: what the logs and metrics call this dataset.
        train_dir, val_dir, test_dir: split folder names under ``root``.
        image_size: side of the square crop the network sees.
        resize_size: side the shorter edge is resized to before the evaluation centre crop.
        scale_min: smallest area fraction RandomResizedCrop may keep.
        hflip: random horizontal flip for training.
        color_jitter: brightness/contrast/saturation jitter strength (0: off).
        rotation: random rotation range in degrees (0: off).
        bad_images: what an image file that cannot be decoded does: ``fail`` (the error names
            the file) or ``skip`` it with a warning naming the file.
        num_classes: the class count the data config declares (ImageNet: 1000). It sizes a
            network only where the train folder is absent (``inspect``, ``benchmark`` with no
            dataset on disk); the class folders, where present, or a checkpoint's class names decide.
        num_workers: DataLoader workers decoding images, at most one per CPU this process may
            use (more only compete for the cores, and PyTorch warns about it in every process).
    """

    def __init__(
        self,
        root: str,
        name: str = "folder",
        train_dir: str = "train",
        val_dir: str = "val",
        test_dir: str | None = None,
        image_size: int = 224,
        resize_size: int = 256,
        scale_min: float = 0.08,
        hflip: bool = True,
        color_jitter: float = 0.0,
        rotation: float = 0.0,
        bad_images: str = "fail",
        num_classes: int | None = None,
        num_workers: int = 0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mean", IMAGENET_MEAN)
        kwargs.setdefault("std", IMAGENET_STD)
        super().__init__(num_workers=worker_count(num_workers), **kwargs)
        if num_classes is not None and num_classes < 2:
            raise ValueError(f"data.num_classes={num_classes}: a classifier needs at least 2 classes")
        self.declared_classes = num_classes
        if resize_size < image_size:
            raise ValueError(
                f"data.resize_size ({resize_size}) must be at least data.image_size ({image_size})"
            )
        if bad_images not in BAD_IMAGE_POLICIES:
            raise ValueError(f"data.bad_images={bad_images!r}: choose {' | '.join(BAD_IMAGE_POLICIES)}")
        self.bad_images = bad_images
        self.root = Path(root).expanduser()
        self.name = name
        self.splits = {"train": train_dir, "val": val_dir, "test": test_dir or val_dir}
        self.input_shape = (3, image_size, image_size)
        normalize = [
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(self.mean, self.std),
        ]
        augment: list[Any] = [v2.RandomResizedCrop(image_size, scale=(scale_min, 1.0), antialias=True)]
        augment += [v2.RandomHorizontalFlip()] if hflip else []
        augment += [v2.ColorJitter(color_jitter, color_jitter, color_jitter)] if color_jitter else []
        augment += [v2.RandomRotation(rotation)] if rotation else []
        self.train_transform = v2.Compose(augment + normalize)
        self.test_transform = v2.Compose(
            [v2.Resize(resize_size, antialias=True), v2.CenterCrop(image_size), *normalize]
        )
        self.datasets: dict[str, ImageFolder] = {}
        self._fingerprints: dict[str, tuple[int, str]] = {}  # per split, taken once when it is set up
        self.classes_from = ""  # where class_names came from, for the error messages

    def split_folder(self, split: str) -> Path:
        """The folder of ``split``, checked to hold class sub-folders."""
        folder = self.root / self.splits[split]
        names = dict.fromkeys(self.splits.values())  # train, val (and test) folder names, in order
        layout = f"data={self.name} expects {self.root}/{{{','.join(names)}}}/<class>/<image>"
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"data.root={self.root} does not exist: {layout}. Point data.root at the dataset."
            )
        if not folder.is_dir():
            raise FileNotFoundError(
                f"No {split} folder at {folder}: {layout}. Point data.root at the dataset."
            )
        if not class_folders(folder):
            raise FileNotFoundError(f"{folder} has no class sub-folders: {layout}.")
        return folder

    def training_classes(self) -> list[str]:
        """The class names: the train folder's class folders, unless known (from a checkpoint)."""
        if not self.class_names:
            train = self.split_folder("train")
            self.class_names = class_folders(train)
            self.classes_from = f"the class folders of {train}"
            if len(self.class_names) < 2:
                raise ValueError(
                    f"{train} has one class folder ({self.class_names[0]}): a classifier needs at least "
                    "2 classes, each a sub-folder of images."
                )
        return self.class_names

    @property
    def num_classes(self) -> int:
        """The training classes' count; the declared ``data.num_classes`` while none can be read."""
        train_absent = not (self.root / self.splits["train"]).is_dir()
        if not self.class_names and self.declared_classes and train_absent:
            return self.declared_classes
        return len(self.training_classes())

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if state_dict.get("class_names"):
            self.classes_from = "the class names saved in the checkpoint"

    def _dataset(self, split: str, transform: v2.Compose) -> ImageFolder:
        folder = self.split_folder(split)
        # Labels are indices into the training classes (the train folder's, or a checkpoint's, so
        # that a model is evaluated without its training images): every split must hold the same
        # class folders. Checked before the scan of the files, which takes long on ImageNet.
        expected = self.training_classes()
        found = class_folders(folder)
        if found != expected:
            missing = sorted(set(expected) - set(found))
            extra = sorted(set(found) - set(expected))
            raise ValueError(
                f"The class folders of {folder} differ from the {len(expected)} training classes "
                f"({self.classes_from}): missing {missing or 'none'}, not in training "
                f"{extra or 'none'}. Every split needs the same class folders."
            )
        kind = SkippingImageFolder if self.bad_images == "skip" else ImageFolder
        dataset = kind(str(folder), transform=transform, loader=load_rgb, allow_empty=True)
        empty = sorted(set(range(len(found))) - set(dataset.targets))
        if empty:
            paths = ", ".join(str(folder / found[i]) for i in empty[:5])
            more = f" and {len(empty) - 5} more" if len(empty) > 5 else ""
            raise FileNotFoundError(
                f"No images in {paths}{more}: each class folder needs image files "
                f"({', '.join(IMG_EXTENSIONS)})."
            )
        return dataset

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in wanted.get(stage, ("train", "val", "test")) if stage else ("train", "val", "test"):
            if split not in self.datasets:
                transform = self.train_transform if split == "train" else self.test_transform
                self.datasets[split] = self._dataset(split, transform)
                self._fingerprints[split] = (
                    len(self.datasets[split]),
                    files_fingerprint(self.datasets[split]),
                )
                log.info(
                    "%s: %d %s images in %d classes",
                    self.name,
                    len(self.datasets[split]),
                    split,
                    self.num_classes,
                )

    def split_fingerprints(self) -> dict[str, tuple[int, str]]:
        return dict(self._fingerprints)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.datasets.get("train"), train=True, collate_fn=self._collate)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.datasets.get("val"), train=False, collate_fn=self._collate)

    def test_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.datasets.get("test"), train=False, collate_fn=self._collate)

    def predict_dataloader(self) -> torch.utils.data.DataLoader:
        return self.test_dataloader()

    @property
    def _collate(self) -> Any:
        return collate_readable if self.bad_images == "skip" else None

    def eval_transform(self, image: Image.Image) -> torch.Tensor:
        return self.test_transform(image.convert("RGB"))
