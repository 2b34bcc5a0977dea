"""Classifying image files with a checkpoint, each prepared exactly as at evaluation.

The data's ``eval_transform`` (colour mode, size, normalisation) is rebuilt from the checkpoint,
and the top-k classes with their softmax probabilities are written to ``predictions.json`` in
the run directory. Pictures of another colour mode or size than the training images are
converted, and one log line says so.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import rich
import rich.markup
import rich.table
import torch
from omegaconf import DictConfig
from PIL import Image

from lightning_labs.checkpoints.data_config import typed_data_keys
from lightning_labs.checkpoints.restore import data_from_checkpoint, load_checkpoint, model_from_checkpoint
from lightning_labs.data import ClassificationData
from lightning_labs.data.base import class_labels
from lightning_labs.models import check_net_fits_data
from lightning_labs.runtime.config import to_plain
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)


def image_files(path: Path) -> list[Path]:
    """``path`` itself, or the image files in the folder ``path`` (by extension), sorted."""
    if path.is_dir():
        extensions = {ext.lower() for ext in Image.registered_extensions()}
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in extensions)
        if not files:
            raise FileNotFoundError(f"No image files in the folder {path} (image=...)")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"No image file or folder at {path}: check image=...")
    return [path]


# How PIL's colour modes are named to users; the network's input is grey (1 channel) or RGB (3).
MODE_NAMES = {"1": "black-and-white", "L": "grey", "LA": "grey+alpha", "P": "palette", "I;16": "16-bit grey"}
CHANNEL_NAMES = {1: "grey", 3: "RGB"}
KINDS_SHOWN = 5  # kinds of converted picture named in the log line


def picture(mode: str, width: int, height: int) -> str:
    """A picture's colour mode and size as users read it, e.g. ``grey 28x28``."""
    return f"{MODE_NAMES.get(mode, mode)} {width}x{height}"


def network_picture(input_shape: tuple[int, int, int]) -> str:
    """The picture the network was trained on, e.g. ``RGB 32x32`` for 3x32x32."""
    channels, height, width = input_shape
    return f"{CHANNEL_NAMES.get(channels, f'{channels}-channel')} {width}x{height}"


def log_conversions(sources: list[str], input_shape: tuple[int, int, int]) -> None:
    """Say once how many pictures were converted to the network's input, from what (:func:`picture`)."""
    target = network_picture(input_shape)
    converted = Counter(source for source in sources if source != target)
    if not converted:
        return
    kinds = [f"{source} (x{n})" if n > 1 else source for source, n in sorted(converted.items())]
    more = f" and {len(kinds) - KINDS_SHOWN} more" if len(kinds) > KINDS_SHOWN else ""
    log.warning(
        "Converted %d image(s) from %s to %s to match training (%s)",
        converted.total(),
        ", ".join(kinds[:KINDS_SHOWN]) + more,
        target,
        "x".join(str(n) for n in input_shape),
    )


def read_image(path: Path, datamodule: ClassificationData) -> tuple[torch.Tensor, str]:
    """The picture in ``path`` as the network sees it at evaluation, and what it was (:func:`picture`)."""
    unreadable = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
    try:
        image = Image.open(path)
    except unreadable as err:
        raise ValueError(f"Could not read {path} as an image: {err}") from None
    with image:
        try:
            image.load()  # decode now, so that a truncated file fails here, with its name
        except unreadable as err:
            raise ValueError(f"Could not read {path} as an image: {err}") from None
        return datamodule.eval_transform(image), picture(image.mode, *image.size)


def predict(cfg: DictConfig) -> list[dict[str, Any]]:
    """Top-k classes of each image in ``cfg.image``; also written to ``predictions.json``."""
    topk, batch_size = int(cfg.topk), int(cfg.batch_size)
    for name, value in (("topk", topk), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    files = image_files(Path(cfg.image))  # a wrong path fails before the checkpoint is read
    checkpoint = load_checkpoint(cfg.ckpt_path, trusted=cfg.trust_checkpoint)
    model = model_from_checkpoint(checkpoint)
    datamodule = data_from_checkpoint(checkpoint, to_plain(cfg.get("data")), typed_data_keys())
    num_classes = int(model.hparams["num_classes"])
    check_net_fits_data(model.net, datamodule.input_shape, num_classes)
    names = class_labels(datamodule, num_classes)
    k = min(topk, num_classes)
    if k < topk:
        log.info("topk=%d, but the model knows %d classes: showing %d", topk, num_classes, k)

    net = model.net.cpu().eval()
    predictions, sources = [], []
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        read = [read_image(path, datamodule) for path in chunk]
        sources += [source for _, source in read]
        images = torch.stack([image for image, _ in read])
        with torch.inference_mode():
            probabilities = net(images).float().softmax(dim=1)
        top = probabilities.topk(k, dim=1)
        for path, values, indices in zip(chunk, top.values.tolist(), top.indices.tolist(), strict=True):
            predictions.append(
                {
                    "image": str(path),
                    "top": [
                        {"class": names[i], "index": i, "probability": p}
                        for p, i in zip(values, indices, strict=True)
                    ],
                }
            )

    log_conversions(sources, datamodule.input_shape)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = {"checkpoint": str(cfg.ckpt_path), "topk": k, "predictions": predictions}
    (output_dir / "predictions.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("Predictions for %d image(s) written to %s", len(predictions), output_dir / "predictions.json")
    return predictions


def print_predictions(predictions: list[dict[str, Any]]) -> None:
    """One table per image: rank, class and probability."""
    for prediction in predictions:
        rich.print(f"[bold]{rich.markup.escape(prediction['image'])}[/bold]")
        table = rich.table.Table()
        table.add_column("#", justify="right", style="dim")
        table.add_column("class", style="cyan")
        table.add_column("probability", justify="right")
        for rank, entry in enumerate(prediction["top"], start=1):
            table.add_row(str(rank), rich.markup.escape(entry["class"]), f"{entry['probability']:.4f}")
        rich.print(table)
