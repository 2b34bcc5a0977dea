"""Comparing the jobs of a real sweep and writing reports of runs and sweeps, from their logs only.

One real 2x2 multirun (pooling x activation, LeNet-5 on real MNIST digits) is run once as a
subprocess, as a user would start it; the tests read it back.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from lightning_labs import compare as compare_command
from lightning_labs import report as report_command
from lightning_labs.data.mnist import BUNDLED_SAMPLE
from lightning_labs.inference.latency import Measurement, Skipped
from lightning_labs.inference.latency_report import write_results
from lightning_labs.runs.compare import load_comparison
from lightning_labs.runs.discovery import find_jobs, load_run
from lightning_labs.training.run import train

REPO = Path(__file__).resolve().parents[1]
MNIST_MINI = REPO.parent / "shared" / "data" / "mnist-mini"
COMBINATIONS = {("max", "relu"), ("max", "sigmoid"), ("avg", "relu"), ("avg", "sigmoid")}
LENET5_PARAMS = "61,706"  # 156 + 2,416 + 48,120 (convs) + 10,164 + 850 (fc) for 10 classes
QUICK = [
    "trainer=cpu",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "callbacks.rich_progress_bar=null",
    "logger.tensorboard.log_graph=false",
]


def run_module(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m lightning_labs.train -m model.pool=max,avg model.act=relu,sigmoid``, 2 short epochs."""
    root = MNIST_MINI if (MNIST_MINI / "MNIST" / "raw").is_dir() else BUNDLED_SAMPLE
    sweep_dir = tmp_path_factory.mktemp("sweep")
    result = run_module(
        "lightning_labs.train",
        "-m",
        "model=lenet5",
        "model.pool=max,avg",
        "model.act=relu,sigmoid",
        f"data.root={root}",
        *QUICK,
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(find_jobs(sweep_dir)) == 4
    return sweep_dir


def final_metrics(job: Path) -> dict:
    return json.loads((job / "metrics.json").read_text())


def image_links(markdown: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)


def assert_links_resolve(report_md: Path) -> list[str]:
    links = image_links(report_md.read_text())
    for target in links:
        assert not Path(target).is_absolute() and not target.startswith(("http:", "https:")), target
        assert (report_md.parent / target).is_file(), target
    return links


def assert_png(path: Path, min_bytes: int = 10_000) -> None:
    assert path.stat().st_size > min_bytes, path
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= 600 and image.height >= 250, (path, image.size)


def test_compare_tabulates_every_job_with_the_settings_that_differ(sweep: Path) -> None:
    assert compare_command.main([str(sweep)]) == 0

    comparison = load_comparison(sweep)
    assert comparison.keys == ["model.pool", "model.act"]
    rows = comparison.rows()
    assert len(rows) == 4
    assert {(row["model.pool"], row["model.act"]) for row in rows} == COMBINATIONS
    for row in rows:
        summary = final_metrics(sweep / str(row["job"]))
        for name in ("test/acc", "test/loss", "val/acc_best", "val/acc"):
            assert row[name] == summary["metrics"][name], (row["job"], name)
        assert row["seconds"] == summary["seconds"] and row["epochs"] == summary["epochs"] == 2
    accuracies = [row["test/acc"] for row in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    losses = [run.value("test/loss") for run in load_comparison(sweep, "test/loss").runs]
    assert losses == sorted(losses)

    with open(sweep / "comparison.csv", newline="") as file:
        table = list(csv.DictReader(file))
    assert [row["job"] for row in table] == [row["job"] for row in rows]
    for row in table:
        assert float(row["test/acc"]) == final_metrics(sweep / row["job"])["metrics"]["test/acc"]
        assert row["finished"] == "True"
    markdown = (sweep / "comparison.md").read_text()
    assert markdown.count("\n| ") == 5  # header + 4 jobs
    assert "| model.pool | model.act |" in markdown and "Unfinished jobs: none." in markdown
    assert markdown.count(" | 2 | 61.7K | 417K |\n") == 4  # epochs, then model/params and model/macs
    assert "\nShared by all jobs: `model=lenet5` " in markdown  # listed once, not as columns
    assert_links_resolve(sweep / "comparison.md")
    for name in ("comparison.png", "curves.png"):
        assert_png(sweep / name)

    # Curves come from the event files: a point per epoch for each job.
    for run in comparison.runs:
        assert [epoch for epoch, _ in run.events.by_epoch("val/acc")] == [1, 2]


def test_an_unfinished_job_is_listed_and_keeps_its_settings(sweep: Path, tmp_path: Path, capsys) -> None:
    copy = shutil.copytree(sweep, tmp_path / "sweep", ignore=shutil.ignore_patterns("report", "comparison.*"))
    (copy / "2" / "metrics.json").unlink()
    assert compare_command.main([str(copy)]) == 0
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps to the terminal's width
    assert "Unfinished jobs (no metrics.json: crashed, stopped or still running): 2." in printed

    comparison = load_comparison(copy)
    last = comparison.runs[-1]
    assert [r.name for r in comparison.unfinished] == ["2"] and last.name == "2" and not last.finished
    assert (last.settings["model.pool"], last.settings["model.act"]) == ("avg", "relu")  # overrides.yaml
    markdown = (copy / "comparison.md").read_text()
    assert "| 2 (unfinished) | `avg` | `relu` | - |" in markdown
    assert "Unfinished jobs (no metrics.json" in markdown and "): 2." in markdown
    with open(copy / "comparison.csv", newline="") as file:
        assert [row["finished"] for row in csv.DictReader(file)] == ["True", "True", "True", "False"]
    assert_png(copy / "comparison.png")


def test_a_directory_that_holds_no_run_exits_2_with_one_message(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "no-such-sweep"
    result = run_module("lightning_labs.compare", str(missing), timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(missing) in result.stderr and "python -m lightning_labs.train -m" in result.stderr

    empty = tmp_path / "empty"
    empty.mkdir()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a run")
    for main, target, expected in (
        (compare_command.main, empty, "is empty"),
        (compare_command.main, a_file, "not a directory"),
        (report_command.main, missing, "no such directory"),
        (report_command.main, empty, "is empty"),
    ):
        assert main([str(target)]) == 2
        err = capsys.readouterr().err
        assert str(target) in err and expected in err and err.count("\n") == 1


def test_the_report_of_one_run_shows_environment_model_curves_metrics_and_pictures(sweep: Path) -> None:
    job = sweep / "0"
    assert report_command.main([str(job)]) == 0
    report_md = job / "report" / "report.md"
    text = report_md.read_text()
    links = assert_links_resolve(report_md)

    environment = json.loads((job / "environment.json").read_text())
    assert f"| host | {environment['hostname']} |" in text and f"| torch | {environment['torch']} |" in text
    assert LENET5_PARAMS in text
    assert "<details><summary>" in text and "```yaml" in text and "limit_train_batches: 3" in text
    assert "- `model.pool=max`" in text
    assert f"| test/acc | {final_metrics(job)['metrics']['test/acc']:.4f} |" in text
    assert links[:3] == ["curves.png", "predictions_test.png", "confusion_matrix_test.png"]
    assert "feature_maps_input.png" in links
    headings = re.findall(r"^## .+$", text, re.MULTILINE)
    assert headings == [
        "## Environment",
        "## Configuration",
        "## Model",
        "## Curves",
        "## Final metrics",
        "## Pictures",
        "## Latency",
    ]
    assert "No benchmark.json" in text
    assert_png(job / "report" / "curves.png")
    assert_png(job / "report" / "predictions_test.png")


def test_the_report_of_a_sweep_has_the_comparison_then_each_job(sweep: Path) -> None:
    assert report_command.main([str(sweep)]) == 0
    report_md = sweep / "report" / "report.md"
    text = report_md.read_text()
    links = assert_links_resolve(report_md)
    assert links[:2] == ["comparison.png", "curves.png"]
    assert len(re.findall(r"^### Job \d: pool=(max|avg), act=(relu|sigmoid)$", text, re.MULTILINE)) == 4
    for job in "0123":
        assert f"job-{job}/predictions_test.png" in links and f"job-{job}/confusion_matrix_test.png" in links
    assert text.index("## Comparison") < text.index("## Jobs")


def test_the_report_of_a_run_without_event_files_says_what_is_missing(make_cfg) -> None:
    cfg = make_cfg("logger=none")
    train(cfg)
    run = Path(cfg.paths.output_dir)
    assert not list(run.rglob("events.out.tfevents.*"))

    assert report_command.main([str(run)]) == 0
    report_md = run / "report" / "report.md"
    text = report_md.read_text()
    assert image_links(text) == []
    for section in ("Model", "Curves", "Pictures"):
        body = text.split(f"## {section}\n\n", 1)[1].split("\n\n## ", 1)[0]
        assert body.startswith("No TensorBoard event files") and "\n" not in body, section
    assert f"| test/acc | {load_run(run).metrics['test/acc']:.4f} |" in text
    assert "## Environment" in text and "| seed | 42 |" in text


def test_the_report_of_a_benchmark_has_its_latency_table(tmp_path: Path) -> None:
    results = [
        Measurement("cpu", "eager", 1, [1.0, 1.2, 1.1, 0.9], threads=2, max_rel_diff=0.0, agrees=True),
        Skipped("cpu", "fp16", "fp16 autocast needs a CUDA device"),
    ]
    write_results(results, tmp_path, {"model": "lenet5", "input_shape": [1, 28, 28]})

    assert report_command.main([str(tmp_path)]) == 0
    report_md = tmp_path / "report" / "report.md"
    text = report_md.read_text()
    assert assert_links_resolve(report_md) == ["latency.png"]
    assert "# Benchmark report: lenet5" in text
    assert "| cpu | eager | 1 | 1.050 |" in text and "skipped: fp16 autocast needs a CUDA device" in text
    assert "No metrics.json: a benchmark run trains nothing." in text
