"""Timing a network for the benchmark command: from a checkpoint or a model config, on every device,
batch size and variant (eager fp32, channels_last, bf16 and fp16 autocast, torch.compile, ONNX
Runtime; those that cannot run here are skipped with a one-line reason). Writes benchmark.json
(with every timed call), benchmark.csv and latency.png (the run-to-run spread).

With ``image=PATH`` the input is that file, prepared as ``predict`` prepares it, and the command
also times the preparation itself (on the CPU, where it runs), the copy to each accelerator, and
prints the sum per image next to the class the network gives it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import rich
import rich.markup
import rich.table
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from lightning_labs.checkpoints.data_config import data_overrides, typed_data_keys
from lightning_labs.checkpoints.restore import data_from_checkpoint, load_checkpoint, model_from_checkpoint
from lightning_labs.data import ClassificationData
from lightning_labs.data.base import class_labels
from lightning_labs.inference.latency import Measurement, Skipped, latency_stats, measure_latency, time_calls
from lightning_labs.inference.latency_report import STATS, results_table, write_results
from lightning_labs.inference.predict import image_files, log_conversions, read_image
from lightning_labs.models import check_net_fits_data
from lightning_labs.runtime.config import to_plain
from lightning_labs.runtime.console import print_rich
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
    return network(to_plain(cfg.model), facts), input_shape_of(facts), model_name(cfg)


def model_name(cfg: DictConfig) -> str:
    return cfg.model.get("name", cfg.model.net._target_)


def image_file(cfg: DictConfig) -> Path:
    """The one image file of ``image=``; a folder, or ``input_shape=`` next to it, is refused."""
    if cfg.get("input_shape"):
        raise ValueError(
            "image= and input_shape= both set the input: the image is prepared by the data's "
            "evaluation transform, so drop input_shape= (or change the data with data.<key>=...)"
        )
    path = Path(cfg.image)
    if path.is_dir():
        raise ValueError(
            f"image= takes one image file, and {path} is a folder: pick one file in it "
            "(python -m lightning_labs.predict classifies a whole folder)"
        )
    return image_files(path)[0]


def image_network(cfg: DictConfig) -> tuple[nn.Module, ClassificationData, str]:
    """The network to time on an image, the data whose evaluation transform prepares it, and a name.

    The data is the checkpoint's, changed by ``data=``/``data.*`` as in ``predict``; without a
    checkpoint it is ``data=`` itself (MNIST by default), which the network is built to fit.
    """
    if not cfg.get("ckpt_path"):
        return network(to_plain(cfg.model), data_facts(cfg)), instantiate(cfg.data), model_name(cfg)
    checkpoint = load_checkpoint(cfg.ckpt_path, trusted=cfg.trust_checkpoint)
    model = model_from_checkpoint(checkpoint)
    datamodule = data_from_checkpoint(checkpoint, typed_data(to_plain(cfg.data)), typed_data_keys())
    check_net_fits_data(model.net, datamodule.input_shape, int(model.hparams["num_classes"]))
    return model.net, datamodule, str(cfg.ckpt_path)


def timing(times_ms: list[float]) -> dict[str, Any]:
    """Per-call times of one image and their statistics, as the inference results hold them."""
    return {"times_ms": times_ms, "stats": latency_stats(times_ms, batch_size=1)}


def predicted_class(net: nn.Module, image: torch.Tensor, datamodule: ClassificationData) -> dict[str, Any]:
    """The class fp32 eager gives the prepared ``image`` on the CPU, with its softmax probability."""
    with torch.inference_mode():
        probabilities = net.cpu().eval()(image[None]).float().softmax(dim=1)[0]
    index = int(probabilities.argmax())
    name = class_labels(datamodule, len(probabilities))[index]
    return {"class": name, "index": index, "probability": float(probabilities[index])}


def image_totals(
    results: list[Measurement | Skipped], preprocess: dict[str, Any], copies: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Mean milliseconds per image, per device and variant: preparing + copying to the device + inference."""
    rows = []
    for result in results:
        if isinstance(result, Measurement):
            parts = {
                "preprocess_ms": preprocess["stats"]["mean_ms"],
                "copy_ms": copies[result.device]["stats"]["mean_ms"] if result.device in copies else 0.0,
                "inference_ms": result.stats["mean_ms"],
            }
            rows.append(
                {"device": result.device, "variant": result.variant, **parts, "total_ms": sum(parts.values())}
            )
    return rows


def time_image(cfg: DictConfig) -> tuple[nn.Module, torch.Tensor, str, dict[str, Any]]:
    """Read and prepare ``image=`` as at evaluation, timed on the CPU; its predicted class.

    Returns the network, the prepared image, the name to report and what goes into benchmark.json.
    """
    path = image_file(cfg)  # a wrong path fails before the checkpoint is read
    net, datamodule, name = image_network(cfg)
    image, source = read_image(path, datamodule)
    log_conversions([source], datamodule.input_shape)
    prepare = partial(read_image, datamodule=datamodule)
    times = time_calls(prepare, path, "cpu", cfg.warmup, cfg.iterations, cfg.get("time_budget_s"))
    about = {
        "file": str(path),
        "picture": source,
        "predicted": predicted_class(net, image, datamodule),
        "preprocess": {"device": "cpu", "threads": torch.get_num_threads(), **timing(times)},
    }
    return net, image, name, about


def time_copies(image: torch.Tensor, results: list[Measurement | Skipped], cfg: DictConfig) -> dict[str, Any]:
    """Copying the prepared image (batch 1) to each accelerator that ran; the CPU needs no copy."""
    devices = sorted({r.device for r in results if isinstance(r, Measurement) and r.device != "cpu"})
    timings = {}
    for device in devices:
        copy = partial(torch.Tensor.to, device=device)
        timings[device] = timing(
            time_calls(copy, image[None], device, cfg.warmup, cfg.iterations, cfg.get("time_budget_s"))
        )
    return timings


def benchmark(cfg: DictConfig) -> list[Measurement | Skipped]:
    """Measure, print as results arrive, and write the result files; returns the results."""
    if cfg.get("cpu_threads"):
        torch.set_num_threads(cfg.cpu_threads)
    about: dict[str, Any] = {}
    if cfg.get("image"):
        net, image, name, about["image"] = time_image(cfg)
        input_shape, batch_sizes, example = list(image.shape), [1], image[None]
        log.info("Timing %s on one image, %s, at batch 1", name, about["image"]["file"])
    else:
        net, input_shape, name = network_to_time(cfg)
        batch_sizes, example = list(cfg.batch_sizes), None
        log.info("Timing %s on input %s", name, "x".join(map(str, input_shape)))

    results = measure_latency(
        net,
        input_shape,
        devices=cfg.get("devices"),
        batch_sizes=batch_sizes,
        variants=list(cfg.variants),
        warmup=cfg.warmup,
        iterations=cfg.iterations,
        time_budget_s=cfg.get("time_budget_s"),
        on_result=log_result,
        example=example,
    )
    if example is not None:
        about["image"]["copy_to_device"] = time_copies(image, results, cfg)
        about["image"]["totals_ms"] = image_totals(
            results, about["image"]["preprocess"], about["image"]["copy_to_device"]
        )
    about |= {"model": name, "input_shape": input_shape, "config": to_plain(cfg)}
    paths = write_results(results, Path(cfg.paths.output_dir), about)
    print_rich(results_table(results, title=f"Inference latency: {name}"))
    if example is not None:
        print_image_report(about["image"])
    log.info("Wrote %s", ", ".join(str(p) for p in paths.values()))
    return results


def log_result(result: Measurement | Skipped) -> None:
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


def print_image_report(report: dict[str, Any]) -> None:
    """The preparation's statistics, the sum per image for each device and variant, and the class."""
    file = rich.markup.escape(report["file"])
    stages = rich.table.Table(title=f"Preparing one image: {file}")
    for column in ("stage", "device", *(s.removesuffix("_ms") for s in STATS[:-1])):
        stages.add_column(column, justify="left" if column in ("stage", "device") else "right")
    named = [("read + transform", "cpu", report["preprocess"])]
    named += [("copy to device", device, copy) for device, copy in report["copy_to_device"].items()]
    for stage, device, times in named:
        stages.add_row(stage, device, *(f"{times['stats'][s]:.3f}" for s in STATS[:-1]))
    stages.caption = f"milliseconds per call, {len(report['preprocess']['times_ms'])} timed calls on the CPU"
    print_rich(stages)

    totals = rich.table.Table(title="One image, end to end (mean ms)")
    for column in ("device", "variant", "preprocess", "copy", "inference", "total"):
        totals.add_column(column, justify="left" if column in ("device", "variant") else "right")
    for row in report["totals_ms"]:
        ms = {key: f"{row[key]:.3f}" for key in ("preprocess_ms", "copy_ms", "inference_ms", "total_ms")}
        copy = "-" if row["device"] == "cpu" else ms["copy_ms"]  # the image is prepared on the CPU
        totals.add_row(
            row["device"], row["variant"], ms["preprocess_ms"], copy, ms["inference_ms"], ms["total_ms"]
        )
    totals.caption = "total = the sum of the means (percentiles do not add up); inference at batch 1"
    print_rich(totals)
    predicted = report["predicted"]
    print_rich(
        f"Predicted class of {file}: [bold]{rich.markup.escape(predicted['class'])}[/bold] "
        f"(index {predicted['index']}, probability {predicted['probability']:.4f})"
    )
