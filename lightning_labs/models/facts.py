"""Model facts: parameters, MACs and a layer-by-layer table for one input, and the diff of two models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass
class Layer:
    name: str
    kind: str
    params: int
    output_shape: tuple[int, ...] | None
    macs: int


@dataclass
class ModelFacts:
    """What one forward pass of a single input of ``input_shape`` costs, and the layers it runs."""

    input_shape: tuple[int, ...]
    params: int
    trainable: int
    macs: int
    layers: list[Layer] = field(default_factory=list)

    @property
    def frozen(self) -> int:
        return self.params - self.trainable


def _shape(output: object) -> tuple[int, ...] | None:
    return tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else None


def model_facts(net: nn.Module, input_shape: Sequence[int], depth: int = 2) -> ModelFacts:
    """Count parameters and MACs (multiply-accumulates: FLOPs / 2, by torch's flop counter).

    The layer table lists, in the order they run, the modules down to ``depth`` levels of
    nesting (and shallower ones that have no children), each with its own parameters, output
    shape (without the batch) and MACs.
    """
    names = {module: name for name, module in net.named_modules() if name}
    shown = {
        module: name
        for module, name in names.items()
        if name.count(".") == depth - 1 or (name.count(".") < depth - 1 and not any(module.children()))
    }
    order: list[nn.Module] = []
    shapes: dict[nn.Module, tuple[int, ...] | None] = {}

    def started(module: nn.Module, args: object) -> None:
        order.append(module)

    def finished(module: nn.Module, args: object, output: object) -> None:
        shapes.setdefault(module, _shape(output))

    handles = [
        h
        for m in shown
        for h in (m.register_forward_pre_hook(started), m.register_forward_hook(finished, prepend=True))
    ]
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False, depth=None) as counter:
            net(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
        net.train(was_training)
    flops = counter.get_flop_counts()
    root = type(net).__name__
    layers = []
    for module in dict.fromkeys(order):
        name = shown[module]
        macs = sum(flops.get(f"{root}.{name}", {}).values()) // 2
        params = sum(p.numel() for p in module.parameters())
        layers.append(Layer(name, type(module).__name__, params, shapes.get(module), macs))
    return ModelFacts(
        input_shape=tuple(input_shape),
        params=sum(p.numel() for p in net.parameters()),
        trainable=sum(p.numel() for p in net.parameters() if p.requires_grad),
        macs=counter.get_total_flops() // 2,
        layers=layers,
    )


@dataclass
class ModelDiff:
    added: list[Layer]
    removed: list[Layer]
    changed: list[tuple[Layer, Layer]]
    before: ModelFacts
    after: ModelFacts


def diff_models(before: ModelFacts, after: ModelFacts) -> ModelDiff:
    """Layers only in ``after`` (added), only in ``before`` (removed), or in both but different."""
    old = {layer.name: layer for layer in before.layers}
    new = {layer.name: layer for layer in after.layers}
    changed = [
        (old[name], layer)
        for name, layer in new.items()
        if name in old
        and (old[name].kind, old[name].params, old[name].output_shape)
        != (layer.kind, layer.params, layer.output_shape)
    ]
    return ModelDiff(
        added=[layer for name, layer in new.items() if name not in old],
        removed=[layer for name, layer in old.items() if name not in new],
        changed=changed,
        before=before,
        after=after,
    )
