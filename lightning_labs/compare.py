"""``python -m lightning_labs.compare SWEEP_DIR`` (or ``ll-compare``): one table and two figures for a sweep.

    python -m lightning_labs.compare outputs/multirun/train/<date>/<time>
    python -m lightning_labs.compare outputs/multirun/train/<date>/<time> --metric test/loss --curve val/loss

Prints the jobs sorted by ``--metric`` and writes into SWEEP_DIR: ``comparison.md``,
``comparison.csv``, ``comparison.png`` (a bar per job of ``--metric``) and ``curves.png``
(``--curve`` and ``train/loss`` of every job vs epoch); see :mod:`lightning_labs.runs.compare`.
Exits 2, with one line saying why, when SWEEP_DIR holds no sweep or run, or no job has the metric.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import rich

from lightning_labs.runs.compare import load_comparison, rich_table, unfinished_line, write_comparison
from lightning_labs.runs.discovery import RunDirError


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lightning_labs.compare",
        description="Compare the jobs of a sweep (python -m lightning_labs.train -m ...): "
        "a table, comparison.md/.csv, comparison.png and curves.png in the sweep directory.",
    )
    parser.add_argument(
        "sweep_dir", type=Path, help="outputs/multirun/train/<date>/<time> (or one run directory)"
    )
    parser.add_argument(
        "--metric", default="test/acc", help="final metric to sort and chart by (default test/acc)"
    )
    parser.add_argument(
        "--curve", default="val/acc", help="logged scalar drawn per job vs epoch (default val/acc)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        comparison = load_comparison(args.sweep_dir, args.metric)
    except RunDirError as error:
        print(f"compare: {error}", file=sys.stderr)
        return 2
    rich.print(rich_table(comparison))
    if comparison.unfinished:
        rich.print(f"[yellow]{unfinished_line(comparison)}[/yellow]")
    paths = write_comparison(comparison, comparison.root, args.curve)
    rich.print("Wrote " + ", ".join(str(paths[name]) for name in sorted(paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
