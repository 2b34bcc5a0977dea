"""Resuming a run: which checkpoint ``ckpt_path=last`` means, and whether a checkpoint fits the run.

A resumed run continues the saved network, optimizer and schedule, so a checkpoint of another
network or other training settings is refused, with the differences listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lightning_labs.runtime.logs import get_logger
from lightning_labs.training.module import ClassifierModule

log = get_logger(__name__)

# Data settings that change how batches are loaded, not what is learned: ckpt_path=last may find
# a run that differed in them.
LOADING_KEYS = ("num_workers", "pin_memory", "download")
# What a resumed run must share with its checkpoint, since the saved state replaces it: the
# network's weights, the optimizer's and the schedule's state (hyperparameter: the setting's name).
RESUMED_SETTINGS = {
    "net": "model.net",
    "edits": "model.edits",
    "optimizer": "optimizer",
    "scheduler": "scheduler",
}
CANDIDATES_SHOWN = 10
_NOT_SET = object()  # a setting missing on one side of a comparison


def resolve_checkpoint_path(ckpt_path: str, output_dir: Path, log_dir: Path, run: dict[str, Any]) -> Path:
    """``ckpt_path`` as a file: ``last`` means the ``checkpoints/last.ckpt`` of the run being resumed.

    That is this run directory's own when it has one (resuming in place with
    ``hydra.run.dir=<old run>``), else the newest under ``log_dir`` saved with this run's model
    and data config (``run``: the run's config, see :func:`run_differences`). The newest of any
    run would be another model's whenever a different run ended later.
    """
    if ckpt_path != "last":
        return Path(ckpt_path)
    own = output_dir / "checkpoints" / "last.ckpt"
    if own.is_file():
        return own
    found = sorted(
        (path for path in log_dir.glob("**/checkpoints/last.ckpt") if path.is_file()),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    if not found:
        raise FileNotFoundError(
            f"ckpt_path=last: no checkpoints/last.ckpt under {log_dir} to resume from. Pass the path "
            "of a checkpoint, or start without ckpt_path."
        )
    saved = {path: saved_run_config(path) for path in found}
    differences = {path: run_differences(config, run) for path, config in saved.items()}
    matching = [path for path in found if not differences[path]]
    if not matching:
        listing = "\n".join(
            f"  {path} ({run_name(saved[path])}; differs in {_first(differences[path], 3)})"
            for path in found[:CANDIDATES_SHOWN]
        )
        more = f"\n  ... and {len(found) - CANDIDATES_SHOWN} older" if len(found) > CANDIDATES_SHOWN else ""
        raise FileNotFoundError(
            f"ckpt_path=last: none of the {len(found)} checkpoints/last.ckpt under {log_dir} was saved "
            f"by a run with this model, data, optimizer and scheduler ({run_name(run)}), so there is "
            "no run of yours to resume. Resume one of them by its path (ckpt_path=<file>, with the "
            "overrides it was trained with), or start without ckpt_path. Found, newest first:\n"
            f"{listing}{more}"
        )
    if len(matching) > 1:
        log.info(
            "ckpt_path=last: %d runs of this model, data, optimizer and scheduler; the newest", len(matching)
        )
    return matching[0]


def saved_run_config(path: Path) -> dict[str, Any] | None:
    """The run config stored in a checkpoint, or None where the file cannot be read.

    Memory-mapped and ``weights_only``: looking for ``ckpt_path=last`` reads the config of every
    run under ``outputs/`` without reading their tensors (the file chosen is then loaded and
    checked whole by :func:`load_checkpoint`).
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # a damaged or foreign file is listed as unreadable, not fatal here
        return None
    return checkpoint.get("run_config") if isinstance(checkpoint, dict) else None


def run_differences(saved: dict[str, Any] | None, run: dict[str, Any]) -> list[str]:
    """How a saved run config differs from ``run`` in what identifies a run.

    That is its model and data (less the settings that only change how batches are loaded,
    ``LOADING_KEYS``) and the kind of optimizer and scheduler: a run that differs in these could
    not be resumed. Their values are left out: the learning rate may be scaled to the batch.
    """
    if saved is None:
        return ["(unreadable, or saved without its run config)"]

    def identity(config: dict[str, Any]) -> dict[str, Any]:
        data = {k: v for k, v in (config.get("data") or {}).items() if k not in LOADING_KEYS}
        kinds = {group: (config.get(group) or {}).get("_target_") for group in ("optimizer", "scheduler")}
        return {"model": config.get("model"), "data": data, **kinds}

    return config_differences(identity(saved), identity(run))


def config_differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """``name: saved -> current`` for each setting that differs, walking nested dicts key by key.

    Configs of different classes (``_target_``) differ in that alone: their arguments follow.
    """
    if isinstance(saved, dict) and isinstance(current, dict):
        if saved.get("_target_") != current.get("_target_"):
            return config_differences(saved.get("_target_"), current.get("_target_"), f"{prefix}._target_")
        return [
            line
            for key in sorted(saved.keys() | current.keys(), key=str)
            for line in config_differences(
                saved.get(key, _NOT_SET), current.get(key, _NOT_SET), f"{prefix}.{key}".lstrip(".")
            )
        ]
    return [] if saved == current else [f"{prefix}: {_show(saved)} -> {_show(current)}"]


def _show(value: Any) -> str:
    if value is _NOT_SET:
        return "(not set)"
    if isinstance(value, dict) and "_target_" in value:  # a whole config: its class says enough
        return f"{{'_target_': {value['_target_']!r}, ...}}"
    return repr(value)


def _first(lines: list[str], count: int) -> str:
    """The first ``count`` lines joined with ``; ``, and ``...`` when there are more."""
    return "; ".join(lines[:count]) + ("; ..." if len(lines) > count else "")


def run_name(config: dict[str, Any] | None) -> str:
    """``model=lenet5, data=MNISTData``: a run config's model and data, in brief."""
    model, data = (config or {}).get("model") or {}, (config or {}).get("data") or {}
    data_name = data.get("variant") or str(data.get("_target_", "?")).rsplit(".", 1)[-1]
    return f"model={model.get('name', '?')}, data={data_name}"


def check_checkpoint_fits(checkpoint: dict[str, Any], model: ClassifierModule, path: Path) -> None:
    """Refuse to resume from a checkpoint of another network, or with other training settings.

    Lightning loads the saved weights, optimizer and scheduler state over the new run's: with
    other network options (``model.act``) the weights fit by shape but mean something else, and
    another optimizer or schedule would be silently replaced by (or mixed with) the saved one.
    """
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
    differences = [
        line
        for name, shown_as in RESUMED_SETTINGS.items()
        for line in config_differences(
            checkpoint["hyper_parameters"].get(name), model.hparams.get(name), shown_as
        )
    ]
    if differences:
        raise ValueError(
            f"{path} was trained with other settings than this run's ({_first(differences, 6)}; "
            "checkpoint -> this run). A resumed run continues the saved network, optimizer and "
            "schedule, so resume with the settings it was trained with, or start a new run from its "
            f"weights with model.weights={path} (and no ckpt_path)."
        )
