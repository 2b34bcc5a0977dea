"""The run's settings beside its final metrics in TensorBoard's HParams tab, to compare sweep runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig
from torch.utils.tensorboard.summary import hparams

from lightning_labs.callbacks.writer import summary_writer
from lightning_labs.runtime.overrides import parse_override

HParam = bool | int | float | str


def _value(text: str) -> HParam:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def run_hparams(cfg: DictConfig, overrides: list[str]) -> dict[str, HParam]:
    """What distinguishes runs: model, data, optimizer, batch, epochs, seed and every override."""
    params: dict[str, HParam] = {
        "model": str(cfg.model.get("name", cfg.model.net._target_)),
        "data": str(cfg.data._target_).rsplit(".", 1)[-1],
        "optimizer": str(cfg.optimizer._target_).rsplit(".", 1)[-1],
        "lr": float(cfg.optimizer.lr),
        "scheduler": str(cfg.scheduler._target_).rsplit(".", 1)[-1] if cfg.get("scheduler") else "none",
        "batch_size": int(cfg.data.batch_size),
        "max_epochs": -1 if cfg.trainer.get("max_epochs") is None else int(cfg.trainer.max_epochs),
        "seed": -1 if cfg.get("seed") is None else int(cfg.seed),
    }
    for override in overrides:
        key, value = parse_override(override)
        params[key] = _value(value)
    return params


def log_hparams(trainer: Any, params: Mapping[str, HParam], metrics: Mapping[str, float]) -> None:
    """Write the HParams summary; TensorBoard reads the metrics' values from their scalar curves.

    These are the three summaries Lightning's ``TensorBoardLogger.log_hyperparams(params,
    metrics)`` writes, through the same file writer, without its logging of every metric once
    more as a scalar: that would add a point (an epoch's mean after the last step's value) to
    each curve the run already drew.
    """
    writer = summary_writer(trainer)
    if writer is None or not metrics:
        return
    experiment, start, end = hparams(dict(params), dict(metrics))
    file_writer = writer._get_file_writer()  # reopened if testing closed it (Lightning does the same)
    for summary in (experiment, start, end):
        file_writer.add_summary(summary)
    writer.flush()
