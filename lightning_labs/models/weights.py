"""Pretrained weights: a state dict or lightning_labs checkpoint on disk, or torchvision's named weights."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from lightning_labs.logs import get_logger
from lightning_labs.safe_load import torch_load

log = get_logger(__name__)
SHOWN = 8  # how many key names an error lists


def _names(keys: list[str]) -> str:
    more = f" (+{len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more


def read_state_dict(source: str, net_config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors named by ``source``: a file path, or a torchvision weights name such as DEFAULT."""
    path = Path(source)
    if path.is_file():
        loaded = torch_load(path)
        if isinstance(loaded, Mapping) and "state_dict" in loaded and "hyper_parameters" in loaded:
            # A lightning_labs checkpoint: the network's tensors are those under "net.".
            return {
                k.removeprefix("net."): v for k, v in loaded["state_dict"].items() if k.startswith("net.")
            }
        if isinstance(loaded, Mapping) and all(isinstance(v, torch.Tensor) for v in loaded.values()):
            return dict(loaded)
        raise ValueError(
            f"{path} holds no state dict (a mapping of names to tensors) or lightning_labs checkpoint"
        )
    arch = net_config.get("arch") if str(net_config.get("_target_", "")).endswith("torchvision_net") else None
    if arch is None:
        raise FileNotFoundError(
            f"model.weights={source!r} is not a file, and only torchvision models (model=resnet50, ...) "
            "have named weights. Pass the path of a .pth state dict or .ckpt checkpoint."
        )
    try:
        weights = torchvision.models.get_model_weights(arch)[source]
    except KeyError:
        names = [w.name for w in torchvision.models.get_model_weights(arch)]
        raise ValueError(
            f"{arch} has no weights named {source!r}; choose one of: DEFAULT, {', '.join(names)}"
        ) from None
    try:
        return weights.get_state_dict(progress=False)
    except Exception as err:
        raise RuntimeError(
            f"Could not fetch torchvision's {weights} ({err}). Without a network, download "
            f"{weights.url} elsewhere and pass model.weights=/path/to/{Path(weights.url).name}"
        ) from None


def load_weights(net: nn.Module, source: str, net_config: Mapping[str, Any], strict: bool = True) -> None:
    """Copy the tensors of ``source`` into ``net``.

    With ``strict`` every tensor must match a parameter or buffer of the same shape and none may
    be missing; otherwise the matching ones are loaded and the rest (a new head, say) keep their
    fresh initialisation. Either way the log lists what was skipped.
    """
    state = read_state_dict(source, net_config)
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in state if k in own and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing in the file: {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected in the file: {_names(unexpected)}")
    if mismatched:
        shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in mismatched]
        problems.append(f"shape differs (file vs network): {_names(shapes)}")
    if problems and strict:
        raise ValueError(
            f"The weights in {source} do not fit the network: " + "; ".join(problems) + ". "
            "To load the tensors that fit and keep the rest freshly initialised (e.g. a new head), "
            "pass model.strict=false."
        )
    matching = {k: v for k, v in state.items() if k in own and k not in mismatched}
    net.load_state_dict(matching, strict=False)
    log.info("Loaded %d of %d tensors from %s", len(matching), len(own), source)
    for problem in problems:
        log.info("  not loaded: %s", problem)
