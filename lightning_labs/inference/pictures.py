"""The pictures of what a classifier predicts: a captioned image grid and a confusion matrix.

One drawing for every place that shows them: the TensorBoard callbacks
(:mod:`lightning_labs.callbacks.figures`), ``predict``'s ``predictions.png`` and ``eval``'s
``confusion_matrix.png``, so a picture in a log and one in a run folder read the same way. Only
``matplotlib.figure.Figure`` is used (no pyplot), which leaves a notebook's backend alone.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from matplotlib.figure import Figure


def prediction_grid(
    images: torch.Tensor,
    labels: list[int],
    predictions: list[int],
    names: list[str],
    columns: int,
    title: str = "",
) -> Figure:
    """A grid of images (N x C x H x W in [0, 1]) titled "predicted / true"; mistakes framed in red.

    With ``title``, the figure's heading is ``<title>: predicted / true (k of n wrong, in red)``.
    """
    columns = min(columns, len(images))
    rows = math.ceil(len(images) / columns)
    figure = Figure(figsize=(1.6 * columns, 1.75 * rows + 0.5), layout="constrained")
    for index, axes in enumerate(figure.subplots(rows, columns, squeeze=False).flat):
        axes.set_xticks([])
        axes.set_yticks([])
        if index >= len(images):
            axes.set_axis_off()
            continue
        image = images[index].permute(1, 2, 0).numpy()
        axes.imshow(image[..., 0] if image.shape[2] == 1 else image, cmap="gray", vmin=0, vmax=1)
        wrong = predictions[index] != labels[index]
        colour = "tab:red" if wrong else "tab:green"
        axes.set_title(f"{names[predictions[index]]} / {names[labels[index]]}", fontsize=8, color=colour)
        for spine in axes.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(2.5 if wrong else 0.5)
    if title:
        wrong = sum(p != t for p, t in zip(predictions, labels, strict=True))
        figure.suptitle(f"{title}: predicted / true ({wrong} of {len(labels)} wrong, in red)")
    return figure


def confusion_figure(counts: torch.Tensor, names: list[str], annotate: bool, split: str = "") -> Figure:
    """A heat map of a confusion matrix (rows: true class, columns: predicted) with class names on both axes.

    With ``split``, the heading is ``Confusion matrix, <split> (<n> images)``.
    """
    size = max(5.0, 0.45 * len(names) + 2.5)
    figure = Figure(figsize=(size + 1, size), layout="constrained")
    axes = figure.subplots()
    shown = axes.imshow(counts.numpy(), cmap="Blues")
    figure.colorbar(shown, ax=axes, shrink=0.8, label="images")
    ticks = range(len(names))
    label_names = annotate or len(names) <= 40
    axes.set_xticks(ticks, names if label_names else [], rotation=45, ha="right", fontsize=8)
    axes.set_yticks(ticks, names if label_names else [], fontsize=8)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if annotate:
        threshold = counts.max().item() / 2
        for row, values in enumerate(counts.tolist()):
            for column, value in enumerate(values):
                colour = "white" if value > threshold else "black"
                axes.text(column, row, str(value), ha="center", va="center", fontsize=7, color=colour)
    if split:
        figure.suptitle(f"Confusion matrix, {split} ({int(counts.sum())} images)")
    return figure


def save_png(figure: Figure, path: Path) -> Path:
    """Write ``figure`` to ``path`` as a PNG (the folder is made if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path
