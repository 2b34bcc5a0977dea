"""Predicting with a checkpoint: your own image files, or samples of the checkpoint's own data.

* ``image=PATH``: each file is prepared exactly as at evaluation (the data's ``eval_transform``:
  colour mode, size, normalisation, rebuilt from the checkpoint); the top-k classes with their
  softmax probabilities go to ``predictions.json``. Pictures of another colour mode or size than
  the training images are converted, and one log line says so.
* ``split=test|val`` (the default without ``image``): ``count`` samples drawn with ``seed`` from
  that split of the data rebuilt from the checkpoint, through its evaluation loader (the same
  preprocessing as the trained network was tested with), so predicted and true labels can be
  compared; ``predictions.png`` shows them captioned "predicted / true".

Both write ``predictions.csv`` in the run directory: ``index,image,predicted,probability,label,correct``,
the index in the split (``split=``) or in the list of files (``image=``, whose label and correct
are empty).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rich
import rich.markup
import rich.table
import torch
from omegaconf import DictConfig
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Subset

from lightning_labs.callbacks.writer import denormalize
from lightning_labs.checkpoints.data_config import typed_data_keys
from lightning_labs.checkpoints.restore import data_from_checkpoint, load_checkpoint, model_from_checkpoint
from lightning_labs.data import ClassificationData
from lightning_labs.data.base import class_labels
from lightning_labs.inference.pictures import prediction_grid, save_png
from lightning_labs.models import check_net_fits_data
from lightning_labs.runtime.config import to_plain
from lightning_labs.runtime.console import print_rich
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)

SPLITS = ("test", "val")
CSV_COLUMNS = ("index", "image", "predicted", "probability", "label", "correct")
PICTURED = 40  # samples drawn in predictions.png at most: the labs' 4 x 10 grid (more is slow and unreadable)
GRID_COLUMNS = 10


@dataclass(frozen=True)
class Restored:
    """A checkpoint's network (on the CPU, in eval mode), its data rebuilt, and its class names."""

    net: nn.Module
    datamodule: ClassificationData
    names: list[str]


def restore(cfg: DictConfig) -> Restored:
    """The network and data of ``cfg.ckpt_path``, the data changed as ``cfg.data`` asks."""
    checkpoint = load_checkpoint(cfg.ckpt_path, trusted=cfg.trust_checkpoint)
    model = model_from_checkpoint(checkpoint)
    datamodule = data_from_checkpoint(checkpoint, to_plain(cfg.get("data")), typed_data_keys())
    num_classes = int(model.hparams["num_classes"])
    check_net_fits_data(model.net, datamodule.input_shape, num_classes)
    net = model.net.cpu().eval()
    return Restored(net, datamodule, class_labels(datamodule, num_classes))


def at_least_one(**values: int) -> None:
    """Refuse a count, size or k below 1, naming the setting."""
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """One line per prediction, columns :data:`CSV_COLUMNS` (a missing value is left empty)."""
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


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
    """Top-k classes of each image in ``cfg.image``; also written to ``predictions.json`` and ``.csv``."""
    if cfg.get("split") is not None:
        raise ValueError(
            f"image={cfg.image} and split={cfg.split} were both given: image= classifies your own "
            "image files, split=test|val draws samples of the checkpoint's data. Give one of them."
        )
    topk, batch_size = int(cfg.topk), int(cfg.batch_size)
    at_least_one(topk=topk, batch_size=batch_size)
    files = image_files(Path(cfg.image))  # a wrong path fails before the checkpoint is read
    restored = restore(cfg)
    net, datamodule, names = restored.net, restored.datamodule, restored.names
    k = min(topk, len(names))
    if k < topk:
        log.info("topk=%d, but the model knows %d classes: showing %d", topk, len(names), k)

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
    rows = [
        {
            "index": i,
            "image": p["image"],
            "predicted": p["top"][0]["class"],
            "probability": p["top"][0]["probability"],
        }
        for i, p in enumerate(predictions)
    ]
    write_csv(rows, output_dir / "predictions.csv")
    log.info(
        "Predictions for %d image(s) written to %s and predictions.csv",
        len(predictions),
        output_dir / "predictions.json",
    )
    return predictions


def print_predictions(predictions: list[dict[str, Any]]) -> None:
    """One table per image: rank, class and probability."""
    for prediction in predictions:
        print_rich(f"[bold]{rich.markup.escape(prediction['image'])}[/bold]")
        table = rich.table.Table()
        table.add_column("#", justify="right", style="dim")
        table.add_column("class", style="cyan")
        table.add_column("probability", justify="right")
        for rank, entry in enumerate(prediction["top"], start=1):
            table.add_row(str(rank), rich.markup.escape(entry["class"]), f"{entry['probability']:.4f}")
        print_rich(table)


@dataclass(frozen=True)
class SamplePrediction:
    """One sample of a split: its index there, the predicted class, its probability and the true class."""

    index: int
    predicted: int
    probability: float
    label: int

    @property
    def correct(self) -> bool:
        return self.predicted == self.label


@dataclass(frozen=True)
class SplitPredictions:
    """What ``predict split=...`` found: the samples in index order, and what they were drawn from."""

    split: str
    seed: int
    split_size: int
    names: list[str]
    samples: list[SamplePrediction]

    @property
    def correct(self) -> int:
        return sum(sample.correct for sample in self.samples)


def evaluation_loader(datamodule: ClassificationData, split: str) -> DataLoader:
    """The evaluation loader of ``split`` (``test`` or ``val``), its files read now."""
    if split not in SPLITS:
        raise ValueError(f"split={split}: choose {' or '.join(SPLITS)} (or image=PATH for your own files)")
    datamodule.setup("test" if split == "test" else "validate")
    return datamodule.test_dataloader() if split == "test" else datamodule.val_dataloader()


def draw_indices(size: int, count: int, seed: int, split: str) -> list[int]:
    """``count`` distinct indices of a split of ``size`` samples, drawn with ``seed``, in order."""
    if count >= size:
        log.info("count=%d, but the %s split holds %d samples: predicting all of them", count, split, size)
        return list(range(size))
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed))
    return sorted(order[:count].tolist())


def predict_split(cfg: DictConfig) -> SplitPredictions:
    """``cfg.count`` samples of the checkpoint's ``cfg.split``, predicted; written as CSV and PNG."""
    count, batch_size, seed = int(cfg.count), int(cfg.batch_size), int(cfg.seed)
    at_least_one(count=count, batch_size=batch_size)
    restored = restore(cfg)
    datamodule, split = restored.datamodule, str(cfg.split or "test")
    loader = evaluation_loader(datamodule, split)
    size = len(loader.dataset)
    indices = draw_indices(size, count, seed, split)
    chosen = DataLoader(Subset(loader.dataset, indices), batch_size=batch_size, collate_fn=loader.collate_fn)
    samples, pictured = [], []
    for batch in chosen:
        images, labels = datamodule.on_after_batch_transfer(batch, 0)  # the evaluation preprocessing
        if len(labels) != min(batch_size, len(indices) - len(samples)):
            raise ValueError(f"An image of the {split} split could not be read (see the warning above)")
        with torch.inference_mode():
            top = restored.net(images).float().softmax(dim=1).max(dim=1)
        for value, predicted, label in zip(top.values, top.indices, labels, strict=True):
            index = indices[len(samples)]
            samples.append(SamplePrediction(index, int(predicted), float(value), int(label)))
        pictured.append(images[: PICTURED - sum(len(p) for p in pictured)])
    result = SplitPredictions(split, seed, size, restored.names, samples)
    write_split_outputs(result, torch.cat(pictured), datamodule, Path(cfg.paths.output_dir))
    return result


def write_split_outputs(
    result: SplitPredictions, images: torch.Tensor, datamodule: ClassificationData, output_dir: Path
) -> None:
    """``predictions.csv`` (every sample) and ``predictions.png`` (the first :data:`PICTURED`)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    names = result.names
    rows = [
        {
            "index": s.index,
            "predicted": names[s.predicted],
            "probability": s.probability,
            "label": names[s.label],
            "correct": s.correct,
        }
        for s in result.samples
    ]
    csv_path = write_csv(rows, output_dir / "predictions.csv")
    shown = result.samples[: len(images)]
    figure = prediction_grid(
        denormalize(images, datamodule.mean, datamodule.std),
        [s.label for s in shown],
        [s.predicted for s in shown],
        names,
        GRID_COLUMNS,
        title=f"{len(shown)} {result.split} samples (seed {result.seed})",
    )
    png_path = save_png(figure, output_dir / "predictions.png")
    if len(shown) < len(result.samples):
        log.info("predictions.png shows the first %d of the %d samples", len(shown), len(result.samples))
    log.info("Wrote %s and %s", csv_path, png_path)


def print_split_predictions(result: SplitPredictions) -> None:
    """One table (index in the split, predicted, probability, true class, right/wrong), then the accuracy."""
    total = len(result.samples)
    table = rich.table.Table(
        title=f"{total} of the {result.split_size} {result.split} samples (seed {result.seed})"
    )
    table.add_column("index", justify="right", style="dim")
    table.add_column("predicted", style="cyan")
    table.add_column("probability", justify="right")
    table.add_column("true")
    table.add_column("result")
    for sample in result.samples:
        table.add_row(
            str(sample.index),
            rich.markup.escape(result.names[sample.predicted]),
            f"{sample.probability:.4f}",
            rich.markup.escape(result.names[sample.label]),
            "[green]right[/green]" if sample.correct else "[bold red]wrong[/bold red]",
        )
    print_rich(table)
    print_rich(
        f"Accuracy on these {total} {result.split} samples: {result.correct}/{total} = "
        f"{100 * result.correct / total:.2f}%"
    )
