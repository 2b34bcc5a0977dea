"""A sweep (``-m``) tells its failures as a student can read them: one message for a sweep that
cannot run, one line per failed job, a summary at the end, and a non-zero exit status."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "reliability"))
from cli import QUICK, run_tool  # tests/reliability/cli.py: run a command as a user does


@pytest.mark.parametrize("launcher", ["basic", "parallel"])
def test_a_failed_job_gets_one_line_and_the_sweep_a_summary(
    launcher: str, data_root: Path, tmp_path: Path
) -> None:
    """The summary is read from the job folders, so it is the same whichever process ran the jobs."""
    sweep = tmp_path / "sweep"
    result = run_tool(
        "train",
        "-m",
        f"hydra/launcher={launcher}",
        "optimizer.lr=0.01,-1",  # job 1 is refused by the config checks
        *QUICK,
        f"paths.data_dir={data_root}",
        f"hydra.sweep.dir={sweep}",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "Traceback" not in output and "Error executing job" not in output, output[-3000:]
    failed = [line for line in output.splitlines() if "optimizer.lr=-1 (must be a number above 0)" in line]
    assert len(failed) == 2, output[-3000:]  # the job's own line, and its line in the summary
    summary = result.stderr[result.stderr.index("Sweep: ") :].splitlines()
    metric = json.loads((sweep / "0" / "metrics.json").read_text())["metrics"]["test/acc"]
    assert summary == [
        f"Sweep: 1 done, 1 failed, in {sweep}",
        f"  #0 optimizer.lr=0.01  done: test/acc {metric:.4f}",
        "  #1 optimizer.lr=-1  failed: ValueError: Invalid setting: optimizer.lr=-1 (must be a number "
        "above 0). Fix it on the command line or in conf/.",
        f"     see {sweep / '1' / 'train.log'}",
        f"Compare them: python -m lightning_labs.compare {sweep}",
    ]
    assert (sweep / "0" / "metrics.json").exists()  # the good job ran in full
    assert "Traceback" in (sweep / "1" / "train.log").read_text()


def test_a_ddp_sweep_is_refused_in_one_message_before_any_job(tmp_path: Path) -> None:
    result = run_tool("train", "-m", "trainer=ddp_cpu", "model.pool=max,avg", f"paths.log_dir={tmp_path}")
    assert result.returncode == 1
    assert result.stdout == ""  # no config tree, no job listing
    assert result.stderr.startswith("RuntimeError: A sweep (-m) cannot use a DDP trainer")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not list(tmp_path.iterdir())  # no sweep folder made
