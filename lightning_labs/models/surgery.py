"""Model surgery as configuration: replace a named layer, or insert a block after one.

An edit is a dict:

    {replace: fc, with: {_target_: torch.nn.Linear, in_features: 2048, out_features: 10}}
    {insert_after: layer4, name: extra_conv, with: {_target_: lightning_labs.models.blocks.ConvBNAct, ...}}

``insert_after`` keeps every existing parameter name (the new block is registered beside the
layer and applied to its output by a forward hook), so weights saved before the edit still load
into the edited network, and a model diff shows exactly one added block.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from lightning_labs.config import instantiate


def _layer(net: nn.Module, name: str) -> nn.Module:
    names = [n for n, _ in net.named_modules() if n]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        top = ", ".join(n for n, _ in net.named_children())
        raise ValueError(f"The network has no layer named {name!r}.{hint} Top-level layers: {top}")
    return net.get_submodule(name)


def _parent(net: nn.Module, name: str) -> tuple[nn.Module, str]:
    parent, _, child = name.rpartition(".")
    return (net.get_submodule(parent) if parent else net), child


def replace_module(net: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where the layer ``name`` was."""
    _layer(net, name)
    parent, child = _parent(net, name)
    setattr(parent, child, new)


class _ApplyAfter:
    """Forward hook that passes a layer's output through an inserted block (picklable, copyable)."""

    def __init__(self, parent: nn.Module, block_name: str) -> None:
        self.parent, self.block_name = parent, block_name

    def __call__(self, module: nn.Module, args: Any, output: Any) -> Any:
        return getattr(self.parent, self.block_name)(output)


def insert_after(net: nn.Module, name: str, block: nn.Module, block_name: str) -> None:
    """Run ``block`` on the output of layer ``name``; the block is registered as ``block_name`` beside it."""
    layer = _layer(net, name)
    parent, _ = _parent(net, name)
    if hasattr(parent, block_name):
        raise ValueError(f"Cannot insert {block_name!r} after {name!r}: that name is taken")
    parent.add_module(block_name, block)
    layer.register_forward_hook(_ApplyAfter(parent, block_name))


def apply_edits(net: nn.Module, edits: Sequence[Mapping[str, Any]]) -> nn.Module:
    """Apply each edit in order; each ``with`` is a ``_target_`` config of the new block."""
    for edit in edits:
        if "with" not in edit:
            raise ValueError(f"Edit {dict(edit)} lacks 'with': the _target_ config of the new block")
        block = instantiate(dict(edit["with"]), _convert_="all")
        if "replace" in edit:
            replace_module(net, edit["replace"], block)
        elif "insert_after" in edit:
            if "name" not in edit:
                raise ValueError(f"Edit {dict(edit)} needs a 'name' for the inserted block")
            insert_after(net, edit["insert_after"], block, edit["name"])
        else:
            raise ValueError(f"Edit {dict(edit)} must say 'replace: LAYER' or 'insert_after: LAYER'")
    return net
