"""Runs side by side: sorted by a metric, as a table (terminal, Markdown, CSV) and two figures.

Reads each job's ``.hydra/overrides.yaml``, ``.hydra/config.yaml``, ``metrics.json``, log file and
TensorBoard events (nothing is re-run). :func:`write_comparison` writes ``comparison.md`` (the
table, the settings all jobs share, and the jobs that did not finish with the reason),
``comparison.csv``, ``comparison.png`` (a bar per job of the metric) and ``curves.png`` (a logged
scalar and ``train/loss`` of every job vs epoch). Jobs without ``metrics.json`` are listed, not
dropped, each with its state (:attr:`~lightning_labs.runs.discovery.Run.status`): failed jobs with
the first line of their error, unfinished ones as such. Only runs refused before training (a bad
setting: nothing to compare) are left out, and named below the table, unless asked for. The
command ``python -m lightning_labs.compare`` (:mod:`lightning_labs.compare`) prints and writes
this; the sweep report (:mod:`lightning_labs.runs.report`) reuses its table and figures.

Jobs that differ only in ``seed`` (a sweep ``seed=1,2,3 ...``) are one row per setting, each
metric as mean ± sample std over the seeds with the number of jobs (n), and one bar with error
bars, since a single seed's difference is often noise; ``group=False`` keeps one row per job. An
Optuna sweep's trials are rows with their sampled parameters (floats to 4 significant digits in
the tables, whole in the CSV), its ``optimization_results.yaml`` one line under the table.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import rich.table
from matplotlib.figure import Figure
from rich.markup import escape

from lightning_labs.runs import plots
from lightning_labs.runs.discovery import (
    Run,
    RunDirError,
    collect_jobs,
    common_overrides,
    job_names,
    load_run,
    natural_key,
    short_names,
    varying_settings,
)
from lightning_labs.runs.search import best_lines, optuna_sweep, short_setting

# Final metrics shown when a job has them, in this order (``seconds`` and ``epochs`` are metrics.json's).
COLUMNS = (
    "test/acc",
    "test/loss",
    "val/acc_best",
    "val/acc",
    "seconds",
    "epochs",
    "model/params",
    "model/macs",
)
HEADERS = {"model/params": "params", "model/macs": "MACs"}
COUNTS = ("model/params", "model/macs")
# Settings read from the composed config (.hydra/config.yaml), not from the command line, so that a
# preset (experiment=...) shows the model and data it chose.
COMPOSED = ("model", "data")
LOWER_IS_BETTER = ("loss", "seconds", "_ms", "error")
MISSING = "-"
SEED = "seed"  # jobs that differ only in this setting are averaged
# Metrics the seed does not change (the model's size, a fixed epoch count): one value, not "± 0".
SAME_FOR_EVERY_SEED = (*COUNTS, "epochs")


def lower_is_better(metric: str) -> bool:
    """Losses, times and errors sort ascending; accuracies and everything else descending."""
    return any(word in metric for word in LOWER_IS_BETTER)


def ranked(value: float | None) -> bool:
    """Whether a value takes part in the ranking: NaN or infinite (a diverged job) does not, as
    NaN compares false with every number and would leave the job wherever it happened to be."""
    return value is not None and math.isfinite(value)


def short_count(value: float) -> str:
    """``61.7K``, ``9.23M``, ``4.09G``: parameter and MAC counts as the README writes them."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.0f}"


def format_value(name: str, value: float | None) -> str:
    if value is None:
        return MISSING
    if name in COUNTS and math.isfinite(value):
        return short_count(value)
    if name in ("epochs", "global_step"):
        return f"{value:.0f}"
    if name == "seconds":
        return f"{value:.1f}"
    return f"{value:.4f}"


def header(name: str) -> str:
    return HEADERS.get(name, name)


def setting(run: Run, key: str) -> str:
    """A job's value of a setting: the composed model or data name, else the value in the composed
    config (so a job that did not override it shows what it ran with), else its override."""
    value = getattr(run, key) if key in COMPOSED else run.composed(key) or run.settings.get(key)
    return MISSING if value is None else str(value)


def job_cell(run: Run) -> str:
    """``3``, or ``3 (failed)`` for a job that did not finish."""
    return run.name if run.finished else f"{run.name} ({run.status})"


@dataclass
class Group:
    """Jobs whose settings are the same but for the seed (in job order): one row of mean ± std."""

    settings: dict[str, str]
    runs: list[Run]

    def values(self, name: str) -> list[float]:
        """The jobs' values of a metric, a NaN or infinite one too (it makes the mean NaN or
        infinite: a seed that diverged is shown, not averaged away)."""
        return [value for run in self.runs if (value := run.value(name)) is not None]

    def mean(self, name: str) -> float | None:
        values = self.values(name)
        return sum(values) / len(values) if values else None  # sum, not fsum: inf - inf is NaN, no error

    def std(self, name: str) -> float | None:
        """The sample standard deviation (ddof=1, as numpy's ``std(ddof=1)``); None under two values."""
        values = self.values(name)
        if len(values) < 2:
            return None
        mean = sum(values) / len(values)
        return math.sqrt(sum((value - mean) ** 2 for value in values) / (len(values) - 1))

    def cell(self, name: str) -> str:
        """``0.9512 ± 0.0031`` (each part as :func:`format_value` writes it); one value alone as it is."""
        std = self.std(name)
        if std is None or (name in SAME_FOR_EVERY_SEED and len(set(self.values(name))) == 1):
            return format_value(name, self.mean(name))
        return f"{format_value(name, self.mean(name))} ± {format_value(name, std)}"

    def count(self, name: str) -> str:
        """The jobs with a value of ``name``, and of how many when some have none: ``2 of 3``."""
        n = len(self.values(name))
        return str(n) if n == len(self.runs) else f"{n} of {len(self.runs)}"

    def jobs_cell(self) -> str:
        """``0, 2``, or ``0, 2 (failed)`` when job 2 did not finish."""
        return ", ".join(job_cell(run) for run in self.runs)


@dataclass
class Comparison:
    """The jobs (best first by ``metric``), the settings that differ and the metric columns."""

    root: Path
    runs: list[Run]
    keys: list[str]
    columns: list[str]
    metric: str
    left_out: list[Run] = field(default_factory=list)  # refused before training, not shown
    groups: list[Group] = field(default_factory=list)  # by setting, best mean first; empty: one row per job
    not_grouped: str | None = None  # why jobs that differ in seed are not averaged, when they are not
    optuna: bool = False  # some jobs are trials of an Optuna sweep: their sampled floats are shown short

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
        """The differing settings this job has, short (those it lacks are left out)."""
        return self.settings_text({key: setting(run, key) for key in self.keys})

    def settings_text(self, values: dict[str, str]) -> str:
        """``pool=max, lr=0.001235``: short keys and values, missing ones left out."""
        names = short_names(self.keys)
        return ", ".join(f"{names[k]}={self.shown(v)}" for k, v in values.items() if v != MISSING)

    def shown(self, value: str) -> str:
        """A setting's value in tables and labels: an Optuna trial's sampled floats short
        (:func:`short_setting`), anything else whole, as typed."""
        return short_setting(value) if self.optuna else value

    def group_label(self, group: Group) -> str:
        """A setting's label, ``all jobs`` when the seed is all that differs."""
        return self.settings_text(group.settings) or "all jobs"

    @property
    def group_keys(self) -> list[str]:
        """The settings that tell the groups apart: the differing ones but the seed."""
        return [key for key in self.keys if key != SEED]

    @property
    def seeds(self) -> list[str]:
        """The seeds the means are taken over, in numeric order."""
        return sorted({setting(run, SEED) for run in self.runs}, key=lambda s: natural_key(Path(s)))

    def rows(self) -> list[dict[str, str | float | bool | None]]:
        """One dict per job: ``job``, each differing setting, each metric column, ``finished``, ``status``."""
        return [
            {
                "job": run.name,
                **{key: setting(run, key) for key in self.keys},
                **{name: run.raw(name) for name in self.columns},
                "finished": run.finished,
                "status": run.status,
            }
            for run in self.runs
        ]

    @property
    def shared_model(self) -> str:
        """`` of lenet5 on mnist`` when every job has the same model and data (else they are columns)."""
        values = [setting(self.runs[0], key) for key in COMPOSED if key not in self.keys]
        what = " on ".join(value for value in values if value != MISSING)
        return f" of {what}" if what else ""

    def group_rows(self) -> list[dict[str, str | float | int | None]]:
        """One dict per setting: ``jobs`` (their names), the settings, ``<column>_mean`` and
        ``<column>_std`` for each metric column, ``n`` (jobs with the metric) and ``n_jobs``."""
        return [
            {
                "jobs": " ".join(run.name for run in group.runs),
                **group.settings,
                **{f"{c}_{what}": getattr(group, what)(c) for c in self.columns for what in ("mean", "std")},
                "n": len(group.values(self.metric)),
                "n_jobs": len(group.runs),
            }
            for group in self.groups
        ]

    @property
    def order_note(self) -> str:
        direction = "lowest first" if lower_is_better(self.metric) else "highest first"
        if self.groups:
            return f"sorted by mean {self.metric}, {direction}; mean ± std over seeds {', '.join(self.seeds)}"
        return f"sorted by {self.metric}, {direction}"


def differing_keys(runs: Sequence[Run]) -> list[str]:
    """The model and data, then the overridden keys, whose values (:func:`setting`) differ between
    jobs (``model=`` and ``data=`` overrides give way to the composed names)."""
    keys = [*COMPOSED, *(key for key in varying_settings(runs) if key not in COMPOSED)]
    return [key for key in keys if len({setting(run, key) for run in runs}) > 1]


def seed_groups(runs: Sequence[Run], keys: Sequence[str]) -> list[Group]:
    """The jobs by their values of ``keys`` but the seed, in the order of each group's first job."""
    others = [key for key in keys if key != SEED]
    groups: dict[tuple[str, ...], Group] = {}
    for run in runs:
        values = tuple(setting(run, key) for key in others)
        groups.setdefault(values, Group(dict(zip(others, values, strict=True)), [])).runs.append(run)
    return list(groups.values())


def repeated_seed(groups: Sequence[Group]) -> tuple[Run, Run] | None:
    """Two jobs with the same settings and the same seed (the same sweep given twice, or two
    sweeps of the same seeds), if any: averaging them would count a seed twice."""
    for group in groups:
        seen: dict[str, Run] = {}
        for run in group.runs:
            if (seed := setting(run, SEED)) in seen:
                return seen[seed], run
            seen[seed] = run
    return None


def compare_runs(
    root: Path,
    jobs: Sequence[Path],
    metric: str = "test/acc",
    show_refused: bool = False,
    group: bool = True,
) -> Comparison:
    """Read the jobs and sort them: best ``metric`` first, then jobs without a finite value of it
    (not tested, or diverged to NaN/inf), the ones that did not finish last. Runs refused before
    training are left out (``left_out``) unless ``show_refused``, or unless no other run is left.

    With ``group``, when ``seed`` differs and some setting was run with several seeds, the jobs
    are also grouped by setting (``groups``), sorted the same way by their mean ``metric``."""
    every = [load_run(job, name=name) for job, name in zip(jobs, job_names(jobs), strict=True)]
    hide = not show_refused and any(run.status != "refused" for run in every)
    runs = [run for run in every if not (hide and run.status == "refused")]
    left_out = [run for run in every if hide and run.status == "refused"]
    finished = [run for run in runs if run.finished]
    if finished and all(run.value(metric) is None for run in finished):
        available = sorted({name for run in finished for name in run.metrics} | {"seconds", "epochs"})
        raise RunDirError(
            f"--metric {metric} is in no job's metrics.json under {root}; choose from: {', '.join(available)}"
        )
    sign = 1.0 if lower_is_better(metric) else -1.0

    def order(value: float | None, done: bool) -> tuple[int, float]:
        if not ranked(value):
            return (1 if done else 2), 0.0
        return 0, sign * value

    keys = differing_keys(runs)
    groups: list[Group] = []
    not_grouped = None
    if group and SEED in keys:
        groups = seed_groups(runs, keys)  # in job order, so that equal means keep it
        repeat = repeated_seed(groups)
        if repeat:
            groups = []
            first, second = (run.name for run in repeat)
            not_grouped = (
                f"Not averaged over seeds: jobs {first} and {second} have the same settings and seed."
            )
        elif all(len(g.runs) == 1 for g in groups):
            groups = []  # the seed changed with the other settings: nothing to average
        groups.sort(key=lambda g: order(g.mean(metric), any(run.finished for run in g.runs)))
    runs.sort(key=lambda run: order(run.value(metric), run.finished))  # stable: job order among equals
    columns = [
        c for c in (metric, *[c for c in COLUMNS if c != metric]) if any(r.value(c) is not None for r in runs)
    ]
    return Comparison(
        root=root,
        runs=runs,
        keys=keys,
        columns=columns,
        metric=metric,
        left_out=left_out,
        groups=groups,
        not_grouped=not_grouped,
        optuna=any(optuna_sweep(folder) for folder in {run.path.parent for run in runs}),
    )


def load_comparison(
    paths: Path | Sequence[Path], metric: str = "test/acc", show_refused: bool = False, group: bool = True
) -> Comparison:
    """The comparison of the sweeps and runs at ``paths`` (globs expanded); RunDirError when one
    holds neither."""
    root, jobs = collect_jobs([paths] if isinstance(paths, Path) else paths, "compare")
    return compare_runs(root, jobs, metric, show_refused, group)


def rich_table(comparison: Comparison) -> rich.table.Table:
    """The table for the console: short setting headers (``pool``), their full keys in the caption."""
    if comparison.groups:
        return rich_group_table(comparison)
    jobs = len(comparison.runs)
    table = rich.table.Table(
        title=escape(
            f"{comparison.root}: {jobs} job{'s' * (jobs != 1)}{comparison.shared_model}, "
            + comparison.order_note
        )
    )
    table.add_column("job")
    names = short_names(comparison.keys)
    for key in comparison.keys:
        table.add_column(names[key], style="cyan")
    for name in comparison.columns:
        table.add_column(header(name), justify="right", style="bold" if name == comparison.metric else None)
    best = next((r for r in comparison.runs if ranked(r.value(comparison.metric))), None)
    for run in comparison.runs:
        cells = [escape(run.name) if run.finished else f"{escape(run.name)} [red]({run.status})[/red]"]
        cells += [escape(comparison.shown(setting(run, key))) for key in comparison.keys]
        cells += [format_value(name, run.value(name)) for name in comparison.columns]
        table.add_row(*cells, style="green" if run is best else ("dim" if not run.finished else None))
    footnote = [f"{names[key]} = {key}" for key in comparison.keys if names[key] != key]
    footnote += [f"{header(c)} = {c}" for c in comparison.columns if header(c) != c]
    if footnote:
        table.caption = escape(", ".join(footnote))
    return table


def rich_group_table(comparison: Comparison) -> rich.table.Table:
    """:func:`rich_table` with a row per setting: its jobs, settings, metrics as mean ± std and n."""
    jobs, settings = len(comparison.runs), len(comparison.groups)
    table = rich.table.Table(
        title=escape(
            f"{comparison.root}: {jobs} jobs, {settings} setting{'s' * (settings != 1)}"
            f"{comparison.shared_model}, {comparison.order_note}"
        )
    )
    table.add_column("jobs")
    names = short_names(comparison.keys)
    for key in comparison.group_keys:
        table.add_column(names[key], style="cyan")
    for name in comparison.columns:
        table.add_column(header(name), justify="right", style="bold" if name == comparison.metric else None)
    table.add_column("n", justify="right")
    best = next((g for g in comparison.groups if ranked(g.mean(comparison.metric))), None)
    for group in comparison.groups:
        cells = [escape(group.jobs_cell())]
        cells += [escape(comparison.shown(group.settings[key])) for key in comparison.group_keys]
        cells += [group.cell(name) for name in comparison.columns]
        cells.append(group.count(comparison.metric))
        done = any(run.finished for run in group.runs)
        table.add_row(*cells, style="green" if group is best else ("dim" if not done else None))
    footnote = [f"{names[key]} = {key}" for key in comparison.group_keys if names[key] != key]
    footnote += [f"{header(c)} = {c}" for c in comparison.columns if header(c) != c]
    footnote.append(f"n = jobs with {comparison.metric}; ± = sample std")
    table.caption = escape(", ".join(footnote))
    return table


def markdown_table(comparison: Comparison) -> str:
    if comparison.groups:
        return markdown_group_table(comparison)
    header_cells = [
        "job",
        *comparison.keys,
        *(f"**{c}**" if c == comparison.metric else header(c) for c in comparison.columns),
    ]
    lines = [
        "| " + " | ".join(header_cells) + " |",
        "|" + "|".join(["---"] * (1 + len(comparison.keys)) + ["---:"] * len(comparison.columns)) + "|",
    ]
    for run in comparison.runs:
        cells = [job_cell(run)]
        cells += [f"`{comparison.shown(setting(run, key))}`" for key in comparison.keys]
        for name in comparison.columns:
            cells.append(format_value(name, run.value(name)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_group_table(comparison: Comparison) -> str:
    """:func:`markdown_table` with a row per setting: its jobs, settings, metrics as mean ± std and n."""
    keys = comparison.group_keys
    header_cells = [
        "jobs",
        *keys,
        *(f"**{c}**" if c == comparison.metric else header(c) for c in comparison.columns),
        "n",
    ]
    lines = [
        "| " + " | ".join(header_cells) + " |",
        "|" + "|".join(["---"] * (1 + len(keys)) + ["---:"] * (len(comparison.columns) + 1)) + "|",
    ]
    for group in comparison.groups:
        cells = [group.jobs_cell(), *(f"`{comparison.shown(group.settings[key])}`" for key in keys)]
        cells += [group.cell(name) for name in comparison.columns]
        cells.append(group.count(comparison.metric))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def optuna_lines(comparison: Comparison) -> list[str]:
    """The best trial of each Optuna sweep among the compared jobs (see :func:`best_lines`)."""
    folders = sorted({run.path.parent for run in comparison.runs})
    return [line for folder in folders for line in best_lines(folder, named=len(folders) > 1)]


def unfinished_line(comparison: Comparison) -> str:
    """The jobs that stopped without an error logged (killed, or still running)."""
    names = [run.name for run in comparison.runs if run.status == "unfinished"]
    if not names:
        return "Unfinished jobs: none."
    return f"Unfinished jobs (no metrics.json: crashed, stopped or still running): {', '.join(names)}."


def error_lines(comparison: Comparison) -> list[str]:
    """One line per job that logged an error (failed, stopped, or refused and shown), then one for
    the refused runs left out, each with the first line of its error and where the rest is."""
    lines = [
        f"Job {run.name} {run.status}: {run.error} (log: {run.log_file})"
        for run in comparison.runs
        if run.error is not None and not run.finished
    ]
    lines += [
        f"Job {run.name} refused before training, left out (--all shows it): {run.error}"
        for run in comparison.left_out
    ]
    return lines


def status_lines(comparison: Comparison) -> list[str]:
    """Optuna's best trial, what did not finish and why, then the shared settings: the lines
    printed under the table."""
    lines = optuna_lines(comparison) + error_lines(comparison)
    if comparison.not_grouped:
        lines.append(comparison.not_grouped)
    if any(run.status == "unfinished" for run in comparison.runs):
        lines.append(unfinished_line(comparison))
    common = common_overrides(comparison.runs)
    if common:
        lines.append("Shared by all jobs: " + " ".join(common))
    return lines


def markdown_body(
    comparison: Comparison, images: dict[str, Path] | None = None, relative_to: Path | None = None
) -> str:
    """The table, the row order, the shared settings, the jobs that did not finish and the figures' links."""
    rows = "settings" if comparison.groups else "jobs"
    parts = [markdown_table(comparison), "", f"Rows {comparison.order_note}; {rows} without it last."]
    parts += optuna_lines(comparison)
    if comparison.not_grouped:
        parts.append(comparison.not_grouped)
    common = common_overrides(comparison.runs)
    if common:
        parts.append("Shared by all jobs: " + " ".join(f"`{o}`" for o in common) + ".")
    parts += error_lines(comparison)
    parts.append(unfinished_line(comparison))
    per = "mean per setting" if comparison.groups else "per job"
    for name, alt in (("comparison.png", f"{comparison.metric} {per}"), ("curves.png", "curves per job")):
        path = (images or {}).get(name)
        if path is not None and path.exists():
            link = path.relative_to(relative_to) if relative_to else Path(path.name)
            parts += ["", f"![{alt}]({link.as_posix()})"]
    return "\n".join(parts)


def write_csv(comparison: Comparison, path: Path) -> Path:
    """Every value at full precision (as in metrics.json); empty cells for missing ones. A row per
    setting when grouped: ``<column>_mean`` and ``<column>_std`` numbers, not ``±`` text."""
    if comparison.groups:
        rows = comparison.group_rows()
        fields = ["jobs", *comparison.group_keys]
        fields += [f"{c}_{what}" for c in comparison.columns for what in ("mean", "std")] + ["n", "n_jobs"]
    else:
        rows = comparison.rows()
        fields = ["job", *comparison.keys, *comparison.columns, "finished", "status"]
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


def job_label(comparison: Comparison, run: Run) -> str:
    """The job's label in the figures, with its state when it did not finish."""
    return comparison.label(run) + ("" if run.finished else f" ({run.status})")


def bar_figure(comparison: Comparison) -> Figure:
    """A bar per job of the metric, or per setting its mean with ± std error bars and n."""
    metric, title = comparison.metric, f"({comparison.order_note})\n{comparison.name}"
    if not comparison.groups:
        labels = [job_label(comparison, run) for run in comparison.runs]
        values = [run.value(metric) for run in comparison.runs]
        return plots.bar_chart(labels, values, metric, f"{metric} per job {title}")
    groups = comparison.groups
    return plots.bar_chart(
        [comparison.group_label(group) for group in groups],
        [group.mean(metric) for group in groups],
        metric,
        f"mean {metric} per setting {title}",
        errors=[group.std(metric) for group in groups],
        notes=[f"n={group.count(metric)}" for group in groups],
    )


def write_figures(comparison: Comparison, out_dir: Path, curve: str = "val/acc") -> dict[str, Path]:
    """``comparison.png`` (a bar per job of the metric, or per setting of its mean) and
    ``curves.png`` (``curve`` and train/loss of every job)."""
    paths = {"comparison.png": plots.save(bar_figure(comparison), out_dir / "comparison.png")}
    tags = [curve] if curve == "train/loss" else [curve, "train/loss"]
    figure = plots.sweep_curves(
        [(job_label(comparison, run), run.events) for run in comparison.runs],
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
