"""MNIST: the full 60k/10k set when present or downloaded, else the real 10k-digit sample bundled here."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.datasets import MNIST

from lightning_labs.data.in_memory import InMemoryImageData
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)

BUNDLED_SAMPLE = Path(__file__).with_name("mnist_sample")
RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def holds_mnist(root: Path) -> bool:
    """Whether ``root`` has torchvision's layout: ``MNIST/raw/`` with the four uncompressed files."""
    return all((root / "MNIST" / "raw" / name).is_file() for name in RAW_FILES)


class MNISTData(InMemoryImageData):
    """Handwritten digits, 1 x 28 x 28, 10 classes.

    Args:
        root: folder that holds ``MNIST/raw``. Left null, ``data_dir`` is used when it holds
            MNIST, and otherwise the bundled sample (8,000 train / 2,000 test real digits).
        data_dir: the project's data folder, searched and downloaded into when ``root`` is null.
        download: fetch the full set through torchvision when it is not on disk (needs network).
    """

    name = "mnist"
    input_shape = (1, 28, 28)
    num_classes = 10

    def __init__(
        self,
        root: str | None = None,
        data_dir: str = "data",
        download: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.download = download
        if root is not None:
            self.root = Path(root)
            self.source = f"MNIST at {self.root}"
        elif holds_mnist(Path(data_dir)) or download:
            self.root = Path(data_dir)
            self.source = f"MNIST at {self.root}"
        else:
            self.root = BUNDLED_SAMPLE
            self.source = (
                f"the bundled MNIST sample (no MNIST in {data_dir}; data.download=true fetches "
                "the full 60k/10k set)"
            )

    def check_files(self) -> None:
        if not holds_mnist(self.root):
            raise FileNotFoundError(
                f"No MNIST found at data.root={self.root}: looked for "
                f"{self.root / 'MNIST' / 'raw'}/{{{','.join(RAW_FILES)}}}. Pass "
                "data.download=true to fetch it there, point data.root at the folder that "
                "holds MNIST/raw, or drop data.root to use the bundled sample."
            )

    def prepare_data(self) -> None:
        if self.download:
            MNIST(str(self.root), download=True)  # fetches both splits

    def load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            dataset = MNIST(str(self.root), train=train)
        except Exception as err:
            raise ValueError(
                f"Could not read MNIST from {self.root / 'MNIST' / 'raw'}: {err}. The files may "
                "be truncated or corrupt: delete them and fetch them again (data.download=true)."
            ) from err
        self.set_class_names(dataset.classes, self.source)
        if train:
            log.info("MNIST: using %s", self.source)
        return dataset.data.unsqueeze(1), dataset.targets
