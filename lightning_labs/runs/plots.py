"""Figures rebuilt from a run's logs: a bar per sweep job, overlaid curves, a run's training curves.

Built as plain :class:`~matplotlib.figure.Figure` objects, not through pyplot: nothing here
touches the global backend (a notebook that imports this keeps its own), and a figure no one
holds is garbage-collected, so none needs closing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lightning_labs.runs.events import Events

STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def save(figure: Figure, path: Path, dpi: int = 120) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def bar_chart(labels: Sequence[str], values: Sequence[float | None], metric: str, title: str) -> Figure:
    """One horizontal bar per job, the first at the top, its value written at the bar's end.

    Jobs without a value get no bar and "no value" in its place; a NaN or infinite value (a
    diverged job) gets no bar and its value written, as matplotlib cannot scale an axis to it.
    """
    count = max(len(labels), 1)
    longest = max((len(label) for label in labels), default=10)
    figure = Figure(figsize=(min(6.0 + 0.09 * longest, 14.0), 1.3 + 0.55 * count))
    axis = figure.subplots()
    widths = [v if v is not None and math.isfinite(v) else 0.0 for v in values]
    known = [v for v in values if v is not None and math.isfinite(v)]
    top = max(known, default=1.0) or 1.0
    positions = range(len(labels))
    axis.barh(positions, widths, color="tab:blue", height=0.6)
    for y, value, width in zip(positions, values, widths, strict=True):
        text = "no value (unfinished)" if value is None else f"{value:.4f}"
        axis.text(width + 0.01 * abs(top), y, text, va="center", fontsize=9)
    axis.set_yticks(list(positions), list(labels), fontsize=9)
    axis.invert_yaxis()
    axis.set_xlim(0, max(top * 1.18, 1e-9) if min(known, default=0.0) >= 0 else None)
    axis.set_xlabel(metric)
    axis.set_title(title)
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def _overlay(
    axis: Axes, curves: Sequence[tuple[str, list[tuple[float, float]]]], tag: str, xlabel: str
) -> None:
    drawn = 0
    for index, (label, points) in enumerate(curves):
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        axis.plot(
            xs,
            ys,
            STYLES[index % len(STYLES)],
            color=f"C{index % 10}",
            marker=MARKERS[index % len(MARKERS)],
            markersize=5,
            alpha=0.9,
            label=label,
        )
        drawn += 1
    axis.set_title(tag)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(tag)
    axis.grid(alpha=0.3)
    if xlabel == "epoch":
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not drawn:
        axis.text(0.5, 0.5, f"{tag} was not logged", transform=axis.transAxes, ha="center", va="center")


def sweep_curves(jobs: Sequence[tuple[str, Events | None]], tags: Sequence[str], title: str = "") -> Figure:
    """Each tag a subplot, one line per job (vs epoch), one legend below for all subplots."""
    figure = Figure(figsize=(6.0 * len(tags), 4.6))
    axes = figure.subplots(1, len(tags), squeeze=False)
    for axis, tag in zip(axes[0], tags, strict=True):
        curves = [(label, events.by_epoch(tag) if events else []) for label, events in jobs]
        _overlay(axis, curves, tag, "epoch")
    handles, labels = [], []
    for axis in axes[0]:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if handles:
        figure.legend(
            handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 3)
        )
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def run_curves(events: Events, title: str = "") -> Figure:
    """A run's loss and accuracy (train and val) vs epoch, and its learning rate vs step if logged."""
    lr_tags = [t for t in events.scalar_tags if t.startswith("lr-")]
    panels = 3 if lr_tags else 2
    figure = Figure(figsize=(5.2 * panels, 4.2))
    axes = figure.subplots(1, panels, squeeze=False)
    for axis, what in zip(axes[0], ("loss", "acc"), strict=False):
        drawn = 0
        for split, colour in (("train", "tab:blue"), ("val", "tab:orange")):
            points = events.by_epoch(f"{split}/{what}")
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(xs, ys, "-o", color=colour, markersize=4, label=f"{split}/{what}")
                drawn += 1
        axis.set_title("loss" if what == "loss" else "accuracy")
        axis.set_xlabel("epoch")
        axis.set_ylabel(what if what == "loss" else "accuracy")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        if drawn:
            axis.legend()
        else:
            axis.text(0.5, 0.5, f"no {what} logged", transform=axis.transAxes, ha="center", va="center")
    if lr_tags:
        axis = axes[0][2]
        for tag in lr_tags:
            xs, ys = zip(*events.scalars(tag), strict=True)
            axis.plot(xs, ys, label=tag.removeprefix("lr-"))
        axis.set_title("learning rate")
        axis.set_xlabel("training step")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel("learning rate")
        axis.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
