"""Model surgery as configuration: replace a named layer, or insert a block after one.

An edit is a dict:

    {replace: fc, with: {_target_: torch.nn.Linear, in_features: 2048, out_features: 10}}
    {insert_after: layer4, name: extra_conv, with: {_target_: lightning_labs.models.blocks.ConvBNAct, ...}}

``insert_after`` keeps every existing parameter name, so weights saved before the edit still
load: the layer stays where it is, and a forward hook passes its output through the new block.
The block is registered in the innermost module around the layer that calls its children by
name. An ``nn.Sequential``, ``nn.ModuleList`` or ``nn.ModuleDict`` runs (or lets its owner loop
over) every child it holds, and would run the block a second time in the wrong place, so the
block goes to the first enclosing module that is none of these: in a ResNet, ``insert_after:
layer4, name: extra`` and ``insert_after: layer3.0, name: extra`` both register ``extra.*``.
(A module of your own whose ``forward`` loops over ``self.children()`` would also run the block
twice: use ``replace`` on a layer inside it instead.)
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from lightning_labs.runtime.config import instantiate

# Modules whose forward runs, or whose owner iterates, every child they hold.
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


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


class _ApplyAfter:
    """Forward hook that passes a layer's output through an inserted block (picklable, copyable)."""

    def __init__(self, holder: nn.Module, block_name: str) -> None:
        self.holder, self.block_name = holder, block_name

    def __call__(self, module: nn.Module, args: Any, output: Any) -> Any:
        return getattr(self.holder, self.block_name)(output)


def replace_module(net: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where the layer ``name`` was; a block inserted after that layer now follows ``new``."""
    old = _layer(net, name)
    parent, child = _parent(net, name)
    setattr(parent, child, new)
    for hook in old._forward_hooks.values():
        if isinstance(hook, _ApplyAfter):
            new.register_forward_hook(hook)


def _holder(net: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The innermost module around layer ``name`` that is not a container, and its name ("" for the net)."""
    path = name.rpartition(".")[0]
    while path and isinstance(net.get_submodule(path), CONTAINERS):
        path = path.rpartition(".")[0]
    if not path and isinstance(net, CONTAINERS):
        raise ValueError(
            f"Cannot insert a block after {name!r}: the network is a {type(net).__name__}, which runs "
            "every block it holds, so there is no place to keep the new one out of its loop. "
            f"Use {{replace: {name}, with: {{_target_: torch.nn.Sequential, ...}}}} instead."
        )
    return (net.get_submodule(path) if path else net), path


def insert_after(net: nn.Module, name: str, block: nn.Module, block_name: str) -> str:
    """Run ``block`` once on the output of layer ``name``; returns the full name it is registered as."""
    layer = _layer(net, name)
    holder, path = _holder(net, name)
    full_name = f"{path}.{block_name}" if path else block_name
    if hasattr(holder, block_name):
        raise ValueError(
            f"Cannot insert {block_name!r} after {name!r}: {full_name!r} is taken. Choose another 'name'."
        )
    holder.add_module(block_name, block)
    layer.register_forward_hook(_ApplyAfter(holder, block_name))
    return full_name


def apply_edits(net: nn.Module, edits: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Apply each edit in order; each ``with`` is a ``_target_`` config of the new block.

    Returns the full name of every layer an edit replaced or inserted, with that edit, so that
    weights loaded afterwards can leave those layers fresh (see ``models.weights``).
    """
    edited: dict[str, Mapping[str, Any]] = {}
    for edit in edits:
        if "with" not in edit:
            raise ValueError(f"Edit {dict(edit)} lacks 'with': the _target_ config of the new block")
        block = instantiate(dict(edit["with"]), _convert_="all")
        if "replace" in edit:
            replace_module(net, edit["replace"], block)
            edited[edit["replace"]] = edit
        elif "insert_after" in edit:
            if "name" not in edit:
                raise ValueError(f"Edit {dict(edit)} needs a 'name' for the inserted block")
            edited[insert_after(net, edit["insert_after"], block, edit["name"])] = edit
        else:
            raise ValueError(f"Edit {dict(edit)} must say 'replace: LAYER' or 'insert_after: LAYER'")
    return edited
