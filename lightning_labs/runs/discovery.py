"""Reading finished runs back: the files a run directory holds and a sweep's jobs.

A run directory (``outputs/train/<date>/<time>/``) holds ``metrics.json``, ``environment.json``,
``.hydra/{config,overrides}.yaml``, ``tensorboard/events.out.tfevents.*`` and, for a benchmark run
(or a training run with ``callbacks=latency``), ``benchmark.json``. A sweep directory
(``outputs/multirun/train/<date>/<time>/``) holds one such directory per job, named by job number.
A job that crashed, was stopped or is still running has no ``metrics.json``.

Nothing here needs torch: reading a run back is quick and works without the training stack.
A run's TensorBoard events are read by :mod:`lightning_labs.runs.events`, only when asked for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from lightning_labs.runs.events import Events, load_events
from lightning_labs.runtime.overrides import parse_override

TRAIN_HINT = "python -m lightning_labs.train"
SWEEP_HINT = "python -m lightning_labs.train -m model.pool=max,avg model.act=relu,sigmoid"


class RunDirError(Exception):
    """A directory given on the command line that is not a run or a sweep; the message says why."""


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``; None when the file is missing or not valid JSON (a run cut short)."""
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def natural_key(path: Path) -> tuple[Any, ...]:
    """Sort ``2`` before ``10``: job directories are numbered."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name))


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` is the directory of one run (training, evaluation or benchmark)."""
    return path.is_dir() and any(
        (path / name).exists() for name in (".hydra", "metrics.json", "environment.json", "benchmark.json")
    )


def find_jobs(sweep_dir: Path) -> list[Path]:
    """The job directories of a sweep: its subdirectories that hold ``.hydra/`` or ``metrics.json``."""
    if not sweep_dir.is_dir():
        return []
    jobs = [
        child
        for child in sweep_dir.iterdir()
        if child.is_dir() and ((child / ".hydra").is_dir() or (child / "metrics.json").is_file())
    ]
    return sorted(jobs, key=natural_key)


def check_run_or_sweep(path: Path, command: str) -> tuple[Path, list[Path]]:
    """``path`` and its job directories (``[path]`` itself for a single run), or a RunDirError.

    The error names the path, what was expected there and how to make it.
    """
    if not path.exists():
        raise RunDirError(
            f"{path}: no such directory. Give {command} a sweep directory "
            f"(outputs/multirun/train/<date>/<time>, made by `{SWEEP_HINT}`) or a run directory "
            f"(outputs/train/<date>/<time>, made by `{TRAIN_HINT}`)."
        )
    if not path.is_dir():
        raise RunDirError(
            f"{path} is a file, not a directory. Give {command} the directory of a sweep "
            "(outputs/multirun/train/<date>/<time>) or of a run (outputs/train/<date>/<time>)."
        )
    jobs = find_jobs(path)
    if jobs:
        return path, jobs
    if is_run_dir(path):
        return path, [path]
    sweeps = sorted((p for p in path.iterdir() if p.is_dir() and find_jobs(p)), key=natural_key)
    if sweeps:
        names = ", ".join(str(p) for p in sweeps[:5]) + (" ..." if len(sweeps) > 5 else "")
        raise RunDirError(
            f"{path} holds sweep directories, not the jobs of one sweep: give one of them ({names})."
        )
    runs = sorted((p for p in path.iterdir() if is_run_dir(p)), key=natural_key)
    if not runs and any(path.iterdir()):
        runs = sorted((p for p in path.glob("*/*") if is_run_dir(p)), key=natural_key)
    if runs:
        raise RunDirError(
            f"{path} is not a run or a sweep directory, but it holds runs: give one of them "
            f"(e.g. {runs[-1]})."
        )
    what = "is empty" if not any(path.iterdir()) else "holds no run"
    raise RunDirError(
        f"{path} {what}: expected a sweep directory whose job subdirectories (0/, 1/, ...) hold "
        f".hydra/ and metrics.json, or one run directory. Run `{SWEEP_HINT}` (or `{TRAIN_HINT}`) first."
    )


@dataclass
class Run:
    """What one run directory tells about its run, read once."""

    path: Path
    name: str
    overrides: list[str]
    summary: dict[str, Any] | None  # metrics.json: None when the run did not finish
    environment: dict[str, Any] | None
    benchmark: dict[str, Any] | None
    settings: dict[str, str] = field(default_factory=dict)  # the overrides as key -> value

    @property
    def finished(self) -> bool:
        return self.summary is not None

    @property
    def metrics(self) -> dict[str, float]:
        return dict((self.summary or {}).get("metrics") or {})

    def raw(self, name: str) -> float | int | None:
        """A final metric (``test/acc``) or a top-level number of metrics.json (``seconds``, ``epochs``)."""
        if self.summary is None:
            return None
        value = self.metrics.get(name, self.summary.get(name))
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None

    def value(self, name: str) -> float | None:
        """:meth:`raw` as a float."""
        value = self.raw(name)
        return None if value is None else float(value)

    @property
    def config_text(self) -> str | None:
        try:
            return (self.path / ".hydra" / "config.yaml").read_text()
        except OSError:
            return None

    @property
    def config(self) -> dict[str, Any]:
        content = read_yaml(self.path / ".hydra" / "config.yaml")
        return content if isinstance(content, dict) else {}

    @property
    def model(self) -> str | None:
        if self.summary and self.summary.get("model"):
            return str(self.summary["model"])
        if self.benchmark and self.benchmark.get("model"):
            return str(self.benchmark["model"])
        model = self.config.get("model")
        return str(model.get("name")) if isinstance(model, dict) and model.get("name") else None

    @property
    def data(self) -> str | None:
        if self.summary and self.summary.get("data"):
            return str(self.summary["data"])
        data = self.config.get("data")
        if isinstance(data, dict) and data.get("_target_"):
            return str(data["_target_"]).rsplit(".", 1)[-1].removesuffix("Data").lower()
        return None

    @property
    def machine(self) -> dict[str, Any]:
        """environment.json, or the machine a benchmark recorded (benchmark runs have no environment.json)."""
        if self.environment:
            return self.environment
        return dict((self.benchmark or {}).get("machine") or {})

    @property
    def date(self) -> str:
        """When the run started: from environment.json, else the directory's modification time."""
        if self.machine.get("date"):
            return str(self.machine["date"])
        return datetime.fromtimestamp(self.path.stat().st_mtime).isoformat(timespec="seconds")

    @cached_property
    def events(self) -> Events | None:
        return load_events(self.path)


def load_run(path: Path, name: str | None = None) -> Run:
    """Read a run directory. Overrides come from ``.hydra/overrides.yaml`` (there from the start,
    so an unfinished job shows its settings too), else from ``metrics.json``."""
    summary = read_json(path / "metrics.json")
    overrides = read_yaml(path / ".hydra" / "overrides.yaml")
    if not isinstance(overrides, list):
        overrides = (summary or {}).get("overrides") or []
    overrides = [str(o) for o in overrides]
    return Run(
        path=path,
        name=name or path.name,
        overrides=overrides,
        summary=summary,
        environment=read_json(path / "environment.json"),
        benchmark=read_json(path / "benchmark.json"),
        settings=dict(parse_override(o) for o in overrides),
    )


def varying_settings(runs: Sequence[Run]) -> list[str]:
    """The override keys whose value is not the same in every run, in command-line order."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.settings if k not in keys]
    return [k for k in keys if len({run.settings.get(k) for run in runs}) > 1]


def common_overrides(runs: Sequence[Run]) -> list[str]:
    """The overrides every run shares (the sweep's fixed settings)."""
    if not runs:
        return []
    varying = set(varying_settings(runs))
    return [o for o in runs[0].overrides if parse_override(o)[0] not in varying]


def short_names(keys: Sequence[str]) -> dict[str, str]:
    """The shortest dotted suffix of each key that is still unique (``model.pool`` -> ``pool``)."""
    names = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            suffix = ".".join(parts[-n:])
            if sum(k == suffix or k.endswith("." + suffix) for k in keys) == 1:
                names[key] = suffix
                break
        else:
            names[key] = key
    return names
