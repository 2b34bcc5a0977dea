"""The run directory, checked before Hydra writes into it: writable, owned by one live run, and
not holding an earlier run's checkpoints that a new run would overwrite.

Hydra turns an exception of a callback into a warning and goes on (writing its config copy into
the folder), so these checks print their message and exit themselves, before anything is written.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any, NoReturn

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lightning_labs.runtime.launch import global_rank

LOCK_FILE = ".run.lock"


def _refuse(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(1)


def check_writable(folder: Path, setting: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        _refuse(
            f"Cannot write the output folder {folder}: {err.strerror or err}. Point {setting} (or "
            "paths.log_dir) at a folder you can write to."
        )


def claim(folder: Path, setting: str) -> IO[str]:
    """Lock ``folder`` for this process's life, or refuse naming the live run that holds it.

    Two runs writing one folder overwrite each other's checkpoints and report each other's
    results. The lock is the operating system's (``flock``), so it ends with the process that
    holds it, however that process ends: a stale lock file never blocks a later run.
    """
    lock = open(folder / LOCK_FILE, "a+")  # noqa: SIM115 (held open until the process ends)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        owner = lock.read().strip() or "another process"
        lock.close()
        _refuse(
            f"{folder} belongs to a run that is still going ({owner}). Wait for it to end, or leave "
            f"out {setting} so that this run gets a folder of its own."
        )
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    lock.flush()
    return lock


def check_no_earlier_checkpoints(folder: Path, ckpt_path: str | None) -> None:
    """A new training run must not overwrite the checkpoints of an earlier one in its folder.

    Resuming (``ckpt_path=last`` or a checkpoint of this folder) continues that run and may
    rewrite them; anything else would silently replace another run's results.
    """
    found = sorted(path.name for path in (folder / "checkpoints").glob("*.ckpt"))
    if not found:
        return
    resumes_here = ckpt_path == "last" or (
        ckpt_path is not None and Path(ckpt_path).resolve().parent == (folder / "checkpoints").resolve()
    )
    if not resumes_here:
        _refuse(
            f"{folder} already holds the checkpoints of an earlier run ({', '.join(found)}), which this "
            "run would overwrite. Resume that run with ckpt_path=last, or leave out hydra.run.dir "
            "so that this run gets a folder of its own."
        )


class CheckOutputFolder(Callback):
    """Hydra callback (conf/hydra/default.yaml): the run or sweep folder is writable and this run's.

    Only global rank 0 claims the folder: the other ranks of a DDP job share it by design.
    """

    def __init__(self) -> None:
        self.lock: IO[str] | None = None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(config.hydra.run.dir)
        check_writable(folder, "hydra.run.dir")
        if global_rank() == 0:
            self.lock = claim(folder, "hydra.run.dir")
            if config.get("task_name") == "train":
                check_no_earlier_checkpoints(folder, config.get("ckpt_path"))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(config.hydra.sweep.dir)
        check_writable(folder, "hydra.sweep.dir")
        if global_rank() == 0:
            self.lock = claim(folder, "hydra.sweep.dir")

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._release()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._release()

    def _release(self) -> None:
        if self.lock is not None:
            self.lock.close()  # closing the file releases the flock
            self.lock = None
