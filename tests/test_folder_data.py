"""Image folders (data=imagenet, data=folder): ImageNet's layout and recipe on real JPEG files."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from data_files import imagenet_wnids, write_image_folder
from omegaconf.errors import MissingMandatoryValue
from PIL import Image
from torchvision.transforms.v2 import functional as F

from lightning_labs.checkpoints.restore import data_from_checkpoint, load_checkpoint, model_from_checkpoint
from lightning_labs.data import FolderData
from lightning_labs.data.folder import IMAGENET_MEAN, IMAGENET_STD
from lightning_labs.inference.evaluate import evaluate
from lightning_labs.training.run import train

# Written in no particular order; ImageFolder numbers the classes by sorted folder name.
NAMES = ["n01514859", "zebra", "n01440764", "Ant"]
SIZES = {"train": 5, "val": 3, "test": 2}  # images per class
MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``train``, ``val`` and ``test`` folders of 4 classes, 60x45 and 45x60 JPEGs."""
    root = tmp_path_factory.mktemp("folder")
    write_image_folder(root, NAMES, SIZES, size=(60, 45), splits=("train", "val", "test"))
    return root


def counted_accuracies(path: Path, batches: int) -> tuple[float, float, int]:
    """Top-1 and top-5 accuracy of ``path``'s network (eval mode) over the first ``batches`` of its
    data's test split, counted from its predictions: (top-1, top-5, images)."""
    checkpoint = load_checkpoint(path)
    net = model_from_checkpoint(checkpoint).net.eval()
    datamodule = data_from_checkpoint(checkpoint)
    datamodule.setup("test")
    top1 = top5 = total = 0
    for batch in itertools.islice(datamodule.test_dataloader(), batches):
        images, labels = datamodule.on_after_batch_transfer(batch, 0)
        with torch.no_grad():
            ranked = net(images).topk(5, dim=1).indices
        top1 += int((ranked[:, 0] == labels).sum())
        top5 += int((ranked == labels[:, None]).any(dim=1).sum())
        total += len(labels)
    return top1 / total, top5 / total, total


def small(root: Path, **kwargs) -> FolderData:
    return FolderData(root=str(root), image_size=32, resize_size=36, **kwargs)


def copy_of(folder: Path, tmp_path: Path) -> Path:
    shutil.copytree(folder, tmp_path / "copy")
    return tmp_path / "copy"


def test_class_names_are_the_sorted_folder_names_and_label_the_images(folder: Path) -> None:
    dm = small(folder, test_dir="test")
    assert dm.num_classes == 4 and dm.class_names == ["Ant", "n01440764", "n01514859", "zebra"]
    assert dm.facts == {"in_channels": 3, "num_classes": 4, "image_size": [32, 32]}
    dm.setup()
    assert {split: len(data) for split, data in dm.datasets.items()} == {"train": 20, "val": 12, "test": 8}
    for split in ("train", "val", "test"):
        for path, label in dm.datasets[split].samples:
            assert Path(path).parent.name == dm.class_names[label]
    assert dm.state_dict()["class_names"] == ["Ant", "n01440764", "n01514859", "zebra"]

    default = small(folder)  # no test_dir: the test split is the validation folder
    default.setup("test")
    assert len(default.datasets["test"]) == 12 and set(default.datasets) == {"test"}


def test_train_batches_are_normalised_random_crops_and_eval_batches_are_fixed(folder: Path) -> None:
    dm = small(folder, batch_size=20)  # the 20 training images in one batch: no image dropped
    dm.setup("fit")
    epochs = [next(iter(dm.train_dataloader())) for _ in range(2)]
    for images, labels in epochs:
        assert images.dtype == torch.float32 and images.shape == (20, 3, 32, 32)
        assert labels.dtype == torch.int64 and sorted(labels.tolist()) == sorted(list(range(4)) * 5)
        pixels = images * STD + MEAN  # normalised with ImageNet's mean and std
        assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5 and images.min() < -0.5
    # The same 20 images both epochs; without augmentation their sorted sums would be equal.
    sums = [sorted(images.sum(dim=(1, 2, 3)).tolist()) for images, _ in epochs]
    assert sums[0] != sums[1]
    first = dm.datasets["train"][0][0]
    assert not torch.equal(first, dm.datasets["train"][0][0])  # a new crop (and flip) each time

    val, val_labels = next(iter(dm.val_dataloader()))
    again, _ = next(iter(dm.val_dataloader()))
    assert val.shape == (12, 3, 32, 32) and torch.equal(val, again)
    assert val_labels.tolist() == [label for label in range(4) for _ in range(3)]  # not shuffled
    # Resize the shorter side to 36, centre-crop 32, normalise: as torchvision does it.
    for index in (0, 1):  # a landscape and a portrait picture
        with Image.open(dm.datasets["val"].samples[index][0]) as picture:
            cropped = F.center_crop(F.resize(picture.convert("RGB"), 36), 32)
        expected = (F.pil_to_tensor(cropped).float() / 255 - MEAN[0]) / STD[0]
        assert torch.allclose(val[index], expected, atol=1e-5)


def test_eval_transform_gives_the_network_input_from_any_picture(folder: Path) -> None:
    dm = small(folder)
    for picture in (Image.new("L", (100, 70), 128), Image.new("RGBA", (50, 120), (9, 200, 30, 255))):
        image = dm.eval_transform(picture)
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    dm.setup("validate")
    path, _ = dm.datasets["val"].samples[5]
    with Image.open(path) as picture:  # what predict sees is what the test saw
        assert torch.equal(dm.eval_transform(picture), dm.datasets["val"][5][0])


def test_a_missing_root_names_the_path_and_the_fix(tmp_path: Path) -> None:
    dm = FolderData(root=str(tmp_path / "nowhere"), name="imagenet")  # builds without files
    with pytest.raises(FileNotFoundError) as err:
        dm.setup("fit")
    message = str(err.value)
    assert f"data.root={tmp_path / 'nowhere'} does not exist" in message
    assert f"data=imagenet expects {tmp_path / 'nowhere'}/{{train,val}}/<class>/<image>" in message
    assert "Point data.root at the dataset" in message
    (tmp_path / "nowhere" / "train" / "cat").mkdir(parents=True)
    with pytest.raises(
        FileNotFoundError, match=re.escape(f"No val folder at {tmp_path / 'nowhere' / 'val'}")
    ):
        dm.setup("validate")


def test_a_split_without_class_folders_is_named(folder: Path, tmp_path: Path) -> None:
    root = copy_of(folder, tmp_path)
    shutil.rmtree(root / "train")
    (root / "train").mkdir()
    (root / "train" / "stray.JPEG").write_bytes(b"an image outside any class folder")
    with pytest.raises(
        FileNotFoundError, match="^" + re.escape(f"{root / 'train'} has no class sub-folders")
    ):
        small(root).setup("fit")


def test_a_class_folder_without_images_is_named(folder: Path, tmp_path: Path) -> None:
    root = copy_of(folder, tmp_path)
    for image in (root / "val" / "zebra").iterdir():
        image.rename(image.with_suffix(".txt"))
    dm = small(root, test_dir="test")
    dm.setup("test")  # the test folder is whole
    with pytest.raises(
        FileNotFoundError, match=rf"^No images in {re.escape(str(root / 'val' / 'zebra'))}: .*\.jpeg"
    ):
        dm.setup("fit")


def test_validation_classes_that_differ_from_training_are_named(folder: Path, tmp_path: Path) -> None:
    root = copy_of(folder, tmp_path)
    shutil.rmtree(root / "val" / "n01440764")
    (root / "val" / "zebra").rename(root / "val" / "zebra2")
    with pytest.raises(ValueError) as err:
        small(root).setup("fit")
    message = str(err.value)
    assert f"class folders of {root / 'val'} differ from the 4 training classes" in message
    assert f"the class folders of {root / 'train'}" in message
    assert "missing ['n01440764', 'zebra'], not in training ['zebra2']" in message


def test_an_unreadable_image_is_named(folder: Path, tmp_path: Path) -> None:
    root = copy_of(folder, tmp_path)
    broken = sorted((root / "train" / "Ant").iterdir())[0]
    broken.write_bytes(broken.read_bytes()[:200])  # a cut-off download
    dm = small(root)
    dm.setup("fit")
    with pytest.raises(OSError, match=re.escape(f"Could not read the image {broken}")):
        dm.datasets["train"][0]


def test_data_folder_asks_for_its_root(make_cfg) -> None:
    with pytest.raises(MissingMandatoryValue, match=r"data\.root"):
        train(make_cfg("data=folder"))


def test_imagenet_config_fits_and_tests_with_top5(make_cfg, data_root: Path) -> None:
    """data=imagenet reads ${paths.data_dir}/imagenet: 6 wnid classes of 16 train / 6 val JPEGs."""
    cfg = make_cfg(
        "data=imagenet",
        "data.image_size=32",
        "data.resize_size=36",
        "data.num_workers=0",
        "data.batch_size=16",
        "model=cnn",
    )
    metrics, objects = train(cfg)
    assert objects["trainer"].global_step == 6
    # The best checkpoint's over 2 test batches of 16: k/32, counted here from its predictions.
    best = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    top1, top5, images = counted_accuracies(best, batches=cfg.trainer.limit_test_batches)
    assert images == 32
    assert metrics["test/acc"] == pytest.approx(top1, abs=1e-6)
    assert metrics["test/acc_top5"] == pytest.approx(top5, abs=1e-6) and "test/loss" in metrics
    assert objects["datamodule"].class_names == imagenet_wnids(6)
    assert objects["model"].hparams.net["image_size"] == [32, 32]
    run = Path(cfg.paths.output_dir)
    assert json.loads((run / "metrics.json").read_text())["data"] == "imagenet"
    checkpoint = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert checkpoint["run_config"]["data"]["root"] == str(data_root / "imagenet")
    assert data_from_checkpoint(checkpoint).class_names == imagenet_wnids(6)


def test_a_cnn_beats_chance_on_image_folders_and_evaluates_without_the_train_folder(
    make_cfg, data_root: Path, tmp_path: Path
) -> None:
    small_data = ["data.image_size=32", "data.resize_size=36", "data.num_workers=0", "data.batch_size=16"]
    cfg = make_cfg(
        "data=imagenet",
        *small_data,
        "model=cnn",
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=null",
        "trainer.limit_val_batches=null",
        "trainer.limit_test_batches=null",
    )
    metrics, _ = train(cfg)
    assert metrics["test/acc"] > 0.5 and metrics["test/acc_top5"] > 0.9  # chance: 1/6 and 5/6

    # A copy holding only the validation images: the class names come from the checkpoint.
    shutil.copytree(data_root / "imagenet" / "val", tmp_path / "val_only" / "val")
    eval_cfg = make_cfg(
        f"ckpt_path={Path(cfg.paths.output_dir) / 'checkpoints' / 'best.ckpt'}",
        "data=imagenet",
        f"data.root={tmp_path / 'val_only'}",
        *small_data,
        "trainer=cpu",
        "trainer.enable_progress_bar=false",
        f"paths.output_dir={tmp_path / 'eval'}",
        config_name="eval",
    )
    results = evaluate(eval_cfg)
    assert results["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)


def test_imagenet_declares_its_classes_for_a_network_without_files(data_root: Path, tmp_path: Path) -> None:
    """data.num_classes sizes the network of inspect/benchmark with no dataset on disk; folders decide."""
    absent = FolderData(root=str(tmp_path / "nowhere"), name="imagenet", num_classes=1000, num_workers=0)
    assert (absent.num_classes, absent.input_shape) == (1000, (3, 224, 224))
    present = FolderData(root=str(data_root / "imagenet"), num_classes=1000, num_workers=0)
    assert present.num_classes == 6 and present.class_names == imagenet_wnids(6)


def test_workers_are_at_most_the_cpus_this_process_may_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 3}, raising=False)
    with caplog.at_level("INFO"):
        assert FolderData(root=str(tmp_path), num_workers=8).num_workers == 2
    assert "data.num_workers=8 lowered to 2: this process may use 2 CPUs" in caplog.text
    assert FolderData(root=str(tmp_path), num_workers=1).num_workers == 1
