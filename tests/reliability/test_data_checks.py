"""Data that cannot train a classifier is refused when it is set up, in one line naming what is wrong."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import pytest
import torch
from data_files import write_image_folder, write_mnist
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from lightning_labs.data import FolderData, MNISTData
from lightning_labs.data.synthetic import SyntheticData
from lightning_labs.inference.evaluate import evaluate
from lightning_labs.inference.predict import predict
from lightning_labs.runtime.errors import _message
from lightning_labs.training.config_checks import check_values
from lightning_labs.training.run import train


@pytest.fixture
def mnist(tmp_path: Path) -> Path:
    write_mnist(tmp_path, n_train=200, n_test=50)
    return tmp_path / "MNIST" / "raw"


def test_labels_outside_the_classes_are_refused_before_training(mnist: Path) -> None:
    labels = mnist / "train-labels-idx1-ubyte"
    data = bytearray(labels.read_bytes())
    data[8 + 17] = 200  # the 18th label (after the 8-byte IDX header)
    labels.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"1 labels of the train split are outside 0..9 \(e.g. 200\)"):
        MNISTData(root=str(mnist.parents[1])).setup("fit")


def test_a_broken_test_file_stops_the_run_before_it_trains(mnist: Path) -> None:
    images = mnist / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"Could not read MNIST from .*truncated or corrupt"):
        MNISTData(root=str(mnist.parents[1])).setup("fit")


def test_a_single_class_is_refused_up_front(tmp_path: Path) -> None:
    write_image_folder(tmp_path, classes=2, per_class=2, size=32)
    shutil.rmtree(sorted((tmp_path / "train").iterdir())[1])
    with pytest.raises(ValueError, match=r"has one class folder .*needs at least 2 classes"):
        _ = FolderData(root=str(tmp_path)).num_classes
    with pytest.raises(ValueError, match=r"data.num_classes=1: a classifier needs at least 2 classes"):
        SyntheticData(num_classes=1)


def test_a_zero_standard_deviation_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"data.std=\[0.3, 0.0, 0.3\]: every standard deviation must be above 0"
    ):
        SyntheticData(std=(0.3, 0.0, 0.3))


def test_precisions_either_train_or_are_refused_with_the_list(make_cfg) -> None:
    with pytest.raises(ValueError, match=r"trainer.precision='16-true' \(must be one of 32-true, 64-true, "):
        check_values(make_cfg("trainer.precision=16-true"))
    metrics, objects = train(make_cfg("trainer.precision=64-true", "trainer.limit_test_batches=1"))
    assert next(objects["model"].parameters()).dtype == torch.float64
    assert math.isfinite(metrics["test/loss"])


class Unreadable(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> torch.Tensor:
        raise OSError("Could not read the image /data/empty.jpg: cannot identify image file")


def test_a_worker_error_is_one_line_without_the_worker_traceback() -> None:
    with pytest.raises(OSError) as raised:
        next(iter(DataLoader(Unreadable(), num_workers=1)))
    assert "Original Traceback" in str(raised.value)  # what PyTorch hands over
    assert _message(raised.value) == "Could not read the image /data/empty.jpg: cannot identify image file"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # the 32x32 images: PIL only warns
def test_a_decompression_bomb_is_named_and_skipped_when_asked(tmp_path: Path, monkeypatch, caplog) -> None:
    classes = write_image_folder(tmp_path, classes=2, per_class=3, size=32)
    bomb = sorted((tmp_path / "train" / classes[0]).iterdir())[0]
    Image.new("RGB", (64, 64)).save(bomb, format="JPEG")  # 4096 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # over twice the limit: PIL refuses it
    settings = {"root": str(tmp_path), "image_size": 32, "resize_size": 32, "batch_size": 6}
    failing = FolderData(**settings)
    failing.setup("fit")
    with pytest.raises(OSError, match=rf"Could not read the image {bomb}: .*decompression bomb"):
        list(failing._loader(failing.datasets["train"], train=False))
    skipping = FolderData(**settings, bad_images="skip")
    skipping.setup("fit")
    with caplog.at_level(logging.WARNING):
        batches = list(
            skipping._loader(skipping.datasets["train"], train=False, collate_fn=skipping._collate)
        )
    assert sum(len(labels) for _, labels in batches) == 5
    assert f"Skipped: Could not read the image {bomb}" in caplog.text


def test_a_run_that_trains_no_step_is_not_tested(make_cfg) -> None:
    with pytest.raises(RuntimeError, match=r"The run made no training step, .*limit_train_batches \(now 0\)"):
        train(make_cfg("trainer.limit_train_batches=0", "scheduler=none"))
    with pytest.raises(ValueError, match=r"the training split is empty: all 1200 images went to validation"):
        MNISTData(root=str(Path(make_cfg().paths.data_dir)), val_fraction=0.9999).setup("fit")


def test_predict_refuses_a_batch_size_that_predicts_nothing(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(f"ckpt_path={tmp_path / 'x.ckpt'}", "image=x.png", "batch_size=-1", config_name="predict")
    with pytest.raises(ValueError, match=r"batch_size must be at least 1, got -1"):
        predict(cfg)


def test_resuming_on_data_whose_class_folders_changed_is_refused(
    make_cfg, data_root: Path, tmp_path: Path
) -> None:
    folder = ["data=folder", "data.image_size=32", "data.resize_size=36", "data.num_workers=0", "test=false"]
    train(make_cfg(*folder, f"data.root={data_root / 'imagenet'}"))
    copy = shutil.copytree(data_root / "imagenet", tmp_path / "copy")
    first = sorted((copy / "train").iterdir())[0]
    for split in ("train", "val"):
        (copy / split / first.name).rename(copy / split / "renamed")
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    again = make_cfg(
        *folder, f"data.root={copy}", f"ckpt_path={last}", f"paths.output_dir={tmp_path / 'again'}"
    )
    with pytest.raises(
        ValueError, match=rf"missing \['{first.name}'\], new \['renamed'\]\): its label numbers"
    ):
        train(again)


def test_eval_reads_the_data_training_read_wherever_it_starts(
    make_cfg, tmp_path: Path, monkeypatch, caplog
) -> None:
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")  # no ./data/MNIST here: training reads the bundled sample
    fast = ["trainer.limit_train_batches=2", "test=false", "paths.data_dir=data"]
    train(make_cfg(*fast, f"paths.output_dir={tmp_path / 'run'}"))
    write_mnist(tmp_path / "b" / "data", n_train=200, n_test=50)  # another MNIST where eval starts
    monkeypatch.chdir(tmp_path / "b")
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    evaluated = []
    for root in ([], [f"data.root={tmp_path / 'b' / 'data'}"]):
        out = tmp_path / f"eval{len(evaluated)}"
        cfg = make_cfg(
            f"ckpt_path={checkpoint}",
            "paths.data_dir=data",
            f"paths.output_dir={out}",
            *root,
            config_name="eval",
        )
        with caplog.at_level(logging.INFO):
            evaluate(cfg)
        evaluated.append(json.loads((out / "eval.json").read_text()))
    bundled, other = evaluated
    assert bundled["data_identity"]["root"].endswith("lightning_labs/data/mnist_sample")
    assert bundled["data_identity"]["splits"]["test"]["images"] == 2000
    assert bundled["same_data_as_training"] is True
    assert other["data_identity"]["splits"]["test"]["images"] == 50
    assert other["same_data_as_training"] is False
    assert "Not the data of the checkpoint's run: the test split has 50 images" in caplog.text
