"""DataModules over the real on-disk formats, the bundled MNIST sample, and batched augmentation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision.transforms.functional as TF
from data_files import write_cifar10, write_cifar100
from lightning.pytorch.plugins.precision import Precision

from lightning_labs.data import CIFARData, MNISTData, SyntheticData
from lightning_labs.data.augment import random_crop, random_hflip


def test_mnist_reads_idx_files_and_splits_with_a_fixed_seed(data_root: Path) -> None:
    first, second = MNISTData(root=str(data_root)), MNISTData(root=str(data_root), split_seed=0)
    for dm in (first, second):
        dm.setup()
    assert len(first.train_set) + len(first.val_set) == 1200 and len(first.val_set) == 120
    assert len(first.test_set) == 300
    assert torch.equal(first.val_set.labels, second.val_set.labels)
    assert first.class_names[0].startswith("0") and len(first.class_names) == 10
    images, labels = next(iter(first.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (64, 1, 28, 28) and labels.shape == (64,)
    other = MNISTData(root=str(data_root), split_seed=1)
    other.setup("fit")
    assert not torch.equal(other.val_set.labels, first.val_set.labels)


def test_mnist_falls_back_to_the_bundled_real_sample(tmp_path: Path, caplog) -> None:
    dm = MNISTData(root=None, data_dir=str(tmp_path / "empty"))
    with caplog.at_level("INFO"):
        dm.setup()
    assert "bundled MNIST sample" in caplog.text and "data.download=true" in caplog.text
    assert len(dm.train_set) + len(dm.val_set) == 8000 and len(dm.test_set) == 2000
    counts = torch.bincount(dm.test_set.labels, minlength=10)
    assert counts.min() > 150  # real, balanced digits, not a placeholder


def test_missing_mnist_folder_says_where_it_looked_and_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        MNISTData(root=str(tmp_path / "nowhere")).setup()
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in message
    assert "data.download=true" in message and "data.root" in message


def test_download_flag_targets_the_data_folder_without_touching_the_network(tmp_path: Path) -> None:
    """With download=true nothing is fetched at construction; prepare_data does it into data_dir."""
    dm = MNISTData(root=None, data_dir=str(tmp_path / "data"), download=True)
    assert dm.root == tmp_path / "data" and "bundled" not in dm.source
    cifar = CIFARData(root=str(tmp_path / "data"), download=True)  # missing files are fine here
    assert cifar.folder == tmp_path / "data" / "cifar-10-batches-py"


def test_truncated_mnist_file_is_reported_as_corrupt(tmp_path: Path, data_root: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for file in (data_root / "MNIST" / "raw").iterdir():
        (raw / file.name).write_bytes(file.read_bytes())
    (raw / "train-images-idx3-ubyte").write_bytes((raw / "train-images-idx3-ubyte").read_bytes()[:5000])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        MNISTData(root=str(tmp_path)).setup("fit")


@pytest.mark.parametrize(
    "variant, classes, first_name", [("cifar10", 10, "airplane"), ("cifar100", 100, "fine_0")]
)
def test_cifar_reads_the_pickles(data_root: Path, variant: str, classes: int, first_name: str) -> None:
    dm = CIFARData(root=str(data_root), variant=variant)
    dm.setup()
    assert dm.num_classes == classes and dm.class_names[0] == first_name
    assert dm.train_set.images.shape[1:] == (3, 32, 32) and dm.train_set.images.dtype == torch.uint8
    assert len(dm.test_set) == 100


@pytest.mark.parametrize("variant, write", [("cifar10", write_cifar10), ("cifar100", write_cifar100)])
def test_cifar_pickles_with_bytes_keys_read_as_the_official_ones(tmp_path: Path, variant: str, write) -> None:
    """Batches written back by Python 3 (b"data", b"labels", b"airplane"): same data, text names."""
    write(tmp_path / "text")
    write(tmp_path / "bytes", bytes_keys=True)
    text, raw = (CIFARData(root=str(tmp_path / kind), variant=variant) for kind in ("text", "bytes"))
    for dm in (text, raw):
        dm.setup()
    assert raw.class_names == text.class_names and all(type(n) is str for n in raw.class_names)
    assert raw.class_names[0] in ("airplane", "fine_0")
    for split in ("train_set", "val_set", "test_set"):
        assert torch.equal(getattr(raw, split).images, getattr(text, split).images)
        assert torch.equal(getattr(raw, split).labels, getattr(text, split).labels)


def test_cifar_pixels_keep_the_channel_planes(tmp_path: Path) -> None:
    """The pickles store R, G and B planes one after another; images must come back as CHW."""
    import pickle

    write_cifar10(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb") as file:
        raw = pickle.load(file, encoding="latin1")
    dm = CIFARData(root=str(tmp_path))
    dm.setup("test")
    expected = torch.as_tensor(raw["data"][0]).view(3, 32, 32)
    assert torch.equal(dm.test_set.images[0], expected)


def test_missing_cifar_folder_says_where_it_looked_and_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        CIFARData(root=str(tmp_path), variant="cifar10").setup()
    message = str(err.value)
    assert str(tmp_path / "cifar-10-batches-py") in message and "data_batch_1" in message
    assert "data.download=true" in message and "data.root" in message
    with pytest.raises(ValueError, match="choose one of: cifar10, cifar100"):
        CIFARData(root=str(tmp_path), variant="cifar1000")


def test_corrupt_cifar_pickle_is_reported(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"data_batch_3.*truncated or corrupt"):
        CIFARData(root=str(tmp_path)).setup("fit")


def test_cifar_batch_of_the_other_variant_or_with_missing_labels_is_named(tmp_path: Path) -> None:
    import pickle

    write_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    with open(batch, "rb") as file:
        content = pickle.load(file)
    with open(batch, "wb") as file:  # a CIFAR-100 batch's label key, in a CIFAR-10 folder
        pickle.dump({"data": content["data"], "fine_labels": content["labels"]}, file)
    with pytest.raises(ValueError, match=r"data_batch_2 has no 'labels' entry \(it has: data, fine_labels\)"):
        CIFARData(root=str(tmp_path)).setup("fit")
    with open(batch, "wb") as file:  # one label too few: images and labels would shift
        pickle.dump({"data": content["data"], "labels": content["labels"][:-1]}, file)
    with pytest.raises(ValueError, match=r"data_batch_2: 122880 bytes of pixels for 39 labels"):
        CIFARData(root=str(tmp_path)).setup("fit")


def test_batched_crop_matches_torchvision_per_image() -> None:
    """Each image's window equals torchvision's crop of the zero-padded image at its own offset."""
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    generator = torch.Generator().manual_seed(3)
    cropped = random_crop(images, padding=4, generator=generator)
    replay = torch.Generator().manual_seed(3)
    dy = torch.randint(0, 9, (16, 1), generator=replay)
    dx = torch.randint(0, 9, (16, 1), generator=replay)
    offsets = set()
    for i in range(16):
        padded = TF.pad(images[i], [4])
        expected = TF.crop(padded, int(dy[i]), int(dx[i]), 32, 32)
        assert torch.equal(cropped[i], expected)
        offsets.add((int(dy[i]), int(dx[i])))
    assert len(offsets) > 8  # offsets differ from image to image


def test_batched_flip_mirrors_about_half_of_the_images() -> None:
    images = torch.randint(0, 256, (400, 1, 8, 8), dtype=torch.uint8)
    flipped = random_hflip(images, generator=torch.Generator().manual_seed(0))
    mirrored = [torch.equal(f, TF.hflip(i)) for f, i in zip(flipped, images, strict=True)]
    kept = [torch.equal(f, i) for f, i in zip(flipped, images, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 150 < sum(mirrored) < 250


def test_batches_are_normalised_and_augmented_only_in_training() -> None:
    dm = SyntheticData(input_shape=(3, 16, 16), crop_padding=2, hflip=True, mean=(0.5,) * 3, std=(0.25,) * 3)
    dm.setup()
    batch = next(iter(dm.val_dataloader()))
    images, _ = dm.on_after_batch_transfer(batch, 0)  # no trainer: evaluation path
    expected = (batch[0].float() / 255 - 0.5) / 0.25
    assert torch.allclose(images, expected)

    class Training:
        training = True
        precision_plugin = Precision()  # 32-true: no cast

    dm.trainer = Training()
    augmented, _ = dm.on_after_batch_transfer(batch, 0)
    assert augmented.shape == images.shape and not torch.allclose(augmented, images)
