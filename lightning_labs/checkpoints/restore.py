"""Reading a training checkpoint safely, and rebuilding the trained model and its data from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning_labs.checkpoints.data_config import (
    build_data,
    log_preprocessing_changes,
    merged_data_config,
    pinned_to_trained_folder,
    trained_identity,
)
from lightning_labs.checkpoints.safe_load import torch_load
from lightning_labs.data import ClassificationData
from lightning_labs.runtime.logs import get_logger
from lightning_labs.training.module import ClassifierModule

log = get_logger(__name__)


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
    checkpoint: dict[str, Any], data_config: dict[str, Any] | None = None, typed: set[str] | None = None
) -> ClassificationData:
    """The DataModule a checkpoint was trained on, changed as ``data_config`` asks, with its class names.

    ``data_config`` is the command's ``data`` and ``typed`` the data settings typed on its command
    line (see :mod:`lightning_labs.checkpoints.data_config`); a preprocessing unlike training's is logged.
    Building it reads no file, so its evaluation transform and class names are at hand even
    where the dataset itself is not.
    """
    trained = (checkpoint.get("run_config") or {}).get("data")
    identity = trained_identity(checkpoint, trained)
    config = merged_data_config(trained, data_config, typed)
    config = pinned_to_trained_folder(config, trained, identity, data_config, typed)
    datamodule = build_data(config)
    state = checkpoint.get(type(datamodule).__qualname__)
    if isinstance(state, dict):
        datamodule.load_state_dict(state)
    trained_shape = checkpoint["hyper_parameters"].get("input_shape")
    log_preprocessing_changes(trained, config, trained_shape, datamodule.input_shape)
    return datamodule
