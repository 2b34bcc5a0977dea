"""One configurable convolutional network: the VGG family and the labs' own CIFAR CNNs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lightning_labs.models.layers import activation, pool2d

POOL = "M"


class ConvNet(nn.Module):
    """A stack of conv-(BN)-act layers and pools, then a classifier head.

    ``layers`` uses the VGG notation: an integer is a convolution with that many output
    channels, ``"M"`` a 2x2 pooling layer (max or avg, from ``pool``). The CIFAR VGG-11
    variant is ``[64, 128, M, 256, 256, M, 512, 512, M, 512, 512, M]``. The head either
    averages each channel over space (``global_pool=True``, as in VGG for CIFAR) or flattens
    the feature map; ``fc`` lists hidden fully connected widths, each followed by ``act`` and
    preceded by dropout. ``width`` scales every convolution's channels and hidden unit count (1:
    as listed), so a search can trade size for accuracy with one number.
    """

    def __init__(
        self,
        layers: Sequence[int | str],
        in_channels: int = 3,
        num_classes: int = 10,
        image_size: Sequence[int] = (32, 32),
        kernel_size: int = 3,
        stride: int = 1,
        act: str = "relu",
        pool: str = "max",
        batch_norm: bool = True,
        global_pool: bool = True,
        fc: Sequence[int] = (),
        dropout: float = 0.0,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"ConvNet width={width}: give a multiplier above 0 (1 keeps the listed widths).")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd to keep 'same' padding, got {kernel_size}")
        blocks: list[nn.Module] = []
        channels = in_channels
        for spec in layers:
            if spec == POOL:
                blocks.append(pool2d(pool))
                continue
            if not isinstance(spec, int) or spec <= 0:
                raise ValueError(f"layers entries must be positive ints or {POOL!r}, got {spec!r}")
            spec = max(1, round(spec * width))
            blocks += [
                nn.Conv2d(channels, spec, kernel_size, stride, kernel_size // 2, bias=not batch_norm),
                *([nn.BatchNorm2d(spec)] if batch_norm else []),
                activation(act),
            ]
            channels = spec
        blocks += [nn.AdaptiveAvgPool2d(1)] if global_pool else []
        blocks.append(nn.Flatten())
        self.features = nn.Sequential(*blocks)

        with torch.no_grad():
            self.features.eval()
            features = self.features(torch.zeros(1, in_channels, *image_size)).shape[1]
            self.features.train()
        head: list[nn.Module] = []
        for hidden in (max(1, round(n * width)) for n in fc):
            head += [*_dropout(dropout), nn.Linear(features, hidden), activation(act)]
            features = hidden
        head += [*_dropout(dropout), nn.Linear(features, num_classes)]
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _dropout(p: float) -> list[nn.Module]:
    return [nn.Dropout(p)] if p > 0 else []
