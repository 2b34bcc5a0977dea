"""Running the command-line tools as a user does: a separate process, with a time limit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROBES = Path(__file__).parents[1] / "probes"

# A short CPU run that still checkpoints part-way through epochs.
QUICK = [
    "trainer=cpu",
    "trainer.enable_progress_bar=false",
    "callbacks.rich_progress_bar=null",
    "callbacks.model_facts=null",
    "logger=none",
]


def run_tool(
    tool: str, *overrides: str, timeout: float = 180, **env: str
) -> subprocess.CompletedProcess[str]:
    """``python -m lightning_labs.<tool> <overrides>``, its output captured (fault probes importable)."""
    environment = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(PROBES), **env}
    environment.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", f"lightning_labs.{tool}", *overrides],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**environment, **env},
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: a probe may signal the whole group
    )
