"""A run directory belongs to one live run, and a new run never overwrites an earlier run's checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli import PROBES, QUICK, run_tool

from lightning_labs.runtime.output_folder import LOCK_FILE, check_no_earlier_checkpoints, claim


def test_a_claimed_folder_is_refused_naming_its_owner_until_released(tmp_path: Path, capsys) -> None:
    held = claim(tmp_path, "hydra.run.dir")
    with pytest.raises(SystemExit) as stopped:
        claim(tmp_path, "hydra.run.dir")
    assert stopped.value.code == 1
    message = capsys.readouterr().err
    assert f"{tmp_path} belongs to a run that is still going (pid {os.getpid()} on " in message
    assert "leave out hydra.run.dir" in message
    held.close()
    claim(tmp_path, "hydra.run.dir").close()  # free again once the owner is gone


@pytest.mark.parametrize("ckpt_path", [None, "/elsewhere/checkpoints/last.ckpt"])
def test_a_new_run_into_a_folder_with_checkpoints_is_refused(
    ckpt_path: str | None, tmp_path: Path, capsys
) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.ckpt").write_bytes(b"an earlier run's best")
    with pytest.raises(SystemExit):
        check_no_earlier_checkpoints(tmp_path, ckpt_path)
    assert "already holds the checkpoints of an earlier run (best.ckpt)" in capsys.readouterr().err
    assert (tmp_path / "checkpoints" / "best.ckpt").read_bytes() == b"an earlier run's best"


def test_resuming_in_the_folder_may_use_its_checkpoints(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    check_no_earlier_checkpoints(tmp_path, "last")
    check_no_earlier_checkpoints(tmp_path, str(tmp_path / "checkpoints" / "last.ckpt"))


def test_a_second_run_into_a_live_runs_folder_stops_at_once(data_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "lightning_labs.train", *QUICK, f"paths.data_dir={data_root}",
         f"hydra.run.dir={run_dir}", "trainer.max_epochs=100", "test=false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(PROBES)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (run_dir / ".hydra" / "config.yaml").is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        config = (run_dir / ".hydra" / "config.yaml").read_text()
        second = run_tool("train", *QUICK, f"paths.data_dir={data_root}", f"hydra.run.dir={run_dir}")
        assert second.returncode == 1
        assert f"belongs to a run that is still going (pid {first.pid} on " in second.stderr
        assert (run_dir / ".hydra" / "config.yaml").read_text() == config  # the first run's record kept
        assert first.poll() is None  # and the first run goes on
    finally:
        first.kill()
        first.wait()
    assert LOCK_FILE in os.listdir(run_dir)
