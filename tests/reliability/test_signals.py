"""Signals sent to a whole process group (Ctrl-C in a terminal, SLURM's scancel) with DataLoader workers."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
from cli import QUICK, run_tool


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_signal_to_the_process_group_with_workers_still_saves_at_the_step(
    signal_name: str, data_root: Path, tmp_path: Path
) -> None:
    stopped = run_tool(
        "train",
        *QUICK,
        f"hydra.run.dir={tmp_path}",
        "data=imagenet",
        f"data.root={data_root / 'imagenet'}",
        "data.image_size=32",
        "data.resize_size=36",
        "data.batch_size=8",
        "data.num_workers=2",
        "trainer.max_epochs=1",
        "trainer.limit_val_batches=1",
        "test=false",
        "+callbacks.fault._target_=fault_probes.SignalAtStep",
        "+callbacks.fault.step=3",
        f"+callbacks.fault.signal={signal_name}",
        "+callbacks.fault.group=true",
    )
    output = stopped.stdout + stopped.stderr
    assert stopped.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert "DataLoader worker" not in output
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 3
