"""``python -m lightning_labs.compare DIR [DIR ...]`` (or ``ll-compare``): one table and two figures for runs.

    python -m lightning_labs.compare outputs/multirun/train/<date>/<time>
    python -m lightning_labs.compare outputs/multirun/train/<date>/<time> --metric test/loss --curve val/loss
    python -m lightning_labs.compare outputs/train/2026-11-25/* outputs/multirun/train/<date>/<time>

Each DIR is a sweep or a run directory (quoted globs are expanded too). Prints the jobs sorted by
``--metric`` and writes ``comparison.md``, ``comparison.csv``, ``comparison.png`` (a bar per job of
``--metric``) and ``curves.png`` (``--curve`` and ``train/loss`` of every job vs epoch) into DIR, or
into the folder the DIRs share, or ``--out``; see :mod:`lightning_labs.runs.compare`. Jobs that
differ only in ``seed`` are one row (and bar) per setting, mean ± std over the seeds, unless
``--no-group``; an Optuna sweep's best trial is one line under the table. Exits 2, with one line
saying why, when a DIR holds no sweep or run, or no job has the metric.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lightning_labs.compare",
        description="Compare runs: the jobs of one or more sweeps (python -m lightning_labs.train -m ...) "
        "and single runs, as a table, comparison.md/.csv, comparison.png and curves.png.",
    )
    parser.add_argument(
        "dirs",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="outputs/multirun/train/<date>/<time> or outputs/train/<date>/<time>; several, or a glob",
    )
    parser.add_argument(
        "--metric", default="test/acc", help="final metric to sort and chart by (default test/acc)"
    )
    parser.add_argument(
        "--curve", default="val/acc", help="logged scalar drawn per job vs epoch (default val/acc)"
    )
    parser.add_argument(
        "--all", action="store_true", help="also show the runs refused before training (bad settings)"
    )
    parser.add_argument(
        "--no-group",
        action="store_true",
        help="one row per job, also when jobs differ only in seed (default: mean ± std over the seeds)",
    )
    parser.add_argument(
        "--out", type=Path, help="where to write the files (default: DIR, or the folder the DIRs share)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from rich.markup import escape

    from lightning_labs.runs.compare import load_comparison, rich_table, status_lines, write_comparison
    from lightning_labs.runs.discovery import RunDirError
    from lightning_labs.runtime.console import print_rich

    args = parse_args(argv)
    try:
        comparison = load_comparison(args.dirs, args.metric, show_refused=args.all, group=not args.no_group)
    except RunDirError as error:
        print(f"compare: {error}", file=sys.stderr)
        return 2
    print_rich(rich_table(comparison))
    for line in status_lines(comparison):
        print_rich(escape(line))
    paths = write_comparison(comparison, args.out or comparison.root, args.curve)
    print_rich(escape("Wrote " + ", ".join(str(paths[name]) for name in sorted(paths))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
