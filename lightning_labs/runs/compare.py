"""A sweep's jobs side by side: sorted by a metric, as a table (terminal, Markdown, CSV) and two figures.

Reads each job's ``.hydra/overrides.yaml``, ``metrics.json`` and TensorBoard events (nothing is
re-run). :func:`write_comparison` writes ``comparison.md`` (the table, the settings all jobs share
and the unfinished jobs), ``comparison.csv``, ``comparison.png`` (a bar per job of the metric) and
``curves.png`` (a logged scalar and ``train/loss`` of every job vs epoch). Jobs without
``metrics.json`` (crashed, stopped or still running) are listed, not dropped. The command
``python -m lightning_labs.compare`` (:mod:`lightning_labs.compare`) prints and writes this; the
sweep report (:mod:`lightning_labs.runs.report`) reuses its table and figures.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import rich
import rich.table
from rich.markup import escape

from lightning_labs.runs import plots
from lightning_labs.runs.discovery import (
    Run,
    RunDirError,
    check_run_or_sweep,
    common_overrides,
    load_run,
    short_names,
    varying_settings,
)

# Final metrics shown when a job has them, in this order (``seconds`` and ``epochs`` are metrics.json's).
COLUMNS = ("test/acc", "test/loss", "val/acc_best", "val/acc", "seconds", "epochs")
LOWER_IS_BETTER = ("loss", "seconds", "_ms", "error")
MISSING = "-"


def lower_is_better(metric: str) -> bool:
    """Losses, times and errors sort ascending; accuracies and everything else descending."""
    return any(word in metric for word in LOWER_IS_BETTER)


def ranked(value: float | None) -> bool:
    """Whether a value takes part in the ranking: NaN or infinite (a diverged job) does not, as
    NaN compares false with every number and would leave the job wherever it happened to be."""
    return value is not None and math.isfinite(value)


def format_value(name: str, value: float | None) -> str:
    if value is None:
        return MISSING
    if name in ("epochs", "global_step"):
        return f"{value:.0f}"
    if name == "seconds":
        return f"{value:.1f}"
    return f"{value:.4f}"


@dataclass
class Comparison:
    """The jobs of a sweep (best first by ``metric``), the settings that differ and the metric columns."""

    root: Path
    runs: list[Run]
    keys: list[str]
    columns: list[str]
    metric: str

    @property
    def name(self) -> str:
        """The sweep's date/time folders, e.g. ``2026-11-23/13-00-58-123456``."""
        return "/".join(self.root.resolve().parts[-2:])

    @property
    def unfinished(self) -> list[Run]:
        return [run for run in self.runs if not run.finished]

    def label(self, run: Run) -> str:
        """The job's settings that differ, short: ``pool=max, act=relu`` (its number if none differ)."""
        text = self.label_text(run)
        if not text or sum(self.label_text(r) == text for r in self.runs) > 1:
            text = f"job {run.name}" + (f": {text}" if text else "")
        return text

    def label_text(self, run: Run) -> str:
        names = short_names(self.keys)
        return ", ".join(f"{names[k]}={run.settings.get(k, MISSING)}" for k in self.keys)

    def rows(self) -> list[dict[str, str | float | bool | None]]:
        """One dict per job: ``job``, each differing override, each metric column, ``finished``."""
        return [
            {
                "job": run.name,
                **{key: run.settings.get(key) for key in self.keys},
                **{name: run.raw(name) for name in self.columns},
                "finished": run.finished,
            }
            for run in self.runs
        ]

    @property
    def order_note(self) -> str:
        direction = "lowest first" if lower_is_better(self.metric) else "highest first"
        return f"sorted by {self.metric}, {direction}"


def compare_runs(root: Path, jobs: Sequence[Path], metric: str = "test/acc") -> Comparison:
    """Read the jobs and sort them: best ``metric`` first, then jobs without a finite value of it
    (not tested, or diverged to NaN/inf), unfinished ones last."""
    runs = [load_run(job, name=job.name) for job in jobs]
    finished = [run for run in runs if run.finished]
    if finished and all(run.value(metric) is None for run in finished):
        available = sorted({name for run in finished for name in run.metrics} | {"seconds", "epochs"})
        raise RunDirError(
            f"--metric {metric} is in no job's metrics.json under {root}; choose from: {', '.join(available)}"
        )
    sign = 1.0 if lower_is_better(metric) else -1.0

    def order(run: Run) -> tuple[int, float]:
        value = run.value(metric)
        if not ranked(value):
            return (1 if run.finished else 2), 0.0
        return 0, sign * value

    runs.sort(key=order)  # stable: job order among equals
    columns = [
        c for c in (metric, *[c for c in COLUMNS if c != metric]) if any(r.value(c) is not None for r in runs)
    ]
    return Comparison(root=root, runs=runs, keys=varying_settings(runs), columns=columns, metric=metric)


def load_comparison(path: Path, metric: str = "test/acc") -> Comparison:
    """The comparison of the sweep (or single run) at ``path``; RunDirError when it holds neither."""
    root, jobs = check_run_or_sweep(path, "compare")
    return compare_runs(root, jobs, metric)


def rich_table(comparison: Comparison) -> rich.table.Table:
    jobs = len(comparison.runs)
    table = rich.table.Table(
        title=f"{comparison.root}: {jobs} job{'s' * (jobs != 1)}, {comparison.order_note}"
    )
    table.add_column("job")
    for key in comparison.keys:
        table.add_column(key, style="cyan")
    for name in comparison.columns:
        table.add_column(name, justify="right", style="bold" if name == comparison.metric else None)
    best = next((r for r in comparison.runs if ranked(r.value(comparison.metric))), None)
    for run in comparison.runs:
        cells = [escape(run.name) if run.finished else f"{escape(run.name)} [red](unfinished)[/red]"]
        cells += [escape(run.settings.get(key, MISSING)) for key in comparison.keys]
        cells += [format_value(name, run.value(name)) for name in comparison.columns]
        table.add_row(*cells, style="green" if run is best else ("dim" if not run.finished else None))
    common = common_overrides(comparison.runs)
    if common:
        table.caption = escape("shared: " + " ".join(common))
    return table


def markdown_table(comparison: Comparison) -> str:
    header = [
        "job",
        *comparison.keys,
        *(f"**{c}**" if c == comparison.metric else c for c in comparison.columns),
    ]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * (1 + len(comparison.keys)) + ["---:"] * len(comparison.columns)) + "|",
    ]
    for run in comparison.runs:
        cells = [run.name if run.finished else f"{run.name} (unfinished)"]
        cells += [f"`{run.settings.get(key, MISSING)}`" for key in comparison.keys]
        for name in comparison.columns:
            cells.append(format_value(name, run.value(name)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def unfinished_line(comparison: Comparison) -> str:
    if not comparison.unfinished:
        return "Unfinished jobs: none."
    names = ", ".join(run.name for run in comparison.unfinished)
    return f"Unfinished jobs (no metrics.json: crashed, stopped or still running): {names}."


def markdown_body(
    comparison: Comparison, images: dict[str, Path] | None = None, relative_to: Path | None = None
) -> str:
    """The table, the row order, the shared settings, the unfinished jobs and the figures' links."""
    parts = [markdown_table(comparison), "", f"Rows {comparison.order_note}; jobs without it last."]
    common = common_overrides(comparison.runs)
    if common:
        parts.append("Shared by all jobs: " + " ".join(f"`{o}`" for o in common) + ".")
    parts.append(unfinished_line(comparison))
    for name, alt in (("comparison.png", f"{comparison.metric} per job"), ("curves.png", "curves per job")):
        path = (images or {}).get(name)
        if path is not None and path.exists():
            link = path.relative_to(relative_to) if relative_to else Path(path.name)
            parts += ["", f"![{alt}]({link.as_posix()})"]
    return "\n".join(parts)


def write_csv(comparison: Comparison, path: Path) -> Path:
    """Every value at full precision (as in metrics.json); empty cells for missing ones."""
    rows = comparison.rows()
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["job", *comparison.keys, *comparison.columns, "finished"])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


def write_figures(comparison: Comparison, out_dir: Path, curve: str = "val/acc") -> dict[str, Path]:
    """``comparison.png`` (a bar per job of the metric) and ``curves.png`` (``curve`` and train/loss)."""
    runs = comparison.runs
    labels = [comparison.label(run) + ("" if run.finished else " (unfinished)") for run in runs]
    figure = plots.bar_chart(
        labels,
        [run.value(comparison.metric) for run in runs],
        comparison.metric,
        f"{comparison.metric} per job ({comparison.order_note})\n{comparison.name}",
    )
    paths = {"comparison.png": plots.save(figure, out_dir / "comparison.png")}
    tags = [curve] if curve == "train/loss" else [curve, "train/loss"]
    figure = plots.sweep_curves(
        [(label, run.events) for label, run in zip(labels, runs, strict=True)],
        tags,
        f"{comparison.name}: {' and '.join(tags)} per job",
    )
    paths["curves.png"] = plots.save(figure, out_dir / "curves.png")
    return paths


def write_comparison(comparison: Comparison, out_dir: Path, curve: str = "val/acc") -> dict[str, Path]:
    """All four files into ``out_dir``: comparison.md, comparison.csv, comparison.png, curves.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = write_figures(comparison, out_dir, curve)
    paths["comparison.csv"] = write_csv(comparison, out_dir / "comparison.csv")
    markdown = f"# Comparison of {comparison.root}\n\n" + markdown_body(comparison, paths, out_dir) + "\n"
    paths["comparison.md"] = out_dir / "comparison.md"
    paths["comparison.md"].write_text(markdown)
    return paths
