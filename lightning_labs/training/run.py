"""Training a classifier from a composed config: data, model and trainer built and checked against
each other, fit (or resume), then the best checkpoint tested. ``python -m lightning_labs.train``
calls :func:`run`; tests and notebooks call :func:`train`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, open_dict

from lightning_labs.callbacks import LogEveryEpoch, UnfreezeAtEpoch
from lightning_labs.callbacks.resume import KeepBestAcrossResume
from lightning_labs.checkpoints.atomic_io import AtomicCheckpointIO
from lightning_labs.checkpoints.restore import load_checkpoint
from lightning_labs.checkpoints.resume import check_checkpoint_fits, resolve_checkpoint_path
from lightning_labs.models.facts import model_facts
from lightning_labs.runtime.config import instantiate, to_plain
from lightning_labs.runtime.console import print_config_tree, print_metrics
from lightning_labs.runtime.environment import run_info
from lightning_labs.runtime.launch_checks import check_accelerator, check_launch
from lightning_labs.runtime.logs import get_logger
from lightning_labs.runtime.requeue import requeued_checkpoint, save_then_requeue
from lightning_labs.training.assembly import model_arguments
from lightning_labs.training.config_checks import check_values
from lightning_labs.training.hparams import log_hparams, run_hparams
from lightning_labs.training.lr_scaling import optimizer_arguments, scale_learning_rate

log = get_logger(__name__)

# Callbacks whose only output is a logger's (Lightning refuses them with logger=False).
NEEDS_LOGGER = (LearningRateMonitor,)


def instantiate_all(group: DictConfig | None) -> list[Any]:
    """Build each named entry of a dict group (callbacks, logger); null entries are switched off."""
    return [instantiate(entry) for entry in (group or {}).values() if entry]


def build(cfg: DictConfig) -> dict[str, Any]:
    """Data, model, callbacks, loggers and trainer for a run, checked against each other.

    The trainer comes before the model: the number of processes sets the global batch, to which
    ``optimizer.scale_lr`` scales the learning rate.
    """
    check_values(cfg)
    check_accelerator(cfg.trainer)
    check_launch(cfg)
    datamodule = instantiate(cfg.data, _convert_="all")
    callbacks = [*instantiate_all(cfg.get("callbacks")), LogEveryEpoch()]
    if cfg.model.get("unfreeze_at_epoch") is not None:
        callbacks.append(
            UnfreezeAtEpoch(cfg.model.unfreeze_at_epoch, cfg.model.get("unfreeze_lr_factor", 0.1))
        )
    if cfg.get("ckpt_path"):
        callbacks.append(KeepBestAcrossResume())
    loggers = instantiate_all(cfg.get("logger"))
    if not loggers:  # logger=none: callbacks that only feed a logger would refuse to start
        unused = [c for c in callbacks if isinstance(c, NEEDS_LOGGER)]
        if unused:
            log.info("No logger: leaving out %s", ", ".join(type(c).__name__ for c in unused))
        callbacks = [c for c in callbacks if not isinstance(c, NEEDS_LOGGER)]
    trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )
    scale_learning_rate(cfg, datamodule.batch_size, trainer)
    model = instantiate(
        cfg.module,
        **model_arguments(to_plain(cfg.model), datamodule.facts),
        num_classes=datamodule.num_classes,
        input_shape=list(datamodule.input_shape),
        optimizer=optimizer_arguments(cfg.optimizer),
        scheduler=to_plain(cfg.get("scheduler")) or None,
        _recursive_=False,
        _convert_="all",
    )
    model.run_config = to_plain(cfg)
    return {"datamodule": datamodule, "model": model, "trainer": trainer}


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit (resuming from ``ckpt_path`` if given), then test the best checkpoint.

    Returns the final metrics (also written to ``metrics.json`` in the run directory) and the
    objects of the run, which tests and notebooks can inspect.
    """
    started = time.perf_counter()
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision(cfg.get("float32_matmul_precision", "highest"))
    weights_only = not cfg.get("trust_checkpoint", False)
    output_dir = Path(cfg.paths.output_dir)
    requeued = requeued_checkpoint(output_dir)
    if requeued is not None and not cfg.get("ckpt_path"):
        log.info("Requeued job: resuming from its own %s", requeued)
        with open_dict(cfg):
            cfg.ckpt_path = str(requeued)
    ckpt_path, checkpoint = None, None
    if cfg.get("ckpt_path"):  # a bad file fails now, with our message, not after set-up
        run = {group: to_plain(cfg.get(group)) for group in ("model", "data", "optimizer", "scheduler")}
        ckpt_path = resolve_checkpoint_path(str(cfg.ckpt_path), output_dir, Path(cfg.paths.log_dir), run)
        checkpoint = load_checkpoint(ckpt_path, trusted=not weights_only)
        log.info("Resuming from %s", ckpt_path)
    write_json(output_dir / "environment.json", run_info(cfg.get("seed")))
    objects = build(cfg)
    trainer: L.Trainer = objects["trainer"]
    model, datamodule = objects["model"], objects["datamodule"]
    if checkpoint is not None:
        check_checkpoint_fits(checkpoint, model, ckpt_path)
    size = model_size(model)

    with save_then_requeue():
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=weights_only)
    check_trained(trainer)
    metrics = epoch_metrics(trainer)
    # Read before testing: loading the best checkpoint restores the callback's state saved in it.
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""

    if cfg.get("test"):
        if best:
            log.info("Testing the best checkpoint: %s%s", best, best_score(trainer.checkpoint_callback))
        else:
            log.warning("No best checkpoint was saved: testing the weights at the end of training")
        trainer.test(
            model, datamodule=datamodule, ckpt_path=best or None, weights_only=weights_only, verbose=False
        )
        metrics |= epoch_metrics(trainer)

    overrides = command_line_overrides()
    log_hparams(trainer, run_hparams(cfg, overrides), metrics)
    summary = {
        "metrics": metrics | size,
        "model": cfg.model.get("name", cfg.model.net._target_),
        "data": datamodule.name,
        "overrides": overrides,
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "best_checkpoint": best or None,
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_json(output_dir / "metrics.json", summary)
    return metrics, objects


def model_size(model: L.LightningModule) -> dict[str, int]:
    """``model/params`` and ``model/macs`` (per image) for metrics.json, where ``compare`` tabulates them.

    Computed here, before training moves the network to its device, whether or not the
    model_facts callback prints its table: one forward pass of one image on the CPU.
    """
    facts = model_facts(model.net, model.hparams.input_shape, depth=1)
    return {"model/params": facts.params, "model/macs": facts.macs}


def best_score(callback: ModelCheckpoint) -> str:
    """`` (val/acc=0.9812)``: the score that made a checkpoint the best (empty without a monitor)."""
    if not callback.monitor or callback.best_model_score is None:
        return ""
    return f" ({callback.monitor}={float(callback.best_model_score):.4f})"


def check_trained(trainer: L.Trainer) -> None:
    """Stop a run that made no training step: testing its untrained network would report chance."""
    if trainer.global_step == 0:
        raise RuntimeError(
            "The run made no training step, so it was not tested: the accuracy of an untrained network "
            "means nothing. Check that the training split holds images and that "
            f"trainer.limit_train_batches (now {trainer.limit_train_batches}) is above 0."
        )


def command_line_overrides() -> list[str]:
    """The overrides this job was started with (a sweep's per-job choices included)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def epoch_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The trainer's latest metrics as floats, leaving out per-step duplicates of epoch values."""
    return {
        name.removesuffix("_epoch"): float(value)
        for name, value in trainer.callback_metrics.items()
        if not name.endswith("_step")
    }


@rank_zero_only
def write_json(path: Path, content: dict[str, Any]) -> None:
    """A run's facts for later reading (``metrics.json``, ``environment.json``), by rank 0 only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2) + "\n")


def run(cfg: DictConfig) -> float | None:
    """The train command: the config tree, the run, the final metrics.

    Returns ``optimized_metric`` of the final metrics, what a sweeper (Optuna, Ax) optimises; a
    run without it returns None and says so, rather than hand the sweeper another metric.
    """
    output_dir = Path(cfg.paths.output_dir)
    print_config_tree(cfg, save_to=output_dir / "config_tree.log")
    log.info("Run directory: %s", output_dir)
    metrics, _ = train(cfg)
    print_metrics("Final metrics", metrics)
    log.info("Outputs in %s", output_dir)
    name = cfg.get("optimized_metric")
    if name and name not in metrics:
        log.warning(
            "optimized_metric=%s is not among this run's metrics (%s): the sweeper gets None.",
            name,
            ", ".join(sorted(metrics)),
        )
    return metrics.get(name) if name else None
