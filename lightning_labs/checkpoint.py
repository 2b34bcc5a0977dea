"""Reading checkpoints safely, and rebuilding the trained model from one."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from lightning_labs.config import instantiate
from lightning_labs.data import ClassificationData
from lightning_labs.module import ClassifierModule


def load_checkpoint(path: str | Path, trusted: bool = False) -> dict[str, Any]:
    """Load a checkpoint onto the CPU; only tensors and plain values unless ``trusted``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint file at {path}: check ckpt_path.")
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; a cut-off one has no index
        raise ValueError(
            f"Could not read checkpoint {path}: it is not a complete PyTorch file (truncated or corrupt?)."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path} holds Python objects beyond tensors and plain values, so it was not loaded "
            f"(weights_only=True). If you trust the file, pass trust_checkpoint=true. ({err})"
        ) from None
    except Exception as err:
        raise ValueError(f"Could not read checkpoint {path}: {err}") from None
    missing = {"state_dict", "hyper_parameters"} - set(checkpoint)
    if missing:
        raise ValueError(
            f"{path} is not a lightning_labs training checkpoint: it lacks {', '.join(sorted(missing))}."
        )
    return checkpoint


def model_from_checkpoint(checkpoint: dict[str, Any]) -> ClassifierModule:
    """The ClassifierModule with the checkpoint's network config and weights."""
    model = ClassifierModule(**checkpoint["hyper_parameters"])
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
