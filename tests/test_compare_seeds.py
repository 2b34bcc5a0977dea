"""``compare`` of a sweep over seeds: one row per setting with mean ± std and n, ``--no-group``,
and an Optuna sweep's trials with their sampled parameters and its best trial.

One real sweep (``seed=1,2`` x ``model.act=relu,sigmoid``, one short epoch of LeNet-5 on MNIST)
is run once as a subprocess, as a user would start it; every expected number is recomputed here
from the jobs' own ``metrics.json``.
"""

from __future__ import annotations

import csv
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from lightning_labs import compare as compare_command
from lightning_labs.data.mnist import BUNDLED_SAMPLE
from lightning_labs.runs import compare
from lightning_labs.runs.discovery import find_jobs, read_json
from lightning_labs.runs.search import short_setting

MNIST_MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-mini"
LR = "0.0012345678"  # the sweep's fixed learning rate, rewritten per job for the Optuna trials
# What an Optuna study sampled for each of the four jobs, and how the tables write it (4 digits).
TRIAL_LRS = {"0": "0.00034567891", "1": "0.0012345678", "2": "0.023456789", "3": "0.0045678912"}
SHORT_LRS = {"0": "0.0003457", "1": "0.001235", "2": "0.02346", "3": "0.004568"}
BASIC_SWEEPER = "_target_: hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
OPTUNA_SWEEPER = "_target_: hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
SEED_COLUMNS = ["jobs", "model.act"]
SEED_COLUMNS += [f"{c}_{what}" for c in ("test/acc", "test/loss") for what in ("mean", "std")]


@pytest.fixture(scope="module")
def seed_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m lightning_labs.train -m seed=1,2 model.act=relu,sigmoid trainer=cpu debug=fast``."""
    root = MNIST_MINI if (MNIST_MINI / "MNIST" / "raw").is_dir() else BUNDLED_SAMPLE
    sweep_dir = tmp_path_factory.mktemp("seeds")
    command = ["lightning_labs.train", "-m", "model=lenet5", "seed=1,2", "model.act=relu,sigmoid"]
    command += [f"optimizer.lr={LR}", f"data.root={root}", "trainer=cpu", "debug=fast"]
    result = subprocess.run(
        [sys.executable, "-m", *command, f"hydra.sweep.dir={sweep_dir}"],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(find_jobs(sweep_dir)) == 4
    return sweep_dir


def copy_of(sweep: Path, target: Path) -> Path:
    """The sweep's jobs without the files compare wrote or does not read (checkpoints)."""
    return shutil.copytree(sweep, target, ignore=shutil.ignore_patterns("comparison.*", "checkpoints"))


def job_metrics(sweep: Path) -> dict[tuple[str, str], dict[str, float]]:
    """Each job's final metrics by (act, seed), read from its own files, not through compare."""
    found = {}
    for job in find_jobs(sweep):
        overrides = dict(
            o.split("=", 1) for o in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        )
        found[overrides["model.act"], overrides["seed"]] = read_json(job / "metrics.json")["metrics"]
    return found


def printed(capsys: pytest.CaptureFixture[str]) -> str:
    return " ".join(capsys.readouterr().out.split())  # rich wraps to the terminal's width


def test_jobs_that_differ_only_in_seed_are_one_row_per_setting_with_mean_std_and_n(
    seed_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grouped"
    assert compare_command.main([str(seed_sweep), "--out", str(out)]) == 0
    console = printed(capsys)
    metrics = job_metrics(seed_sweep)
    expected = {}
    for act in ("relu", "sigmoid"):
        for name in ("test/acc", "test/loss"):
            values = [metrics[act, seed][name] for seed in ("1", "2")]
            expected[act, name] = (statistics.mean(values), statistics.stdev(values))

    comparison = compare.load_comparison(seed_sweep)
    assert [group.settings for group in comparison.groups] in (
        [{"model.act": "relu"}, {"model.act": "sigmoid"}],
        [{"model.act": "sigmoid"}, {"model.act": "relu"}],
    )
    means = [expected[group.settings["model.act"], "test/acc"][0] for group in comparison.groups]
    assert means == sorted(means, reverse=True)  # best mean first
    assert comparison.order_note == "sorted by mean test/acc, highest first; mean ± std over seeds 1, 2"

    with open(out / "comparison.csv", newline="") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
    assert reader.fieldnames[: len(SEED_COLUMNS)] == SEED_COLUMNS
    assert reader.fieldnames[-2:] == ["n", "n_jobs"] and "seed" not in reader.fieldnames
    assert [row["model.act"] for row in rows] == [g.settings["model.act"] for g in comparison.groups]
    for row in rows:
        act = row["model.act"]
        assert (row["n"], row["n_jobs"]) == ("2", "2")
        assert sorted(row["jobs"].split()) == sorted(
            job.name
            for job in find_jobs(seed_sweep)
            if f"model.act={act}" in (job / ".hydra/overrides.yaml").read_text()
        )
        for name in ("test/acc", "test/loss"):
            mean, std = expected[act, name]
            assert float(row[f"{name}_mean"]) == pytest.approx(mean, rel=1e-12, abs=1e-15), (act, name)
            assert float(row[f"{name}_std"]) == pytest.approx(std, rel=1e-12, abs=1e-15), (act, name)

    markdown = (out / "comparison.md").read_text()
    assert "| jobs | model.act | **test/acc** | test/loss |" in markdown and "| seed |" not in markdown
    assert markdown.count("\n| ") == 3  # header + 2 settings
    assert (
        "Rows sorted by mean test/acc, highest first; mean ± std over seeds 1, 2; settings without"
        in markdown
    )
    for act in ("relu", "sigmoid"):
        mean, std = expected[act, "test/acc"]
        cell = f"{compare.format_value('test/acc', mean)} ± {compare.format_value('test/acc', std)}"
        assert f"| `{act}` | {cell} |" in markdown, cell
        assert f"│ {act} │ {cell} │" in console, cell
        assert markdown.split(f"`{act}`", 1)[1].split("\n", 1)[0].endswith(" | 61.7K | 417K | 2 |")
    assert "mean ± std over seeds 1, 2" in console and "n = jobs with test/acc" in console

    with Image.open(out / "comparison.png") as image:
        assert image.format == "PNG" and image.width >= 600 and image.height >= 200, image.size
    bars = compare.bar_figure(comparison).axes[0]
    assert [bar.get_width() for bar in bars.patches] == [g.mean("test/acc") for g in comparison.groups]
    assert [tick.get_text() for tick in bars.get_yticklabels()] == [
        f"act={g.settings['model.act']}" for g in comparison.groups
    ]
    spread = {  # each error bar's ends, mean ± std (a setting whose two seeds agree has none drawn)
        (round(mean - std, 9), round(mean + std, 9))
        for mean, std in (expected[g.settings["model.act"], "test/acc"] for g in comparison.groups)
        if std
    }
    drawn = {
        (round(segment[0][0], 9), round(segment[1][0], 9))
        for container in bars.containers[1:]
        for segment in container.lines[2][0].get_segments()
    }
    assert drawn == spread
    assert all(text.get_text().endswith("n=2") for text in bars.texts)


def test_no_group_shows_one_row_per_job_with_its_seed(seed_sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "jobs"
    assert compare_command.main([str(seed_sweep), "--no-group", "--out", str(out)]) == 0
    with open(out / "comparison.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 4 and {(row["model.act"], row["seed"]) for row in rows} == set(
        job_metrics(seed_sweep)
    )
    accuracies = [float(row["test/acc"]) for row in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    markdown = (out / "comparison.md").read_text()
    assert "| job | seed | model.act | **test/acc** |" in markdown and "±" not in markdown
    assert markdown.count("\n| ") == 5 and "Rows sorted by test/acc, highest first; jobs without" in markdown


def test_a_setting_with_an_unfinished_seed_counts_only_the_finished_one(
    seed_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = copy_of(seed_sweep, tmp_path / "sweep")
    job = next(j for j in find_jobs(sweep) if "seed=2" in (j / ".hydra/overrides.yaml").read_text())
    act = next(o for o in yaml.safe_load((job / ".hydra/overrides.yaml").read_text()) if "act=" in o)
    alone = job_metrics(seed_sweep)[act.split("=")[1], "1"]["test/acc"]
    (job / "metrics.json").unlink()
    assert compare_command.main([str(sweep)]) == 0
    console = printed(capsys)
    assert f"Unfinished jobs (no metrics.json: crashed, stopped or still running): {job.name}." in console
    row = next(
        line
        for line in (sweep / "comparison.md").read_text().splitlines()
        if f"{job.name} (unfinished)" in line
    )
    assert f" | {compare.format_value('test/acc', alone)} | " in row and row.endswith(" | 1 of 2 |")
    with open(sweep / "comparison.csv", newline="") as file:
        csv_row = next(r for r in csv.DictReader(file) if job.name in r["jobs"].split())
    assert (csv_row["n"], csv_row["n_jobs"], csv_row["test/acc_std"]) == ("1", "2", "")
    assert float(csv_row["test/acc_mean"]) == alone


def test_the_same_seed_twice_is_not_averaged(
    seed_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same sweep copied twice: each setting has seed 1 twice, which is no spread over seeds."""
    first, second = copy_of(seed_sweep, tmp_path / "a"), copy_of(seed_sweep, tmp_path / "b")
    comparison = compare.load_comparison([first, second])
    assert comparison.groups == [] and len(comparison.runs) == 8
    assert compare_command.main([str(first), str(second)]) == 0
    assert "Not averaged over seeds: jobs a/0 and b/0 have the same settings and seed." in printed(capsys)


def test_an_optuna_sweep_lists_its_trials_with_short_parameters_and_the_best_one(
    seed_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each job made a trial with its own sampled learning rate (as hydra-optuna-sweeper writes
    them, in overrides.yaml and the composed config); the sweep is known as Optuna's by its
    multirun.yaml, then the study's results file comes beside the jobs."""
    sweep = copy_of(seed_sweep, tmp_path / "optuna")
    for job in find_jobs(sweep):
        for path, old, new in (
            (job / ".hydra" / "overrides.yaml", f"optimizer.lr={LR}", f"optimizer.lr={TRIAL_LRS[job.name]}"),
            (job / ".hydra" / "config.yaml", f"lr: {LR}\n", f"lr: {TRIAL_LRS[job.name]}\n"),
        ):
            text = path.read_text()
            assert old in text, path
            path.write_text(text.replace(old, new))
    assert compare_command.main([str(sweep)]) == 0  # not Optuna's: every value as typed
    assert all(f"`{lr}` |" in (sweep / "comparison.md").read_text() for lr in TRIAL_LRS.values())
    multirun = sweep / "multirun.yaml"  # as the sweeper wrote it: known from the start of the sweep
    multirun.write_text(multirun.read_text().replace(BASIC_SWEEPER, OPTUNA_SWEEPER, 1))
    assert compare_command.main([str(sweep)]) == 0
    assert "Optuna best" not in printed(capsys)  # the study's results come at its end
    assert all(f"`{short}` |" in (sweep / "comparison.md").read_text() for short in SHORT_LRS.values())
    results = {"name": "optuna", "best_params": {"optimizer.lr": 0.0012345678, "model.act": "relu"}}
    results["best_value"] = 0.98123456
    (sweep / "optimization_results.yaml").write_text(yaml.safe_dump(results, sort_keys=False))

    assert compare_command.main([str(sweep)]) == 0
    console = printed(capsys)
    line = "Optuna best: value 0.9812 with optimizer.lr=0.001235, model.act=relu (optimization_results.yaml)"
    assert line in console
    comparison = compare.load_comparison(sweep)
    assert comparison.groups == []  # trials that differ in a parameter are never merged
    markdown = (sweep / "comparison.md").read_text()
    assert "| job | seed | model.act | optimizer.lr | **test/acc** |" in markdown
    assert f"\n{line}\n" in markdown and markdown.count("\n| ") == 5
    for job, short in SHORT_LRS.items():
        assert f"`{short}` |" in markdown and f" {short} " in console, job
    assert LR not in markdown.split("Rows sorted")[0]  # the table has the short values only
    with open(sweep / "comparison.csv", newline="") as file:
        assert {row["job"]: row["optimizer.lr"] for row in csv.DictReader(file)} == TRIAL_LRS


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0.0012345678", "0.001235"),
        ("0.98123456", "0.9812"),
        ("123.456789", "123.5"),
        ("1e-3", "1e-3"),  # typed short: as typed
        ("0.01", "0.01"),
        ("123456", "123456"),  # integers whole
        ("relu", "relu"),
        (0.0012345678, "0.001235"),
    ],
)
def test_long_floats_are_shortened_to_4_significant_digits(value: str | float, shown: str) -> None:
    assert short_setting(value) == shown
