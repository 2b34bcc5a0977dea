"""Latency results as a table, JSON + CSV files and a box plot of the run-to-run spread.

The box plot is a plain :class:`~matplotlib.figure.Figure`, not a pyplot one, so importing this
(as :mod:`lightning_labs.callbacks` does) leaves the caller's matplotlib backend alone.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rich.table
from matplotlib.figure import Figure

from lightning_labs.inference.latency import Measurement, Skipped
from lightning_labs.runtime.environment import machine_info

STATS = ("mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms", "images_per_s")


def results_table(
    results: Sequence[Measurement | Skipped], title: str = "Inference latency"
) -> rich.table.Table:
    table = rich.table.Table(title=title)
    for column in (
        "device",
        "variant",
        "batch",
        *(s.removesuffix("_ms") for s in STATS[:-1]),
        "img/s",
        "agrees",
    ):
        table.add_column(column, justify="left" if column in ("device", "variant") else "right")
    for result in results:
        if isinstance(result, Skipped):
            table.add_row(
                result.device, result.variant, "-", *[""] * len(STATS), f"[dim]skipped: {result.reason}[/dim]"
            )
            continue
        stats = result.stats
        cells = [f"{stats[s]:.3f}" for s in STATS[:-1]] + [f"{stats['images_per_s']:,.0f}"]
        agrees = "agrees" if result.agrees else f"[red]DIFFERS ({result.max_rel_diff:.1e})[/red]"
        table.add_row(result.device, result.variant, str(result.batch_size), *cells, agrees)
    table.caption = "milliseconds per batch; check: output compared with fp32 eager on the same device"
    return table


def latency_figure(results: Sequence[Measurement | Skipped]) -> Figure:
    """One box plot per device of the per-call latencies of each variant and batch size."""
    measured = [r for r in results if isinstance(r, Measurement)]
    devices = sorted({r.device for r in measured}) or ["cpu"]
    widest = max((sum(r.device == d for r in measured) for d in devices), default=1)
    figure = Figure(figsize=(max(6.0, 0.75 * widest + 2), 4.5 * len(devices)))
    axes = figure.subplots(len(devices), 1, squeeze=False)
    for axis, device in zip(axes[:, 0], devices, strict=True):
        rows = [r for r in measured if r.device == device]
        if not rows:
            continue
        axis.boxplot([r.times_ms for r in rows], showfliers=True)
        labels = [f"{r.variant}\nbatch {r.batch_size}" for r in rows]
        axis.set_xticks(range(1, len(rows) + 1), labels, fontsize=8, rotation=45, ha="right")
        axis.set_yscale("log")
        axis.set_ylabel("latency per batch (ms, log scale)")
        axis.set_title(f"{device}: run-to-run spread of {len(rows[0].times_ms)} timed calls each")
        axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def write_results(
    results: Sequence[Measurement | Skipped], output_dir: Path, about: dict[str, Any]
) -> dict[str, Path]:
    """``benchmark.json`` (everything, raw times included), ``benchmark.csv`` and ``latency.png``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: output_dir / name for name in ("benchmark.json", "benchmark.csv", "latency.png")}
    payload = {"machine": machine_info(), **about, "results": [r.as_dict() for r in results]}
    paths["benchmark.json"].write_text(json.dumps(payload, indent=2) + "\n")
    with open(paths["benchmark.csv"], "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["device", "variant", "batch_size", "threads", *STATS, "max_rel_diff", "agrees", "skipped"]
        )
        for r in results:
            if isinstance(r, Skipped):
                writer.writerow([r.device, r.variant, "", "", *[""] * len(STATS), "", "", r.reason])
            else:
                stats = [f"{r.stats[s]:.6g}" for s in STATS]
                writer.writerow(
                    [r.device, r.variant, r.batch_size, r.threads, *stats, r.max_rel_diff, r.agrees, ""]
                )
    latency_figure(results).savefig(paths["latency.png"], dpi=120)
    return paths
