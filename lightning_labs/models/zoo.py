"""torchvision's classification networks, sized for the data."""

from __future__ import annotations

import torchvision
from torch import nn

from lightning_labs.models.surgery import replace_module


def torchvision_net(arch: str, num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    """``torchvision.models.<arch>`` with randomly initialised weights and ``num_classes`` outputs.

    Pretrained weights are loaded separately (``model.weights``), so that a file on disk and
    torchvision's named weights go through the same checked loader. For data with other than
    three channels the first convolution is rebuilt with ``in_channels`` inputs.
    """
    available = torchvision.models.list_models(module=torchvision.models)
    if arch not in available:
        raise ValueError(f"Unknown torchvision model {arch!r}; choose one of: {', '.join(available)}")
    net = torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    if in_channels != 3:
        name, stem = next((n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d))
        replace_module(
            net,
            name,
            nn.Conv2d(
                in_channels,
                stem.out_channels,
                stem.kernel_size,
                stem.stride,
                stem.padding,
                bias=stem.bias is not None,
            ),
        )
    return net
