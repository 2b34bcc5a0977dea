"""Named building blocks, so that configs and sweeps choose layers by a short string."""

from __future__ import annotations

from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "mish": nn.Mish,
    "hardswish": nn.Hardswish,
}

POOLS: dict[str, type[nn.Module]] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


def _choose(kind: str, name: str, table: dict[str, type[nn.Module]]) -> type[nn.Module]:
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"Unknown {kind} {name!r}; choose one of: {', '.join(sorted(table))}") from None


def activation(name: str) -> nn.Module:
    """A fresh activation layer by name (``relu``, ``sigmoid``, ...)."""
    return _choose("activation", name, ACTIVATIONS)()


def pool2d(name: str, kernel_size: int = 2) -> nn.Module:
    """A 2-D pooling layer by name (``max`` or ``avg``) with stride equal to the kernel."""
    return _choose("pool", name, POOLS)(kernel_size)
