"""Reading checkpoints safely, and rebuilding the trained model from one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning_labs.config import instantiate
from lightning_labs.data import ClassificationData
from lightning_labs.module import ClassifierModule
from lightning_labs.safe_load import torch_load


def load_checkpoint(path: str | Path, trusted: bool = False) -> dict[str, Any]:
    """A lightning_labs training checkpoint, loaded safely (see :func:`torch_load`)."""
    checkpoint = torch_load(path, trusted)
    missing = {"state_dict", "hyper_parameters"} - set(checkpoint if isinstance(checkpoint, dict) else ())
    if missing:
        raise ValueError(
            f"{path} is not a lightning_labs training checkpoint: it lacks {', '.join(sorted(missing))}."
        )
    return checkpoint


def model_from_checkpoint(checkpoint: dict[str, Any]) -> ClassifierModule:
    """The ClassifierModule with the checkpoint's network config and weights."""
    # The checkpoint holds all weights: the pretrained file it started from is not needed again.
    model = ClassifierModule(**{**checkpoint["hyper_parameters"], "weights": None})
    model.load_state_dict(checkpoint["state_dict"])
    return model


def data_from_checkpoint(
    checkpoint: dict[str, Any], data_config: dict[str, Any] | None = None
) -> ClassificationData:
    """The DataModule a checkpoint was trained on (or ``data_config`` instead), with its class names.

    Building it reads no file, so its evaluation transform and class names are at hand even
    where the dataset itself is not.
    """
    config = data_config or (checkpoint.get("run_config") or {}).get("data")
    if not config:
        raise ValueError("The checkpoint does not record its data: pass data=<name> (and data.root=...)")
    datamodule = instantiate(config)
    state = checkpoint.get(type(datamodule).__qualname__)
    if isinstance(state, dict):
        datamodule.load_state_dict(state)
    return datamodule
