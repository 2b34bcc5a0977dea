"""The row order of ``compare`` on hand-written sweeps: which way each metric sorts, where jobs
without a value go, an unknown ``--metric``, the ``--metric``/``--curve`` flags and ties.

Each sweep is written by hand in the layout :mod:`lightning_labs.runs.discovery` reads
(``<sweep>/<n>/metrics.json`` and ``<sweep>/<n>/.hydra/overrides.yaml``), with values chosen so
that every wrong order (reversed, job order, a metric sorted the wrong way) differs from the right one.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lightning_labs import compare as compare_command
from lightning_labs.runs import compare, plots
from lightning_labs.runs.discovery import RunDirError

MEAN_MS = "latency/cpu/eager/bs1/mean_ms"
IMAGES_PER_S = "latency/cpu/eager/bs1/images_per_s"


def write_job(
    sweep: Path,
    name: str,
    overrides: list[str],
    metrics: dict[str, float] | None,
    seconds: float = 10.0,
    epochs: int = 2,
) -> Path:
    """One job directory; ``metrics=None`` leaves out metrics.json, as a crashed or running job does."""
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        summary: dict[str, Any] = {
            "metrics": metrics,
            "overrides": overrides,
            "epochs": epochs,
            "seconds": seconds,
        }
        (job / "metrics.json").write_text(json.dumps(summary))  # NaN is written as JSON's NaN
    return job


def order(comparison: compare.Comparison) -> list[str]:
    return [run.name for run in comparison.runs]


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Three finished jobs and an unfinished one (job 2). Job 1 is best at everything, job 3 is worst
    at accuracy and loss but second in time and latency, so each metric gives its own order."""
    root = tmp_path / "sweep"
    finished = {
        # job: learning rate, (test/acc, test/loss, test/error, mean_ms, images/s), seconds
        "0": ("0.1", (0.90, 0.30, 0.10, 3.0, 333.0), 30.0),
        "1": ("0.01", (0.95, 0.20, 0.05, 1.0, 1000.0), 10.0),
        "3": ("0.0001", (0.80, 0.50, 0.20, 2.0, 500.0), 20.0),
    }
    for job, (lr, values, seconds) in finished.items():
        metrics = dict(
            zip(("test/acc", "test/loss", "test/error", MEAN_MS, IMAGES_PER_S), values, strict=True)
        )
        write_job(root, job, ["model=lenet5", f"optimizer.lr={lr}"], metrics, seconds=seconds)
    write_job(root, "2", ["model=lenet5", "optimizer.lr=0.001"], None)
    return root


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("test/acc", ["1", "0", "3", "2"]),  # highest first
        (IMAGES_PER_S, ["1", "3", "0", "2"]),
        ("test/loss", ["1", "0", "3", "2"]),  # lowest first: loss, seconds, *_ms, error
        ("seconds", ["1", "3", "0", "2"]),
        (MEAN_MS, ["1", "3", "0", "2"]),
        ("test/error", ["1", "0", "3", "2"]),
    ],
)
def test_rows_sort_best_first_in_the_metric_s_direction_and_unfinished_jobs_last(
    sweep: Path, metric: str, expected: list[str]
) -> None:
    comparison = compare.load_comparison(sweep, metric)
    assert order(comparison) == expected
    direction = (
        "lowest first" if metric in ("test/loss", "seconds", MEAN_MS, "test/error") else "highest first"
    )
    assert comparison.order_note == f"sorted by {metric}, {direction}"
    assert [run.name for run in comparison.unfinished] == ["2"]
    assert comparison.columns[0] == metric  # the sort column comes first


def test_finished_jobs_without_the_metric_come_after_those_with_it_and_before_unfinished_ones(
    tmp_path: Path,
) -> None:
    root = tmp_path / "sweep"
    write_job(root, "0", ["optimizer.lr=0.1"], None)  # unfinished
    write_job(root, "1", ["optimizer.lr=0.01"], {"val/acc": 0.7})  # finished, never tested
    write_job(root, "2", ["optimizer.lr=0.001"], {"test/loss": 0.4, "val/acc": 0.8})
    write_job(root, "3", ["optimizer.lr=0.0001"], {"test/loss": 0.3, "val/acc": 0.6})
    for metric, expected in (("test/loss", ["3", "2", "1", "0"]), ("val/acc", ["2", "1", "3", "0"])):
        assert order(compare.load_comparison(root, metric)) == expected, metric


@pytest.mark.parametrize(
    ("metric", "expected"), [("test/acc", ["2", "1", "0", "3"]), ("test/loss", ["1", "2", "0", "3"])]
)
def test_a_diverged_job_with_nan_or_inf_metrics_sorts_after_the_finite_ones(
    tmp_path: Path, metric: str, expected: list[str]
) -> None:
    """NaN compares false with everything, so a plain sort leaves it wherever it happens to be
    (here first, as job 0): it must go after every real value, in both directions."""
    root = tmp_path / "sweep"
    write_job(root, "0", ["optimizer.lr=10"], {"test/acc": math.nan, "test/loss": math.nan})
    write_job(root, "1", ["optimizer.lr=0.1"], {"test/acc": 0.8, "test/loss": 0.2})
    write_job(root, "2", ["optimizer.lr=0.01"], {"test/acc": 0.9, "test/loss": 0.5})
    write_job(root, "3", ["optimizer.lr=1"], {"test/acc": -math.inf, "test/loss": math.inf})
    comparison = compare.load_comparison(root, metric)
    assert order(comparison) == expected
    assert compare_command.main([str(root), "--metric", metric]) == 0  # the table and figures take NaN too
    table = list(csv.DictReader((root / "comparison.csv").read_text().splitlines()))
    assert [row["job"] for row in table] == order(comparison)
    assert table[2][metric] == "nan"  # shown as it is, not hidden


def test_ties_keep_the_job_order_in_both_directions(tmp_path: Path) -> None:
    """Equal values keep job-number order (2 before 10, not the string order), whichever way the
    metric sorts, so a re-run of compare never reshuffles equal jobs."""
    root = tmp_path / "sweep"
    for job, acc, loss in (("10", 0.9, 0.3), ("2", 0.9, 0.3), ("1", 0.9, 0.3), ("3", 0.95, 0.1)):
        write_job(root, job, [f"seed={job}"], {"test/acc": acc, "test/loss": loss})
    assert order(compare.load_comparison(root, "test/acc")) == ["3", "1", "2", "10"]
    assert order(compare.load_comparison(root, "test/loss")) == ["3", "1", "2", "10"]


def test_an_unknown_metric_is_refused_with_the_names_to_choose_from(sweep: Path, capsys) -> None:
    with pytest.raises(RunDirError) as raised:
        compare.load_comparison(sweep, "test/accuracy")
    names = f"epochs, {IMAGES_PER_S}, {MEAN_MS}, seconds, test/acc, test/error, test/loss"
    assert str(raised.value) == (
        f"--metric test/accuracy is in no job's metrics.json under {sweep}; choose from: {names}"
    )
    assert compare_command.main([str(sweep), "--metric", "test/accuracy"]) == 2
    assert capsys.readouterr().err == f"compare: {raised.value}\n"
    assert not (sweep / "comparison.md").exists()  # nothing written for a refused metric


def test_the_unknown_metric_message_and_exit_status_from_the_command_line(sweep: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lightning_labs.compare", str(sweep), "--metric", "val/acc"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith("compare: --metric val/acc is in no job's metrics.json under ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""


def write_scalars(job: Path, scalars: dict[str, list[float]]) -> None:
    """TensorBoard event files as Lightning writes them: one value per epoch, and the ``epoch`` scalar."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(job / "tensorboard"))
    for epoch in range(len(next(iter(scalars.values())))):
        writer.add_scalar("epoch", epoch, global_step=10 * (epoch + 1))
        for tag, values in scalars.items():
            writer.add_scalar(tag, values[epoch], global_step=10 * (epoch + 1))
    writer.close()


def test_the_metric_and_curve_flags_choose_the_sort_the_chart_and_the_curves(
    sweep: Path, monkeypatch
) -> None:
    write_scalars(sweep / "0", {"val/loss": [0.9, 0.6], "val/acc": [0.5, 0.7], "train/loss": [1.0, 0.8]})
    write_scalars(sweep / "1", {"val/loss": [0.8, 0.4], "val/acc": [0.6, 0.9], "train/loss": [0.9, 0.5]})
    drawn: dict[str, Any] = {}

    def keep_figures(function_name: str):
        real = getattr(plots, function_name)

        def spy(*args: Any, **kwargs: Any):
            drawn[function_name] = figure = real(*args, **kwargs)
            return figure

        return spy

    for name in ("bar_chart", "sweep_curves"):
        monkeypatch.setattr(plots, name, keep_figures(name))

    assert compare_command.main([str(sweep), "--metric", "seconds", "--curve", "val/loss"]) == 0

    markdown = (sweep / "comparison.md").read_text()
    assert "| job | optimizer.lr | **seconds** | test/acc | test/loss | epochs |" in markdown
    assert "Rows sorted by seconds, lowest first; jobs without it last." in markdown
    with open(sweep / "comparison.csv", newline="") as file:
        assert [(row["job"], row["seconds"]) for row in csv.DictReader(file)] == [
            ("1", "10.0"),
            ("3", "20.0"),
            ("0", "30.0"),
            ("2", ""),
        ]
    bars = drawn["bar_chart"].axes[0]
    assert bars.get_xlabel() == "seconds"
    assert [patch.get_width() for patch in bars.patches] == [10.0, 20.0, 30.0, 0.0]
    assert [tick.get_text() for tick in bars.get_yticklabels()] == [
        "lr=0.01",
        "lr=0.0001",
        "lr=0.1",
        "lr=0.001 (unfinished)",
    ]
    panels = drawn["sweep_curves"].axes
    assert [axis.get_title() for axis in panels] == ["val/loss", "train/loss"]
    lines = {line.get_label(): list(line.get_ydata()) for line in panels[0].get_lines()}
    assert lines == {"lr=0.01": pytest.approx([0.8, 0.4]), "lr=0.1": pytest.approx([0.9, 0.6])}
    assert [list(line.get_xdata()) for line in panels[0].get_lines()] == [[1.0, 2.0], [1.0, 2.0]]


def test_without_flags_the_sort_is_test_acc_and_the_curve_val_acc(sweep: Path, monkeypatch) -> None:
    tags: list[list[str]] = []
    real = plots.sweep_curves

    def record_tags(jobs: Any, curve_tags: list[str], title: str = "") -> Any:
        tags.append(list(curve_tags))
        return real(jobs, curve_tags, title)

    monkeypatch.setattr(plots, "sweep_curves", record_tags)
    assert compare_command.main([str(sweep)]) == 0
    assert tags == [["val/acc", "train/loss"]]
    assert (
        "Rows sorted by test/acc, highest first; jobs without it last."
        in (sweep / "comparison.md").read_text()
    )


def log_lines(job: Path, *records: tuple[str, str]) -> None:
    """``train.log`` as the run's file handler writes it: ``[time][logger][LEVEL] - message``."""
    text = "".join(
        f"[2026-11-25 18:55:21,579][lightning_labs.runtime.errors][{level}] - {message}\n"
        for level, message in records
    )
    (job / "train.log").write_text(text)


def log_error(job: Path, error: str) -> None:
    """The records of a failed sweep job (runtime/errors.py): the traceback under a heading first."""
    log_lines(job, ("INFO", "Seed set to 42"), ("ERROR", "Traceback of the error:"))
    with open(job / "train.log", "a") as file:
        file.write(f'Traceback (most recent call last):\n  File "run.py", line 1, in <module>\n{error}\n')
        file.write(
            f"[2026-11-25 18:55:22,001][lightning_labs.runtime.errors][ERROR] - {error} "
            f"(traceback in {job / 'train.log'}; HYDRA_FULL_ERROR=1 prints it here)\n"
        )


@pytest.fixture
def troubled_sweep(tmp_path: Path) -> Path:
    """Job 0 finished; 1 failed while training (a checkpoint was saved); 2 was refused before
    training (its error, nothing else); 3 has no error (killed, or running); 4 was stopped by SIGTERM."""
    root = tmp_path / "sweep"
    write_job(root, "0", ["optimizer.lr=0.1"], {"test/acc": 0.9})
    failed = write_job(root, "1", ["optimizer.lr=0.01"], None)
    (failed / "checkpoints").mkdir()
    (failed / "checkpoints" / "last.ckpt").write_bytes(b"")
    log_error(failed, "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")
    log_error(write_job(root, "2", ["optimizer.lr=-5"], None), "ValueError: Invalid setting: optimizer.lr=-5")
    log_lines(write_job(root, "3", ["optimizer.lr=0.001"], None), ("INFO", "Epoch 1/15: train/loss 0.52"))
    stopped = write_job(root, "4", ["optimizer.lr=0.0001"], None)
    (stopped / "checkpoints").mkdir()
    (stopped / "checkpoints" / "last.ckpt").write_bytes(b"")
    log_lines(
        stopped,
        ("ERROR", "Stopped by SIGTERM. Resume with ckpt_path=last (or the path of the run's last.ckpt)."),
    )
    return root


def test_failed_refused_stopped_and_unfinished_jobs_are_told_apart_with_their_errors(
    troubled_sweep: Path, capsys
) -> None:
    comparison = compare.load_comparison(troubled_sweep)
    assert [(run.name, run.status) for run in comparison.runs] == [
        ("0", "finished"),
        ("1", "failed"),
        ("3", "unfinished"),
        ("4", "stopped"),
    ]
    assert [run.name for run in comparison.left_out] == ["2"]  # refused: nothing to compare
    log = troubled_sweep / "1" / "train.log"
    assert compare.error_lines(comparison) == [
        f"Job 1 failed: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (log: {log})",
        "Job 4 stopped: Stopped by SIGTERM. Resume with ckpt_path=last (or the path of the run's last.ckpt). "
        f"(log: {troubled_sweep / '4' / 'train.log'})",
        "Job 2 refused before training, left out (--all shows it): "
        "ValueError: Invalid setting: optimizer.lr=-5",
    ]
    assert compare_command.main([str(troubled_sweep)]) == 0
    printed = capsys.readouterr().out
    assert "Job 1 failed: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (log: " in printed
    assert "Unfinished jobs (no metrics.json: crashed, stopped or still running): 3." in printed
    markdown = (troubled_sweep / "comparison.md").read_text()
    for row in (
        "| 1 (failed) | `0.01` | - |",
        "| 3 (unfinished) | `0.001` | - |",
        "| 4 (stopped) | `0.0001` | - |",
    ):
        assert row in markdown
    assert "(unfinished)" not in markdown.split("| 3 (unfinished)")[0]  # a crash is never called unfinished
    assert "\n| 2 " not in markdown and "Job 2 refused before training" in markdown

    assert compare_command.main([str(troubled_sweep), "--all"]) == 0
    with open(troubled_sweep / "comparison.csv", newline="") as file:
        statuses = [(row["job"], row["status"]) for row in csv.DictReader(file)]
    assert statuses == [
        ("0", "finished"),
        ("1", "failed"),
        ("2", "refused"),
        ("3", "unfinished"),
        ("4", "stopped"),
    ]
    assert "| 2 (refused) | `-5` | - |" in (troubled_sweep / "comparison.md").read_text()


def write_config(job: Path, model: str, act: str, data_target: str) -> None:
    """Parts of the composed config, as ``.hydra/config.yaml`` holds them (interpolations unresolved)."""
    (job / ".hydra" / "config.yaml").write_text(
        f"task_name: train\nmodel:\n  name: {model}\n  act: {act}\n  net:\n    act: ${{..act}}\n"
        f"data:\n  _target_: {data_target}\n"
    )


def test_model_and_data_come_from_the_composed_config_with_params_and_macs_columns(tmp_path: Path) -> None:
    """Presets (experiment=...) choose the model: the column shows it, not the override's name."""
    root = tmp_path / "sweep"
    sizes = {"model/params": 61706, "model/macs": 416920}
    write_job(root, "0", ["experiment=lenet5_mnist"], {"test/acc": 0.95, **sizes})
    overrides = ["experiment=cnn_cifar10", "model.act=relu", "model.net.act=relu"]
    write_job(root, "1", overrides, {"test/acc": 0.7})  # an older run: no sizes logged
    write_config(root / "0", "lenet5", "sigmoid", "lightning_labs.data.MNISTData")  # the preset's act
    write_config(root / "1", "cnn", "relu", "lightning_labs.data.CIFAR10Data")
    comparison = compare.load_comparison(root)
    assert comparison.keys == ["model", "data", "experiment", "model.act", "model.net.act"]
    assert compare_command.main([str(root)]) == 0
    markdown = (root / "comparison.md").read_text()
    assert "| job | model | data | experiment | model.act | model.net.act | **test/acc** |" in markdown
    assert "| seconds | epochs | params | MACs |\n" in markdown
    row = "| 0 | `lenet5` | `mnist` | `lenet5_mnist` | `sigmoid` | `sigmoid` | 0.9500 | 10.0 | 2 |"
    assert row + " 61.7K | 417K |" in markdown  # model.net.act: ${..act} resolved
    assert (
        "| 1 | `cnn` | `cifar10` | `cnn_cifar10` | `relu` | `relu` | 0.7000 | 10.0 | 2 | - | - |" in markdown
    )
    with open(root / "comparison.csv", newline="") as file:
        first = next(csv.DictReader(file))
    assert (first["model"], first["model/params"], first["model/macs"]) == ("lenet5", "61706", "416920")


def test_several_directories_and_a_quoted_glob_make_one_comparison(tmp_path: Path, capsys) -> None:
    for sweep, accuracies in (("sweep-a", (0.5, 0.9)), ("sweep-b", (0.7, 0.6))):
        for job, acc in enumerate(accuracies):
            write_job(tmp_path / sweep, str(job), [f"seed={job}"], {"test/acc": acc})
    run = write_job(tmp_path / "runs", "13-00-58", ["optimizer.lr=0.1"], {"test/acc": 0.8})
    (tmp_path / "sweep-a.log").write_text("a file the glob matches too")
    comparison = compare.load_comparison([tmp_path / "sweep-*", run])
    assert [r.name for r in comparison.runs] == [
        "sweep-a/1",
        "runs/13-00-58",
        "sweep-b/0",
        "sweep-b/1",
        "sweep-a/0",
    ]
    assert comparison.root == tmp_path.resolve()

    out = tmp_path / "together"
    assert (
        compare_command.main([str(tmp_path / "sweep-a"), str(tmp_path / "sweep-b"), "--out", str(out)]) == 0
    )
    with open(out / "comparison.csv", newline="") as file:
        assert [row["job"] for row in csv.DictReader(file)] == [
            "sweep-a/1",
            "sweep-b/0",
            "sweep-b/1",
            "sweep-a/0",
        ]
    assert not (tmp_path / "sweep-a" / "comparison.md").exists()
    capsys.readouterr()
    assert compare_command.main([str(tmp_path / "sweep-a"), str(tmp_path / "no-such-*")]) == 2
    assert "no-such-*: no such directory" in capsys.readouterr().err


class FakeEvents:
    """What :func:`plots.sweep_curves` reads of a run's events: values by epoch."""

    def __init__(self, **curves: list[float]) -> None:
        self.curves = {tag.replace("__", "/"): values for tag, values in curves.items()}

    def by_epoch(self, tag: str) -> list[tuple[float, float]]:
        return [(float(epoch), value) for epoch, value in enumerate(self.curves.get(tag, []), start=1)]


def test_curves_have_whole_epoch_ticks_and_a_loss_axis_that_a_diverged_job_cannot_flatten(
    tmp_path: Path,
) -> None:
    import warnings

    good = [("lr=0.01", FakeEvents(train__loss=[2.3, 0.5, 0.3], val__acc=[0.8, 0.9, 0.95]))]
    good += [("lr=0.001", FakeEvents(train__loss=[2.2, 0.6, 0.35], val__acc=[0.7, 0.85, 0.9]))]
    diverged = (
        "a much longer label: lr=100, act=sigmoid, pool=avg, seed=3",
        FakeEvents(train__loss=[2.3, 1e6, 3e7]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing for the console
        figure = plots.sweep_curves([*good, diverged], ["val/acc", "train/loss"])
        plots.save(figure, tmp_path / "curves.png")
        bars = plots.bar_chart(["a", "b", "c"], [None, math.nan, 0.5], "test/acc", "no value, NaN, a value")
        plots.save(bars, tmp_path / "comparison.png")
    assert [text.get_text() for text in bars.axes[0].texts] == ["no value", "nan", "0.5000"]
    accuracy, loss = figure.axes[:2]
    for axis in (accuracy, loss):
        low, high = axis.get_xlim()
        assert (low, high) == (0.5, 3.5)
        ticks = [t for t in axis.get_xticks() if low <= t <= high]
        assert ticks == [1.0, 2.0, 3.0]
    bottom, top = loss.get_ylim()
    assert 2.3 < top < 3.0 and bottom < 0.3  # every ordinary point, the first epoch's too, on the chart
    assert loss.get_ylabel() == "train/loss\n(2 points above 2.4, off the chart)"
    assert accuracy.get_ylabel() == "val/acc"
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend[2] == "a much longer label: lr=100,\nact=sigmoid, pool=avg, seed=3"  # wrapped, not cut

    ordinary = plots.sweep_curves(good, ["train/loss"]).axes[0]
    assert ordinary.get_ylabel() == "train/loss" and ordinary.get_ylim()[1] > 2.3
    one_epoch = plots.sweep_curves([("lr=0.1", FakeEvents(train__loss=[2.3]))], ["train/loss"]).axes[0]
    assert [t for t in one_epoch.get_xticks() if 0.5 <= t <= 1.5] == [1.0]
