"""data=custom: a Dataset class of the user's, built torchvision-style, trained, and predicted with
from its checkpoint where the class cannot be imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from lightning_labs.checkpoints.restore import data_from_checkpoint, load_checkpoint, model_from_checkpoint
from lightning_labs.data import CustomData
from lightning_labs.training.run import train

SAMPLE = Path(__file__).resolve().parent.parent / "lightning_labs" / "data" / "mnist_sample" / "MNIST" / "raw"

# The user's module, written where only the training test puts it on the path (numpy images, a
# `targets` list as torchvision's datasets have).
DIGITS = """
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset


class Digits(Dataset):
    def __init__(self, root, train=True, transform=None, size=None):
        split = "train" if train else "t10k"
        images = np.fromfile(Path(root) / f"{split}-images-idx3-ubyte", dtype=np.uint8, offset=16)
        self.images = images.reshape(-1, 28, 28)[:size]
        labels = np.fromfile(Path(root) / f"{split}-labels-idx1-ubyte", dtype=np.uint8, offset=8)
        self.targets = labels[:size].tolist()
        self.transform = transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        return self.transform(self.images[index]), self.targets[index]
"""


class Listed(Dataset):
    """The samples a test gives (in the training and the test split alike), with no ``targets``."""

    def __init__(self, train: bool, transform: Any, samples: list[tuple[Any, Any]]) -> None:
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image, label = self.samples[index]
        return self.transform(image), label


def listed(samples: list[tuple[Any, Any]], **settings: Any) -> CustomData:
    return CustomData(dataset={"_target_": f"{__name__}.Listed", "samples": samples}, **settings)


def digit(value: int = 0, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    return np.full(size, value, dtype=np.uint8)


def test_pil_numpy_and_tensor_images_become_the_same_input() -> None:
    pixels = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    images = [Image.fromarray(pixels), pixels, torch.from_numpy(pixels).unsqueeze(0)]
    data = listed([(image, i % 2) for i, image in enumerate(images * 4)], mean=[0.5], std=[0.25])
    data.setup("test")
    assert data.input_shape == (1, 12, 10) and data.num_classes == 2  # read from the samples
    expected = (torch.from_numpy(pixels).float() / 255 - 0.5) / 0.25
    for index in range(3):
        image, label = data.datasets["test"][index]
        assert torch.allclose(image[0], expected, atol=1e-6) and label == index % 2


@pytest.mark.parametrize(
    "samples, settings, message",
    [
        (
            [(digit(), 1), (digit(), 0), (digit(), -1)],
            {},
            r"Listed\[2\] has the label -1: labels are class numbers from 0\. ",
        ),
        (
            [(digit(), 1), (digit(), 3)],
            {"num_classes": 3},
            r"Listed\[1\] has the label 3: labels are class numbers 0 to 2 \(3 classes\)",
        ),
        (
            [(digit(), 0), (digit(), 1), (digit(size=(28, 27)), 0)],
            {},
            r"Listed\[2\] is an image of shape 1x28x27, but the first training image is 1x28x28",
        ),
        ([(digit(), 0), (digit(), "cat")], {}, r"Listed\[1\] has the label 'cat' \(str\)"),
    ],
)
def test_a_wrong_sample_is_named_by_its_index(samples: list, settings: dict, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        listed(samples, **settings).setup("fit")


def test_building_the_data_imports_nothing_and_setup_says_how_to_import() -> None:
    data = CustomData(dataset={"_target_": "not_on_the_path.Pictures", "root": "/data"})  # no import yet
    with pytest.raises(ImportError, match=r"cannot import not_on_the_path\.Pictures: run from the folder "):
        data.setup("test")
    with pytest.raises(ValueError, match=r"data\.dataset\._target_=my_pkg\.MyDataset"):
        CustomData(dataset={"_target_": "???"})


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("user")
    (folder / "lab_digits.py").write_text(DIGITS)
    return folder


def test_own_dataset_trains_and_predicts_without_its_module(
    make_cfg, user_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(user_folder))
    cfg = make_cfg(
        "data=custom",
        "data.dataset._target_=lab_digits.Digits",
        f"+data.dataset.root={SAMPLE}",
        "+data.dataset.size=600",
        "scheduler=none",  # a constant learning rate: one-cycle's warm-up would take the 6 steps
    )
    metrics, objects = train(cfg)
    assert metrics["test/acc"] > 0.2  # chance: 0.1, on 128 test digits
    data = objects["datamodule"]
    assert (data.num_classes, data.input_shape) == (10, (1, 28, 28))  # from the labels and the first image
    sizes = [len(data.datasets[split]) for split in ("train", "val", "test")]
    assert sizes == [540, 60, 600]  # val_fraction 0.1 of the training set
    checkpoint_path = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    checkpoint = load_checkpoint(checkpoint_path)
    saved = checkpoint["CustomData"]  # what predict and export need without lab_digits
    assert (saved["num_classes"], saved["input_shape"]) == (10, [1, 28, 28])

    # predict image=... in a process whose path lacks lab_digits: the same numbers as the net here.
    pixels = np.fromfile(SAMPLE / "t10k-images-idx3-ubyte", dtype=np.uint8, offset=16).reshape(-1, 28, 28)[:3]
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(tmp_path / f"digit{i}.png")
    command = [sys.executable, "-m", "lightning_labs.predict", f"ckpt_path={checkpoint_path}"]
    command += [f"image={tmp_path}", "topk=10", f"hydra.run.dir={tmp_path / 'cli'}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    written = json.loads((tmp_path / "cli" / "predictions.json").read_text())["predictions"]
    net = model_from_checkpoint(checkpoint).net.eval()
    with torch.no_grad():
        expected = net((torch.from_numpy(pixels).float().unsqueeze(1) / 255 - 0.5) / 0.5).softmax(dim=1)
    for prediction, probabilities in zip(written, expected, strict=True):
        got = {top["index"]: top["probability"] for top in prediction["top"]}
        assert [got[i] for i in range(10)] == pytest.approx(probabilities.tolist(), abs=1e-5)

    # Reading the images again needs the module: the error says how to make it importable.
    monkeypatch.delitem(sys.modules, "lab_digits")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(user_folder)])
    with pytest.raises(
        ImportError, match=r"cannot import lab_digits\.Digits: run from the folder that holds"
    ):
        data_from_checkpoint(checkpoint).setup("test")
