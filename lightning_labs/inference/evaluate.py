"""Testing a checkpoint on its own data (or on the data settings given), with the run it came from.

The data is the checkpoint's own, with only the settings given changed (see
:mod:`lightning_labs.checkpoints.data_config`), and a split unlike training's is said so. Beside
``eval.json`` go the test split's confusion matrix (``confusion_matrix.png``) and the accuracy of
each true class read from it (``per_class_accuracy.csv``): an average hides the one class a
network keeps getting wrong.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rich
import rich.markup
import rich.table
import torch
from lightning.pytorch.callbacks import RichProgressBar
from omegaconf import DictConfig

from lightning_labs.callbacks.figures import ConfusionMatrixFigure
from lightning_labs.checkpoints.data_config import typed_data_keys
from lightning_labs.checkpoints.restore import data_from_checkpoint, load_checkpoint, model_from_checkpoint
from lightning_labs.data.base import class_labels
from lightning_labs.inference.pictures import confusion_figure, save_png
from lightning_labs.models import check_net_fits_data
from lightning_labs.runtime.config import instantiate, to_plain
from lightning_labs.runtime.console import print_rich
from lightning_labs.runtime.launch_checks import check_accelerator
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class ClassScore:
    """How one true class fared: its test images, and how many of them were predicted right."""

    index: int
    name: str
    images: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        """correct / images; None for a class the split has no image of (not 0: nothing was wrong)."""
        return self.correct / self.images if self.images else None


@dataclass(frozen=True)
class Evaluation:
    """What ``eval`` found: the test metrics, each class's score, and the files written."""

    metrics: dict[str, float]
    classes: list[ClassScore]
    files: list[Path]


def class_scores(counts: torch.Tensor, names: list[str]) -> list[ClassScore]:
    """Per true class (the rows of a confusion matrix): its images and the diagonal count."""
    return [
        ClassScore(index, name, int(row.sum()), int(row[index]))
        for index, (name, row) in enumerate(zip(names, counts.long(), strict=True))
    ]


def write_class_scores(scores: list[ClassScore], path: Path) -> Path:
    """``class_index,class,images,correct,accuracy`` per class (accuracy empty for a class without images)."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["class_index", "class", "images", "correct", "accuracy"])
        for score in scores:
            accuracy = "" if score.accuracy is None else f"{score.accuracy:.6f}"
            writer.writerow([score.index, score.name, score.images, score.correct, accuracy])
    return path


def percent(correct: int, images: int) -> str:
    """``98.50%``, or a dash for no images."""
    return f"{100 * correct / images:.2f}%" if images else "-"


def print_class_scores(scores: list[ClassScore], title: str = "Accuracy per class (test split)") -> None:
    """A table of each class's images, correct predictions and accuracy, with the total last."""
    table = rich.table.Table(title=title)
    table.add_column("#", justify="right", style="dim")
    table.add_column("class", style="cyan")
    table.add_column("images", justify="right")
    table.add_column("correct", justify="right")
    table.add_column("accuracy", justify="right")
    for score in scores:
        row = [str(score.images), str(score.correct), percent(score.correct, score.images)]
        table.add_row(str(score.index), rich.markup.escape(score.name), *row)
    images, correct = sum(s.images for s in scores), sum(s.correct for s in scores)
    table.add_section()
    table.add_row("", "all", str(images), str(correct), percent(correct, images), style="bold")
    print_rich(table)


def training_environment(ckpt_path: Path) -> dict[str, Any] | None:
    """The ``environment.json`` of the run that wrote the checkpoint (machine, versions, seed, commit)."""
    path = ckpt_path.resolve().parent.parent / "environment.json"
    if not path.is_file():
        return None
    environment = json.loads(path.read_text())
    log.info(
        "Trained on %s (%s) with torch %s, seed %s, commit %s",
        environment.get("hostname"),
        environment.get("gpu") or environment.get("cpu"),
        environment.get("torch"),
        environment.get("seed"),
        environment.get("git_commit"),
    )
    return environment


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test metrics of ``cfg.ckpt_path`` on the test split (see :func:`run_evaluation`)."""
    return run_evaluation(cfg).metrics


def run_evaluation(cfg: DictConfig) -> Evaluation:
    """Test ``cfg.ckpt_path``; write ``eval.json``, the per-class CSV and the confusion matrix beside it."""
    check_accelerator(cfg.trainer)
    checkpoint = load_checkpoint(cfg.ckpt_path, trusted=cfg.trust_checkpoint)
    model = model_from_checkpoint(checkpoint)
    datamodule = data_from_checkpoint(checkpoint, to_plain(cfg.get("data")), typed_data_keys())
    check_net_fits_data(model.net, datamodule.input_shape, datamodule.num_classes)
    progress = [RichProgressBar()] if cfg.trainer.get("enable_progress_bar", True) else []
    confusion = ConfusionMatrixFigure("test")  # (no logger: it only counts)
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[*progress, confusion])
    results = trainer.test(model, datamodule=datamodule, verbose=False)[0]
    metrics = {name: float(value) for name, value in results.items()}
    differences = datamodule.differences_from_training()
    for difference in differences:
        log.warning(
            "Not the data of the checkpoint's run: %s. These metrics do not compare with its own.", difference
        )
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "checkpoint": str(cfg.ckpt_path),
        "data": datamodule.name,
        "data_identity": datamodule.identity(),
        "same_data_as_training": None if datamodule.trained_identity is None else not differences,
        "metrics": metrics,
        "trained_with": training_environment(Path(cfg.ckpt_path)),
    }
    (output_dir / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")
    names = class_labels(datamodule, datamodule.num_classes)
    scores = class_scores(confusion.counts, names)
    figure = confusion_figure(
        confusion.counts, names, annotate=len(names) <= confusion.max_annotated, split="test"
    )
    files = [
        output_dir / "eval.json",
        write_class_scores(scores, output_dir / "per_class_accuracy.csv"),
        save_png(figure, output_dir / "confusion_matrix.png"),
    ]
    for path in files:
        log.info("Wrote %s", path)
    return Evaluation(metrics, scores, files)
