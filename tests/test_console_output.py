"""Tables printed into a pipe or a log file (``| tee``, CI) keep every value whole.

Rich lays a table out to 80 columns when stdout is not a terminal and cuts what does not fit
("sigmo…"); :func:`lightning_labs.runtime.console.print_rich` lets the width follow the table there,
and folds columns on a narrow screen instead of cutting them.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_compare_order import write_job

from lightning_labs.inference.latency import Measurement, Skipped
from lightning_labs.inference.latency_report import results_table
from lightning_labs.runtime.console import print_rich

LAYERS = "[64,128,M,256,256,M,512,512,M,512,512,M]"
JOBS = {  # job: act, pool, lr, test/acc, params
    "0": ("sigmoid", "avg", "0.000123456789", 0.9876, 9231114),
    "1": ("relu", "max", "0.0300000001", 0.9012, 61706),
}


def test_compare_into_a_pipe_prints_every_value_and_header_whole(tmp_path: Path) -> None:
    root = tmp_path / "a-sweep-directory-with-a-rather-long-name"
    for job, (act, pool, lr, acc, params) in JOBS.items():
        overrides = [
            f"model.act={act}",
            f"model.pool={pool}",
            f"optimizer.lr={lr}",
            f"model.net.layers={LAYERS}",
        ]
        metrics = {"test/acc": acc, "test/loss": 1 - acc, "val/acc_best": acc, "model/params": params}
        write_job(root, job, overrides[:-1] + [overrides[-1]] * (job == "0"), metrics, seconds=1234.5)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    result = subprocess.run(
        [sys.executable, "-m", "lightning_labs.compare", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "…" not in out
    table = out.split("Wrote ")[0]
    assert max(len(line) for line in table.splitlines()) > 80  # wider than rich's default, so not cut to it
    for job, (act, pool, lr, acc, _) in JOBS.items():
        row = next(line for line in table.splitlines() if line.startswith(f"│ {job} "))
        for value in (act, pool, lr, f"{acc:.4f}", f"{1 - acc:.4f}", "1234.5"):
            assert f" {value} " in row, (value, row)
    assert " 9.23M " in table and " 61.7K " in table and f" {LAYERS} " in table
    for header in ("act", "pool", "lr", "layers", "test/acc", "val/acc_best", "seconds", "params"):
        assert f" {header} " in table, header
    footnote = "act = model.act, pool = model.pool, lr = optimizer.lr, layers = model.net.layers"
    assert footnote + ", params = model/params" in table
    assert str(root) in table  # the title


def latency_results() -> list[Measurement | Skipped]:
    return [
        Measurement("cpu", "eager", 1, [1.0, 1.2, 1.1], threads=2, max_rel_diff=0.0, agrees=True),
        Measurement("cpu", "torchscript", 256, [51.25, 52.5, 50.0], threads=2, max_rel_diff=0.0, agrees=True),
        Skipped("cuda", "fp16", "fp16 autocast needs a CUDA device"),
    ]


def test_the_latency_table_into_a_file_keeps_every_value_whole() -> None:
    file = io.StringIO()
    print_rich(results_table(latency_results()), file=file)
    out = file.getvalue()
    assert "…" not in out
    for value in (
        "eager",
        "torchscript",
        "fp16",
        "cuda",
        "51.250",
        "4,995",
        "skipped: fp16 autocast needs a CUDA device",
    ):
        assert value in out, value


class Screen(io.StringIO):
    """A terminal's file: rich fits what it prints to the screen's width (COLUMNS)."""

    def isatty(self) -> bool:
        return True


def test_on_a_narrow_screen_columns_fold_instead_of_being_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    screen = Screen()
    print_rich(results_table(latency_results()), file=screen)
    out = re.sub(r"\x1b\[[0-9;]*m", "", screen.getvalue())  # styles (bold, dim) are not columns
    assert max(len(line) for line in out.splitlines()) <= 60
    assert "…" not in out
    folded = "".join(line.split("│")[2].strip() for line in out.splitlines() if line.count("│") > 3)
    assert "torchscript" in folded  # the variant column, read down its lines
