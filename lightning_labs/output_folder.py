"""Refuse, in one line, a run directory that cannot be written, before Hydra tries to make it.

Hydra turns an exception of a callback into a warning and goes on to fail with a traceback
when it makes the folder, so the check prints its message and exits itself.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def check_writable(folder: Path, setting: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        print(
            f"Cannot write the output folder {folder}: {err.strerror or err}. Point {setting} (or "
            "paths.log_dir) at a folder you can write to.",
            file=sys.stderr,
        )
        sys.exit(1)


class CheckOutputFolder(Callback):
    """Hydra callback (conf/hydra/default.yaml): the run or sweep folder must be writable."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_writable(Path(config.hydra.run.dir), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_writable(Path(config.hydra.sweep.dir), "hydra.sweep.dir")
