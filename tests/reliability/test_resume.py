"""Kill, stop and resume real training processes; two runs with one seed are bit-identical."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
from cli import QUICK, run_tool

# MNIST digits of the shared test data: 1080 training images, 16 batches of 64 per epoch.
# last.ckpt is written every 5 steps and at epoch ends: a kill at step 23 loses steps 21 to 23.
STEPS_PER_EPOCH = 16


def train_overrides(data_root: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        *QUICK,
        f"paths.data_dir={data_root}",
        f"hydra.run.dir={run_dir}",
        "trainer.max_epochs=2",
        "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=2",
        "callbacks.step_checkpoint.every_n_train_steps=5",
        "seed=7",
        *extra,
    ]


def at_step(step: int, signal_name: str) -> list[str]:
    return [
        "+callbacks.fault._target_=fault_probes.SignalAtStep",
        f"+callbacks.fault.step={step}",
        f"+callbacks.fault.signal={signal_name}",
    ]


def final_state(run_dir: Path) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """The run's final metrics (timings and device use left out) and the weights of its last checkpoint."""
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    measured = ("time/", "device/")  # how long and how busy: not what was learned
    return {k: v for k, v in metrics.items() if not k.startswith(measured)}, checkpoint["state_dict"]


def assert_same_run(a: Path, b: Path) -> None:
    metrics_a, weights_a = final_state(a)
    metrics_b, weights_b = final_state(b)
    assert metrics_a == metrics_b
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def saved_step(run_dir: Path) -> int:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]


@pytest.fixture(scope="module")
def uninterrupted(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    result = run_tool("train", *train_overrides(data_root, run_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run_dir / "metrics.json").read_text())["global_step"] == 2 * STEPS_PER_EPOCH
    return run_dir


def test_kill_9_mid_epoch_then_resume_ends_as_if_never_killed(
    uninterrupted: Path, data_root: Path, tmp_path: Path
) -> None:
    # (Two seeded runs ending the same is implied here: the resumed run is a second seeded run.)
    environment = json.loads((uninterrupted / "environment.json").read_text())
    assert environment["seed"] == 7 and environment["hostname"] and environment["torch"] == torch.__version__
    assert environment["command"].startswith("python -m lightning_labs.train ")
    killed = run_tool("train", *train_overrides(data_root, tmp_path, *at_step(23, "SIGKILL")))
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "metrics.json").exists()
    assert saved_step(tmp_path) == 20  # the step checkpoint in the middle of epoch 1
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))

    resumed = run_tool("train", *train_overrides(data_root, tmp_path, "ckpt_path=last"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming from {tmp_path / 'checkpoints' / 'last.ckpt'}" in resumed.stdout + resumed.stderr
    assert_same_run(uninterrupted, tmp_path)


def test_sigterm_saves_at_the_step_and_the_resumed_run_ends_the_same(
    uninterrupted: Path, data_root: Path, tmp_path: Path
) -> None:
    stopped = run_tool("train", *train_overrides(data_root, tmp_path / "run", *at_step(7, "SIGTERM")))
    assert stopped.returncode == 128 + signal.SIGTERM
    assert "Stopped by SIGTERM" in stopped.stdout + stopped.stderr
    assert saved_step(tmp_path / "run") == 7  # nothing lost, though no checkpoint was due

    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    resumed = run_tool("train", *train_overrides(data_root, tmp_path / "resumed", f"ckpt_path={last}"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(uninterrupted, tmp_path / "resumed")


def test_a_first_ctrl_c_finishes_the_batch_and_saves(data_root: Path, tmp_path: Path) -> None:
    stopped = run_tool("train", *train_overrides(data_root, tmp_path, *at_step(3, "SIGINT")))
    assert stopped.returncode == 128 + signal.SIGTERM
    assert "Ctrl-C: stopping after this batch" in stopped.stdout + stopped.stderr
    assert saved_step(tmp_path) == 3
