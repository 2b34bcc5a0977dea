"""Freeze parts of a network by layer name or glob, keeping their BatchNorm statistics fixed."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from torch import nn


def _matches(name: str, pattern: str) -> bool:
    """``layer1`` matches the layer and everything inside it; globs such as ``backbone.*`` work too."""
    return fnmatchcase(name, pattern) or fnmatchcase(name, f"{pattern}.*")


def freeze(net: nn.Module, patterns: Sequence[str]) -> list[nn.Module]:
    """Stop gradients to every parameter under the layers named by ``patterns``.

    Returns the normalisation layers left with no trainable parameter: they must also stay in
    eval mode, or their running statistics would keep moving while their weights are fixed.
    """
    names = [n for n, _ in net.named_modules() if n]
    for pattern in patterns:
        if not any(_matches(name, pattern) for name in names):
            top = ", ".join(n for n, _ in net.named_children())
            raise ValueError(f"model.freeze entry {pattern!r} matches no layer. Top-level layers: {top}")
    for name, param in net.named_parameters():
        if any(_matches(name, pattern) for pattern in patterns):
            param.requires_grad_(False)
    check_something_trains(net, patterns)
    frozen_norms = []
    for name, module in net.named_modules():
        if isinstance(module, nn.modules.batchnorm._NormBase):
            params = list(module.parameters())
            fixed = (
                all(not p.requires_grad for p in params)
                if params
                else any(_matches(name, p) for p in patterns)
            )
            if fixed:
                frozen_norms.append(module)
    return frozen_norms


def check_something_trains(net: nn.Module, patterns: Sequence[str]) -> None:
    """Refuse a freeze that leaves no parameter to train: the optimizer would get none (torch's
    "empty parameter list"), and testing the untrained head would report chance."""
    params = list(net.parameters())
    if patterns and params and not any(p.requires_grad for p in params):
        last = [
            name for name, m in net.named_modules() if next(m.parameters(recurse=False), None) is not None
        ]
        raise ValueError(
            f"model.freeze={list(patterns)} freezes every parameter of the network: nothing is left to "
            f"train. Freeze fewer layers (leave out at least the last one, {last[-1]}); to train the "
            "frozen layers too after a few epochs, add model.unfreeze_at_epoch=N."
        )


def count_parameters(net: nn.Module) -> tuple[int, int]:
    """Trainable and frozen parameter counts."""
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in net.parameters()) - trainable
