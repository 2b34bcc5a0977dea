"""Figures rebuilt from a run's logs: a bar per sweep job, overlaid curves, a run's training curves.

Built as plain :class:`~matplotlib.figure.Figure` objects, not through pyplot: nothing here
touches the global backend (a notebook that imports this keeps its own), and a figure no one
holds is garbage-collected, so none needs closing.

Epoch axes have whole-number ticks. A loss axis is not scaled to one huge value (a diverged job,
or the first steps of training) when the rest would then lie flat along the bottom: its top is
set from the values' median, and the axis label says how many points lie above it.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lightning_labs.runs.events import Events

STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
# A loss more than this many times the median of all the points drawn is off the chart: far enough
# above that a first epoch's loss (about 10x the last on MNIST) stays on it, a diverged one does not.
OUTLIER_FACTOR = 20.0
LABEL_WIDTH = 40  # characters per line of a legend or bar label; longer ones wrap, never cut
CHARS_PER_INCH = 11  # of a 10-point legend label, to fit its columns to the figure's width


def wrap(label: str) -> str:
    return textwrap.fill(label, LABEL_WIDTH, break_on_hyphens=False)


def whole_epochs(axis: Axes, epochs: Sequence[float]) -> None:
    """Ticks at whole epochs only, with half an epoch of room at each end (a single epoch too:
    ``min_n_ticks=1``, as by default the locator gives up on integers when fewer than two fit)."""
    axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if epochs:
        axis.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)


def robust_loss_axis(axis: Axes, values: Sequence[float], label: str) -> None:
    """Label the y axis; for a loss, cut it above the outliers (values over ``OUTLIER_FACTOR``
    times the median) and say so in the label, so that one diverged job or a huge first step
    does not flatten every other curve."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    median = float(np.median(finite)) if finite.size else 0.0
    limit = OUTLIER_FACTOR * median
    above = int((finite > limit).sum()) if median > 0 else 0
    if "loss" in label and above:
        kept = finite[finite <= limit]
        low, high = float(kept.min()), float(kept.max())
        margin = 0.05 * (high - low) or 0.05 * abs(high) or 0.05
        axis.set_ylim(low - margin, high + margin)
        label += f"\n({above} point{'s' * (above != 1)} above {high + margin:.3g}, off the chart)"
    axis.set_ylabel(label)


def save(figure: Figure, path: Path, dpi: int = 120) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    metric: str,
    title: str,
    errors: Sequence[float | None] | None = None,
    notes: Sequence[str] | None = None,
) -> Figure:
    """One horizontal bar per job (or setting), the first at the top, its value written at the bar's end.

    ``errors`` draws ± that much around each value (a mean's standard deviation over seeds) and
    writes it after the value; ``notes`` adds a word to each (``n=3``). Jobs without a value get
    no bar and "no value" in its place; a NaN or infinite value (a diverged job) gets no bar and
    its value written, as matplotlib cannot scale an axis to it.
    """
    count = max(len(labels), 1)
    longest = max((len(label) for label in labels), default=10)
    labels = [wrap(label) for label in labels]
    lines = sum(label.count("\n") + 1 for label in labels)
    figure = Figure(
        figsize=(min(6.0 + 0.09 * min(longest, LABEL_WIDTH), 14.0), 1.3 + 0.4 * count + 0.15 * lines)
    )
    axis = figure.subplots()
    widths = [v if v is not None and math.isfinite(v) else 0.0 for v in values]
    spreads = [e if e is not None and math.isfinite(e) else 0.0 for e in errors or [None] * len(labels)]
    known = [v for v in values if v is not None and math.isfinite(v)]
    top = max((w + e for w, e in zip(widths, spreads, strict=True) if w), default=1.0) or 1.0
    positions = range(len(labels))
    axis.barh(positions, widths, color="tab:blue", height=0.6)
    with_error = [y for y, spread in zip(positions, spreads, strict=True) if spread]  # no cap for n=1
    if with_error:
        axis.errorbar(
            [widths[y] for y in with_error],
            with_error,
            xerr=[spreads[y] for y in with_error],
            fmt="none",
            ecolor="black",
            capsize=4,
        )
    for y, value, width, spread in zip(positions, values, widths, spreads, strict=True):
        text = "no value" if value is None else f"{value:.4f}"
        if errors is not None and errors[y] is not None and value is not None:
            text += f" ± {errors[y]:.4f}"
        if notes is not None:
            text += f"  {notes[y]}"
        axis.text(width + spread + 0.01 * abs(top), y, text, va="center", fontsize=9)
    axis.set_yticks(list(positions), list(labels), fontsize=9)
    axis.invert_yaxis()
    room = 1.18 if errors is None else 1.45  # for the text after each bar
    axis.set_xlim(0, max(top * room, 1e-9) if min(known, default=0.0) >= 0 else None)
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
            label=wrap(label),
        )
        drawn += 1
    axis.set_title(tag)
    axis.set_xlabel(xlabel)
    robust_loss_axis(axis, [y for _, points in curves for _, y in points], tag)
    axis.grid(alpha=0.3)
    if xlabel == "epoch":
        whole_epochs(axis, [x for _, points in curves for x, _ in points])
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
        longest = max(len(line) for label in labels for line in label.splitlines()) + 6  # the line sample
        columns = max(1, min(len(labels), int(CHARS_PER_INCH * figure.get_figwidth() // longest)))
        figure.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=columns)
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
        drawn, points_drawn = 0, []
        for split, colour in (("train", "tab:blue"), ("val", "tab:orange")):
            points = events.by_epoch(f"{split}/{what}")
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(xs, ys, "-o", color=colour, markersize=4, label=f"{split}/{what}")
                drawn += 1
                points_drawn += points
        axis.set_title("loss" if what == "loss" else "accuracy")
        axis.set_xlabel("epoch")
        robust_loss_axis(axis, [y for _, y in points_drawn], what if what == "loss" else "accuracy")
        whole_epochs(axis, [x for x, _ in points_drawn])
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
