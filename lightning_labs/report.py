"""``python -m lightning_labs.report RUN_DIR`` (or ``ll-report``): a Markdown report of a run or sweep.

    python -m lightning_labs.report outputs/train/<date>/<time>             # one run
    python -m lightning_labs.report outputs/multirun/train/<date>/<time>    # a sweep: comparison + each job
    python -m lightning_labs.report outputs/benchmark/<date>/<time>         # a latency benchmark

Writes ``RUN_DIR/report/report.md`` and its PNGs beside it (what goes in: see
:mod:`lightning_labs.runs.report`); nothing is re-run, so a report can be rebuilt at any time.
Exits 2, with one line saying why, when RUN_DIR holds no run or sweep.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lightning_labs.runs.discovery import RunDirError
from lightning_labs.runs.report import write_report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lightning_labs.report",
        description="Write RUN_DIR/report/report.md (and its PNGs) from a run's or a sweep's logs.",
    )
    parser.add_argument("run_dir", type=Path, help="a run (outputs/train/<date>/<time>) or a sweep directory")
    parser.add_argument("--metric", default="test/acc", help="a sweep's sort and bar-chart metric")
    parser.add_argument("--curve", default="val/acc", help="a sweep's overlaid curve")
    args = parser.parse_args(argv)
    try:
        target = write_report(args.run_dir, args.metric, args.curve)
    except RunDirError as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    pictures = target.read_text().count("![")
    print(f"Wrote {target} ({pictures} pictures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
