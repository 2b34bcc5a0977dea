"""Synthetic images of any shape and class count: learnable, reproducible, no files needed."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lightning_labs.data.in_memory import InMemoryImageData


class SyntheticData(InMemoryImageData):
    """Each class is a fixed random pattern; an image is its class pattern plus noise.

    The data is learnable (a working model beats chance within a few steps) yet costs no disk,
    which makes it the data of smoke tests and speed measurements.

    Args:
        num_classes: number of classes.
        input_shape: channels, height, width.
        train_size, test_size: images in the train (before the validation split) and test splits.
        noise: standard deviation of the per-pixel noise, as a fraction of the 0-255 range.
        seed: seed of patterns and noise.
    """

    name = "synthetic"

    def __init__(
        self,
        num_classes: int = 10,
        input_shape: Sequence[int] = (3, 32, 32),
        train_size: int = 2048,
        test_size: int = 512,
        noise: float = 0.25,
        seed: int = 0,
        **kwargs,
    ) -> None:
        channels = input_shape[0]
        kwargs.setdefault("mean", (0.5,) * channels)
        kwargs.setdefault("std", (0.29,) * channels)
        super().__init__(**kwargs)
        if len(input_shape) != 3:
            raise ValueError(f"data.input_shape must be [channels, height, width], got {list(input_shape)}")
        if num_classes < 2:
            raise ValueError(f"data.num_classes={num_classes}: a classifier needs at least 2 classes")
        self._num_classes = num_classes
        self.input_shape = tuple(int(d) for d in input_shape)
        self.sizes = {True: train_size, False: test_size}
        self.noise = noise
        self.seed = seed
        self.class_names = [f"class_{i}" for i in range(num_classes)]

    @property
    def num_classes(self) -> int:
        return self._num_classes

    def load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        patterns = torch.rand(
            self.num_classes, *self.input_shape, generator=torch.Generator().manual_seed(self.seed)
        )
        generator = torch.Generator().manual_seed(self.seed + (1 if train else 2))
        n = self.sizes[train]
        labels = torch.randint(0, self.num_classes, (n,), generator=generator)
        pixels = patterns[labels] + self.noise * torch.randn(n, *self.input_shape, generator=generator)
        return (pixels.clamp(0, 1) * 255).round().to(torch.uint8), labels
