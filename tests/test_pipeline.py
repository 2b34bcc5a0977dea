"""``data.pipeline=per_sample``: it trains, takes custom transforms, and augments like ``batched``."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from lightning.pytorch.callbacks import Callback
from torchvision import tv_tensors
from torchvision.transforms import v2

from lightning_labs.data import SyntheticData
from lightning_labs.data.augment import random_crop, random_hflip
from lightning_labs.training.run import train

MNIST_BACKGROUND = -0.1307 / 0.3081  # a 0 pixel after MNIST's normalisation
INVERTED_BACKGROUND = (1 - 0.1307) / 0.3081  # a 255 pixel


class BatchSpy(Callback):
    """Keeps the images of the training and validation batches as the network receives them."""

    def __init__(self) -> None:
        self.train: list[torch.Tensor] = []
        self.val: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.train.append(batch[0].clone())

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self.val.append(batch[0].clone())


def spy_of(objects: dict) -> BatchSpy:
    return next(c for c in objects["trainer"].callbacks if isinstance(c, BatchSpy))


def test_per_sample_pipeline_trains_in_workers_and_beats_chance_on_cifar_files(make_cfg) -> None:
    cfg = make_cfg(
        "model=cnn",
        "data=cifar10",
        "data.pipeline=per_sample",
        "data.num_workers=2",
        "data.batch_size=20",
        "trainer.limit_train_batches=null",
        "trainer.max_epochs=3",
        "trainer.limit_val_batches=null",
        "trainer.limit_test_batches=null",
        f"+callbacks.spy._target_={__name__}.BatchSpy",
    )
    metrics, objects = train(cfg)
    assert objects["trainer"].global_step == 27  # 180 training images in batches of 20, 3 epochs
    assert metrics["test/acc"] > 0.3  # chance is 0.1
    images = torch.cat(spy_of(objects).train)
    assert images.dtype == torch.float32 and images.shape[1:] == (3, 32, 32)
    mean, std = torch.tensor(cfg.data.mean), torch.tensor(cfg.data.std)
    zero = images.amin(dim=(0, 2, 3))  # the crops' zero padding, normalised once (not twice, not never)
    assert torch.allclose(zero, -mean / std, atol=1e-4)


def test_custom_transforms_from_the_config_make_the_batches(make_cfg) -> None:
    """An inverting transform for training: white-background digits in training, black in validation."""
    cfg = make_cfg(
        "data.pipeline=per_sample",
        "data.train_transforms=[{_target_: torchvision.transforms.v2.RandomInvert, p: 1.0}]",
        "data.test_transforms=[{_target_: torchvision.transforms.v2.RandomVerticalFlip, p: 1.0}]",
        "trainer.limit_train_batches=3",
        f"+callbacks.spy._target_={__name__}.BatchSpy",
    )
    _, objects = train(cfg)
    spy = spy_of(objects)
    assert len(spy.train) == 3 and spy.val
    for batch in spy.train:  # most pixels are background
        assert batch.median() == pytest.approx(INVERTED_BACKGROUND, abs=1e-5)
    for batch in spy.val:
        assert batch.median() == pytest.approx(MNIST_BACKGROUND, abs=1e-5)

    dm = objects["datamodule"]  # exactly the given transforms, then ToDtype + Normalize
    image, _ = dm.train_dataloader().dataset[0]
    expected = ((255 - dm.train_set.images[0]).float() / 255 - 0.1307) / 0.3081
    assert torch.allclose(image, expected, atol=1e-5)
    image, _ = dm.val_dataloader().dataset[0]
    expected = (dm.val_set.images[0].flip(-2).float() / 255 - 0.1307) / 0.3081
    assert torch.allclose(image, expected, atol=1e-5)


def test_without_augmentation_both_pipelines_give_the_same_batches() -> None:
    kwargs = {"input_shape": (3, 12, 12), "train_size": 100, "mean": (0.4, 0.5, 0.6), "std": (0.2, 0.3, 0.25)}
    batched, per_sample = SyntheticData(**kwargs), SyntheticData(pipeline="per_sample", **kwargs)
    for dm in (batched, per_sample):
        dm.setup()
    first = batched.on_after_batch_transfer(next(iter(batched.val_dataloader())), 0)
    second = per_sample.on_after_batch_transfer(next(iter(per_sample.val_dataloader())), 0)
    assert torch.allclose(first[0], second[0], atol=1e-5) and torch.equal(first[1], second[1])


def test_per_sample_training_images_are_the_batched_recipe_image_by_image() -> None:
    """Each training image is a zero-padded crop of its original, mirrored or not, then normalised."""
    pad = 2
    dm = SyntheticData(
        input_shape=(3, 10, 10), train_size=64, crop_padding=pad, hflip=True, pipeline="per_sample"
    )
    dm.setup("fit")
    dataset = dm.train_dataloader().dataset
    mean, std = torch.tensor(dm.mean).view(3, 1, 1), torch.tensor(dm.std).view(3, 1, 1)
    for index in range(len(dataset)):
        image, _ = dataset[index]
        padded = TF.pad(dm.train_set.images[index], [pad])
        candidates = [
            window.flip(-1) if flip else window
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            for window in [padded[:, dy : dy + 10, dx : dx + 10]]
            for flip in (False, True)
        ]
        assert any(torch.allclose(image, (c.float() / 255 - mean) / std, atol=1e-5) for c in candidates)


# Statistical equivalence of the batched augmentations and torchvision's per-image transforms.
# Chi-square critical values at p = 0.001 (df = 2 * padding); the RNG is seeded, so the test is
# deterministic, and a correct implementation passes with a wide margin.
CHI2_CRITICAL = {4: 18.467, 8: 26.125}
N = 4000
SIZE = 10


def marked_images(n: int) -> torch.Tensor:
    """n copies of a 1 x SIZE x SIZE image whose pixel (y, x) holds 1 + y * SIZE + x (0 is padding)."""
    image = (torch.arange(SIZE * SIZE) + 1).to(torch.uint8).view(1, SIZE, SIZE)
    return image.expand(n, 1, SIZE, SIZE).contiguous()


def crop_offsets(crops: torch.Tensor, padding: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each crop's window position (dy, dx) in the padded image, 0..2 * padding per axis.

    The crop's largest value is the original pixel (y, x) it holds furthest down and right; found
    at (i, j) in the crop, the window starts at (y - i + padding, x - j + padding)."""
    value, position = crops.flatten(1).max(dim=1)
    y, x = (value.long() - 1).div(SIZE, rounding_mode="floor"), (value.long() - 1) % SIZE
    i, j = position.div(SIZE, rounding_mode="floor"), position % SIZE
    return y - i + padding, x - j + padding


def chi2_uniform(samples: torch.Tensor, bins: int) -> float:
    counts = torch.bincount(samples, minlength=bins).double()
    expected = len(samples) / bins
    return float(((counts - expected) ** 2 / expected).sum())


def chi2_same(first: torch.Tensor, second: torch.Tensor, bins: int) -> float:
    """Two equal-sized samples from one distribution over ``bins`` values (df = bins - 1)."""
    a, b = (torch.bincount(s, minlength=bins).double() for s in (first, second))
    return float(((a - b) ** 2 / (a + b).clamp(min=1)).sum())


@pytest.mark.parametrize("padding", [2, 4])
def test_batched_crop_offsets_are_distributed_like_torchvisions(padding: int) -> None:
    images = marked_images(N)
    torch.manual_seed(0)
    batched = random_crop(images, padding)
    per_image = v2.RandomCrop(SIZE, padding=padding)
    torchvision = torch.stack([per_image(tv_tensors.Image(image)) for image in images])
    bins = 2 * padding + 1
    for name, crops in (("batched", batched), ("torchvision", torchvision)):
        dy, dx = crop_offsets(crops, padding)
        assert dy.min() >= 0 and dy.max() == bins - 1 and dx.min() >= 0 and dx.max() == bins - 1
        # Every (dy, dx) window reproduces the crop: the offsets were read correctly.
        padded = torch.nn.functional.pad(images, (padding,) * 4)
        for k in range(0, N, 97):
            window = padded[k, :, int(dy[k]) : int(dy[k]) + SIZE, int(dx[k]) : int(dx[k]) + SIZE]
            assert torch.equal(crops[k], window), name
        for axis in (dy, dx):
            assert chi2_uniform(axis, bins) < CHI2_CRITICAL[bins - 1], name
        assert len(set(zip(dy.tolist(), dx.tolist(), strict=True))) == bins * bins, name
    for first, second in zip(crop_offsets(batched, padding), crop_offsets(torchvision, padding), strict=True):
        assert chi2_same(first, second, bins) < CHI2_CRITICAL[bins - 1]


def test_batched_flip_rate_is_torchvisions() -> None:
    images = marked_images(N)
    torch.manual_seed(1)
    batched = random_hflip(images)
    per_image = v2.RandomHorizontalFlip()
    torchvision = torch.stack([per_image(tv_tensors.Image(image)) for image in images])
    sd = (0.25 / N) ** 0.5  # binomial standard deviation of a rate of 1/2
    rates = []
    for crops in (batched, torchvision):
        mirrored = crops[:, 0, 0, 0] == SIZE  # the first row's last pixel came to the front
        assert torch.equal(crops[mirrored], images[mirrored].flip(-1))
        assert torch.equal(crops[~mirrored], images[~mirrored])
        rates.append(mirrored.double().mean().item())
        assert abs(rates[-1] - 0.5) < 4 * sd
    assert abs(rates[0] - rates[1]) < 4 * sd * 2**0.5


def test_unknown_pipeline_is_a_clear_error(make_cfg) -> None:
    cfg = make_cfg("data.pipeline=fast")
    with pytest.raises(ValueError, match=r"Unknown data.pipeline 'fast'; choose one of: batched, per_sample"):
        train(cfg)


def test_transforms_without_the_per_sample_pipeline_are_refused() -> None:
    with pytest.raises(ValueError, match=r"data.train_transforms .* needs data.pipeline=per_sample"):
        SyntheticData(train_transforms=[v2.RandomVerticalFlip()])
    with pytest.raises(TypeError, match=r"data.test_transforms must list transforms"):
        SyntheticData(pipeline="per_sample", test_transforms=["RandomVerticalFlip"])
