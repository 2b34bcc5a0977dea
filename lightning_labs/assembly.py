"""From configs to the arguments of the objects they describe, shared by the entry points."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from lightning_labs.config import instantiate
from lightning_labs.models import complete_net_config


def data_facts(cfg: DictConfig) -> dict[str, Any]:
    """The data's facts; ``input_shape`` / ``num_classes`` from the command line take precedence."""
    shape, classes = cfg.get("input_shape"), cfg.get("num_classes")
    if not (shape and classes):
        datamodule = instantiate(cfg.data)  # reads no file, except a folder dataset's class list
        shape = shape or datamodule.input_shape
        classes = classes or datamodule.num_classes
    return {"in_channels": shape[0], "num_classes": classes, "image_size": list(shape[1:])}


def model_arguments(model: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """The ClassifierModule arguments of a ``model`` config, completed with the data's facts."""
    edits = [
        {**e, "with": complete_net_config(e["with"], facts)} if "with" in e else e
        for e in model.get("edits") or []
    ]
    return {
        "net": complete_net_config(model["net"], facts),
        "edits": edits,
        "weights": model.get("weights"),
        "strict": model.get("strict", True),
        "freeze": list(model.get("freeze") or []),
    }
