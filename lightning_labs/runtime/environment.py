"""Facts about the machine and code a run or a measurement used, stored beside its results."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else what platform reports)."""
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    import lightning
    import torchvision

    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        # what this process was given (a parallel sweep's job runs on its own cores and GPUs)
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "gpu_count": torch.cuda.device_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightning": lightning.__version__,
    }


def git_commit(where: Path) -> str | None:
    """The commit checked out at ``where`` (with ``-dirty`` when files differ), or None outside git."""
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def run_info(seed: int | None) -> dict[str, Any]:
    """The machine, versions, code commit, seed and command line of a run (``environment.json``)."""
    return {
        **machine_info(),
        "seed": seed,
        "git_commit": git_commit(Path(__file__).parent),
        "command": command_line(),
    }


def command_line() -> str:
    """The command as typed: ``python -m lightning_labs.train ...`` (or ``ll-train ...``) rather than
    the path of the module's file or of the console script."""
    program = Path(sys.argv[0])
    if program.suffix == ".py" and program.resolve().parent == Path(__file__).resolve().parent.parent:
        launch = ["python", "-m", f"lightning_labs.{program.stem}"]
    elif program.name.startswith("ll-"):
        launch = [program.name]
    else:
        launch = ["python", sys.argv[0]]
    return " ".join([*launch, *sys.argv[1:]])
