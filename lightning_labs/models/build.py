"""Build a network from its config and make sure it fits the data before any training starts."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import hydra
import torch
from torch import nn

from lightning_labs.models.surgery import apply_edits
from lightning_labs.models.weights import load_weights
from lightning_labs.runtime.config import instantiate

DATA_FACTS = ("in_channels", "num_classes", "image_size")


def complete_net_config(net: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, Any]:
    """Fill ``in_channels``, ``num_classes`` and ``image_size`` from the data.

    A value is filled only where the constructor names the parameter and the config leaves it
    unset (missing or null), so configs never repeat what the data already knows and a user's
    own network receives only the arguments it declares. Blocks inserted by model surgery get
    the same treatment (a new head's ``num_classes``, for instance).
    """
    config = dict(net)
    target = config.get("_target_")
    if not target:
        raise ValueError("A network or block config needs a _target_ naming its class, e.g. my_pkg.MyNet")
    try:
        builder = hydra.utils.get_object(target)
    except Exception as err:
        raise ValueError(
            f"_target_={target!r} cannot be imported ({err}). Check the spelling and "
            "that its package is installed or on PYTHONPATH."
        ) from None
    params = inspect.signature(builder).parameters
    for key in DATA_FACTS:
        if key in params and config.get(key) is None:
            config[key] = facts[key]
    return config


def build_net(
    config: Mapping[str, Any],
    edits: Sequence[Mapping[str, Any]] = (),
    weights: str | None = None,
    strict: bool = True,
) -> nn.Module:
    """The network of a model config: built from ``_target_``, edited, then given its weights.

    Weights load after the edits, so a lightning_labs checkpoint saved from this same edited
    network loads whole, and weights of the unedited network (torchvision's, say) fill every
    layer the edits kept, while the layers they replaced or inserted stay fresh.
    """
    try:
        net = instantiate(dict(config), _convert_="all")
    except Exception as err:
        cause = err.__cause__ or err
        raise ValueError(f"Could not build the network {config.get('_target_')}: {cause}") from err
    if not isinstance(net, nn.Module):
        raise TypeError(f"model.net._target_ must build an nn.Module, got {type(net).__name__}")
    edited = apply_edits(net, edits)
    if weights:
        load_weights(net, weights, config, strict, edited)
    return net


def check_net_fits_data(net: nn.Module, input_shape: Sequence[int], num_classes: int) -> None:
    """Run one tiny batch through the network so that a mismatch fails now, with both shapes named."""
    x = torch.zeros(2, *input_shape)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net(x)
    except RuntimeError as err:
        first = next((m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))), None)
        wants = ""
        if isinstance(first, nn.Conv2d):
            wants = f"; its first layer is a Conv2d expecting {first.in_channels} input channels"
        raise ValueError(
            f"The network does not fit the data: the data gives images of shape "
            f"{tuple(input_shape)} (channels, height, width){wants}. Forward pass error: {err}"
        ) from None
    finally:
        net.train(was_training)
    if tuple(out.shape) != (2, num_classes):
        raise ValueError(
            f"The network outputs shape {tuple(out.shape[1:])} per image, but the data has "
            f"{num_classes} classes: the last layer must output {num_classes} logits."
        )
