"""LeNet-5 (LeCun et al., 1998) in its 32x32-equivalent layout."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lightning_labs.models.layers import activation, pool2d


class LeNet5(nn.Module):
    """conv 6@5x5 (pad 2) - pool - conv 16@5x5 - pool - conv 120@5x5 - fc 84 - fc classes.

    With 28x28 MNIST digits the padding of the first convolution gives the classic 32x32
    geometry, so the third convolution sees a 5x5 map and outputs 120 features. Other image
    sizes work too: the first fully connected layer is sized from a trial forward pass.
    ``width`` scales every layer's channels and units (1: the classic 6, 16, 120, 84), so a search
    can trade size for accuracy with one number.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: Sequence[int] = (28, 28),
        act: str = "relu",
        pool: str = "max",
        width: float = 1.0,
    ) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"LeNet5 width={width}: give a multiplier above 0 (1 is the classic LeNet-5).")
        c1, c2, c3, fc = (max(1, round(n * width)) for n in (6, 16, 120, 84))
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=5, padding=2),
            activation(act),
            pool2d(pool),
            nn.Conv2d(c1, c2, kernel_size=5),
            activation(act),
            pool2d(pool),
            nn.Conv2d(c2, c3, kernel_size=5),
            activation(act),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, in_channels, *image_size)).shape[1]
        self.classifier = nn.Sequential(nn.Linear(flat, fc), activation(act), nn.Linear(fc, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
