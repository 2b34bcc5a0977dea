"""Timing a network for the benchmark command: from a checkpoint or a model config, on every device,
batch size and variant (eager fp32, channels_last, bf16 and fp16 autocast, torch.compile, ONNX
Runtime; those that cannot run here are skipped with a one-line reason). Writes benchmark.json
(with every timed call), benchmark.csv and latency.png (the run-to-run spread).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rich
import torch
from omegaconf import DictConfig
from torch import nn

from lightning_labs.checkpoints.data_config import data_overrides, typed_data_keys
from lightning_labs.checkpoints.restore import data_from_checkpoint, load_checkpoint, model_from_checkpoint
from lightning_labs.inference.latency import Measurement, Skipped, measure_latency
from lightning_labs.inference.latency_report import results_table, write_results
from lightning_labs.models import check_net_fits_data
from lightning_labs.runtime.config import to_plain
from lightning_labs.runtime.logs import get_logger
from lightning_labs.training.assembly import data_facts, input_shape_of, network

log = get_logger(__name__)


def typed_data(data: dict[str, Any]) -> dict[str, Any] | None:
    """What of ``data`` the command line gives: all of it after ``data=<name>``, else the ``data.*`` typed.

    The ``data`` default (MNIST) sizes networks built from a config, not a checkpoint's.
    """
    keys = data_overrides() or []
    if "data" in keys:
        return data
    typed = {key.split(".")[1] for key in keys}
    return {key: value for key, value in data.items() if key in typed} or None


def checkpoint_network(cfg: DictConfig) -> tuple[nn.Module, list[int], str]:
    """The checkpoint's network and the input it was trained on, or the one asked for.

    ``input_shape=`` wins; else ``data=``/``data.*`` typed on the command line change the
    checkpoint's data config (see :func:`typed_data`).
    """
    checkpoint = load_checkpoint(cfg.ckpt_path, trusted=cfg.trust_checkpoint)
    model = model_from_checkpoint(checkpoint)
    input_shape = list(model.hparams["input_shape"])
    if cfg.get("input_shape"):
        input_shape = list(cfg.input_shape)
    elif given := typed_data(to_plain(cfg.data)):
        input_shape = list(data_from_checkpoint(checkpoint, given, typed_data_keys()).input_shape)
    check_net_fits_data(model.net, input_shape, int(model.hparams["num_classes"]))
    return model.net, input_shape, str(cfg.ckpt_path)


def network_to_time(cfg: DictConfig) -> tuple[nn.Module, list[int], str]:
    """The network to time, its input shape and a name: from the checkpoint, or built from the config."""
    if cfg.get("ckpt_path"):
        return checkpoint_network(cfg)
    facts = data_facts(cfg)
    name = cfg.model.get("name", cfg.model.net._target_)
    return network(to_plain(cfg.model), facts), input_shape_of(facts), name


def benchmark(cfg: DictConfig) -> list[Measurement | Skipped]:
    """Measure, print as results arrive, and write the result files; returns the results."""
    if cfg.get("cpu_threads"):
        torch.set_num_threads(cfg.cpu_threads)
    net, input_shape, name = network_to_time(cfg)
    log.info("Timing %s on input %s", name, "x".join(map(str, input_shape)))

    def report(result: Measurement | Skipped) -> None:
        if isinstance(result, Skipped):
            log.info("%s %s: skipped (%s)", result.device, result.variant, result.reason)
        else:
            log.info(
                "%s %s batch %d: %.3f ms (p90 %.3f), %s img/s%s",
                result.device,
                result.variant,
                result.batch_size,
                result.stats["mean_ms"],
                result.stats["p90_ms"],
                f"{result.stats['images_per_s']:,.0f}",
                "" if result.agrees else f"  OUTPUT DIFFERS ({result.max_rel_diff:.1e})",
            )

    results = measure_latency(
        net,
        input_shape,
        devices=cfg.get("devices"),
        batch_sizes=list(cfg.batch_sizes),
        variants=list(cfg.variants),
        warmup=cfg.warmup,
        iterations=cfg.iterations,
        time_budget_s=cfg.get("time_budget_s"),
        on_result=report,
    )
    about: dict[str, Any] = {"model": name, "input_shape": input_shape, "config": to_plain(cfg)}
    paths = write_results(results, Path(cfg.paths.output_dir), about)
    rich.print(results_table(results, title=f"Inference latency: {name}"))
    log.info("Wrote %s", ", ".join(str(p) for p in paths.values()))
    return results
