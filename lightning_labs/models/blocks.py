"""Small blocks to insert into networks by config (see ``surgery``)."""

from __future__ import annotations

from torch import nn

from lightning_labs.models.layers import activation


class ConvBNAct(nn.Sequential):
    """conv (no bias) - BatchNorm - activation, with 'same' padding."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, act: str = "relu"
    ) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            activation(act),
        )


class LinearHead(nn.Linear):
    """A linear classifier whose output width is the data's class count (filled in from the data)."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__(in_features, num_classes)
