"""Reading checkpoints safely, and rebuilding the trained model from one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

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


def resolve_checkpoint_path(ckpt_path: str, output_dir: Path, log_dir: Path) -> Path:
    """``ckpt_path`` as a file: ``last`` means the newest ``checkpoints/last.ckpt``.

    That is this run directory's own when it has one (resuming in place with
    ``hydra.run.dir=<old run>``), else the most recently written under ``log_dir``: the run
    that was just interrupted.
    """
    if ckpt_path != "last":
        return Path(ckpt_path)
    own = output_dir / "checkpoints" / "last.ckpt"
    if own.is_file():
        return own
    found = [path for path in log_dir.glob("**/checkpoints/last.ckpt") if path.is_file()]
    if not found:
        raise FileNotFoundError(
            f"ckpt_path=last: no checkpoints/last.ckpt under {log_dir} to resume from. Pass the path "
            "of a checkpoint, or start without ckpt_path."
        )
    return max(found, key=lambda path: path.stat().st_mtime)


def check_checkpoint_fits(checkpoint: dict[str, Any], model: torch.nn.Module, path: Path) -> None:
    """Refuse to resume from a checkpoint of another network (or of other data's class count)."""
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    saved = {name: tuple(tensor.shape) for name, tensor in checkpoint["state_dict"].items()}
    differ = sorted(name for name in expected.keys() | saved.keys() if expected.get(name) != saved.get(name))
    if differ:
        was = ((checkpoint.get("run_config") or {}).get("model") or {}).get("name", "another network")
        raise ValueError(
            f"{path} does not fit this run's network: it was saved from {was}, and {len(differ)} of "
            f"its tensors differ in name or shape (e.g. {', '.join(differ[:3])}). Resume with the "
            f"model and data it was trained with (model={was})."
        )


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
