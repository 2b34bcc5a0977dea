"""Shared fixtures: tiny real-format datasets and composed configs for fast runs."""

from __future__ import annotations

import os

# One torch thread per process, set before torch loads and inherited by the commands the tests
# start: pytest runs one process per core (-n auto), and two threads per process on top of that
# make tiny networks' steps wait on each other's threads (a LeNet-5 step 10x slower, not faster).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from collections.abc import Callable
from pathlib import Path

import pytest
from data_files import write_cifar10, write_cifar100, write_image_folder, write_mnist
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from lightning_labs.runtime.config import config_path
from lightning_labs.runtime.logs import quiet_third_party

quiet_third_party()


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder holding MNIST (real digits, IDX), CIFAR-10 and CIFAR-100 (pickles), and
    ``imagenet/{train,val}/<wnid>/*.JPEG`` (6 classes of 16 + 6 small JPEGs, for ``data=imagenet``)."""
    root = tmp_path_factory.mktemp("data")
    write_mnist(root, n_train=1200, n_test=300)
    write_cifar10(root)
    write_cifar100(root)
    write_image_folder(root / "imagenet", classes=6, per_class={"train": 16, "val": 6}, size=(40, 32))
    return root


# Small, quick runs on the CPU (conf/debug/fast.yaml); each test adds its own overrides.
FAST = ["trainer=cpu", "debug=fast"]


@pytest.fixture
def make_cfg(tmp_path: Path, data_root: Path) -> Callable[..., DictConfig]:
    """Compose ``train`` (or another entry config) as the command line would, writing into tmp_path."""

    def make(*overrides: str, config_name: str = "train", fast: bool = True) -> DictConfig:
        base = [f"paths.output_dir={tmp_path / 'run'}", f"paths.data_dir={data_root}"]
        if config_name == "train" and fast:
            base += FAST
        with initialize_config_dir(config_path(), version_base="1.3"):
            return compose(config_name, overrides=[*base, *overrides])

    return make
