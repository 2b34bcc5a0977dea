"""The training order: a shuffle fixed by (seed, epoch) that can resume part-way through an epoch."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochShuffle(Sampler[int]):
    """A random order of ``size`` images that depends only on ``seed`` and the epoch.

    PyTorch's ``RandomSampler`` draws each epoch's order from the global random generator, so a
    run resumed from a mid-epoch checkpoint would see a different order from the run it
    continues. Here the order is a function of (seed, epoch), and ``resume_at`` leaves out
    the images an interrupted epoch had already trained on. Lightning calls ``set_epoch``
    at the start of every epoch.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0
        self._skip: tuple[int, int] | None = None  # (epoch, images) to leave out once

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, images: int) -> None:
        """Start ``epoch`` at position ``images`` of its order (once: later epochs start at 0)."""
        self.epoch = epoch
        self._skip = (epoch, images)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        skip, self._skip = self._skip, None
        start = skip[1] if skip is not None and skip[0] == self.epoch else 0
        yield from order[start:]
