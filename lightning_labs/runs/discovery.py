"""Reading finished runs back: the files a run directory holds and a sweep's jobs.

A run directory (``outputs/train/<date>/<time>/``) holds ``metrics.json``, ``environment.json``,
``.hydra/{config,overrides}.yaml``, ``tensorboard/events.out.tfevents.*`` and, for a benchmark run
(or a training run with ``callbacks=latency``), ``benchmark.json``. A sweep directory
(``outputs/multirun/train/<date>/<time>/``) holds one such directory per job, named by job number.
A job that crashed, was stopped or is still running has no ``metrics.json``; :attr:`Run.status`
tells them apart from the run's log file (``<task>.log``, where a failed command logs its error).

Nothing here needs torch: reading a run back is quick and works without the training stack.
A run's TensorBoard events are read by :mod:`lightning_labs.runs.events`, only when asked for.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from lightning_labs.runs.events import Events, load_events
from lightning_labs.runtime.overrides import parse_override

TRAIN_HINT = "python -m lightning_labs.train"
# A record of the run's log file (conf/hydra/default.yaml): "[time][logger][LEVEL] - message".
LOG_RECORD = re.compile(r"^\[[^\]]*\]\[[^\]]*\]\[(?P<level>[A-Z]+)\] - (?P<message>.*)$")
# The ERROR records of runtime/errors.py that are not the error itself: the traceback's heading
# and the line saying where the traceback went (in a sweep, that is said after the error instead).
NOT_THE_ERROR = ("Traceback of the error:", "(traceback in ")
WHERE_THE_TRACEBACK_IS = re.compile(r" \(traceback in [^()]*\)$")
STOPPED = "Stopped by SIGTERM"
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

    @cached_property
    def error(self) -> str | None:
        """The first line of the error the run logged (``ValueError: ...``); None when it logged none."""
        return first_error(self.log_file) if self.log_file else None

    @property
    def log_file(self) -> Path | None:
        """``<task>.log`` (``train.log``): the console's messages, errors and tracebacks included."""
        task = self.config.get("task_name") or "train"
        path = self.path / f"{task}.log"
        return path if path.is_file() else None

    @property
    def trained(self) -> bool:
        """Whether training began: a checkpoint was saved or a scalar logged. A run refused by the
        config checks, or one that failed while being built, has neither."""
        if any((self.path / "checkpoints").glob("*.ckpt")):
            return True
        return bool(self.events and self.events.scalar_tags)

    @cached_property
    def status(self) -> str:
        """``finished`` (metrics.json), ``failed`` (an error after training began), ``refused`` (an
        error before it: bad settings, missing data), ``stopped`` (SIGTERM) or ``unfinished`` (no
        error logged: killed, or still running)."""
        if self.finished:
            return "finished"
        if self.error is None:
            return "unfinished"
        if self.error.startswith(STOPPED):
            return "stopped"
        return "failed" if self.trained else "refused"

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

    @cached_property
    def config(self) -> dict[str, Any]:
        content = read_yaml(self.path / ".hydra" / "config.yaml")
        return content if isinstance(content, dict) else {}

    @cached_property
    def omegaconf(self) -> DictConfig:
        """:attr:`config` as OmegaConf reads it, so that its interpolations resolve."""
        return OmegaConf.create(self.config)

    def composed(self, key: str) -> str | None:
        """A dotted key's plain value in the composed config (``trainer.max_epochs`` -> ``15``, set
        on the command line or not; ``model.net.act: ${..act}`` resolved). None for a group, a
        list, a missing key, or an interpolation that needs the training run's own resolvers."""
        value = OmegaConf.select(self.omegaconf, key, default=None, throw_on_resolution_failure=False)
        if isinstance(value, bool):
            return str(value).lower()
        return str(value) if isinstance(value, int | float | str) else None

    @property
    def model(self) -> str | None:
        """The model's name in the composed config (so ``experiment=...`` presets show theirs), else
        what metrics.json or benchmark.json recorded."""
        model = self.config.get("model")
        if isinstance(model, dict) and model.get("name"):
            return str(model["name"])
        for record in (self.summary, self.benchmark):
            if record and record.get("model"):
                return str(record["model"])
        return None

    @property
    def data(self) -> str | None:
        """The data's name in the composed config (``data.name``, else its class: ``MNISTData`` ->
        ``mnist``), else what metrics.json recorded."""
        data = self.config.get("data")
        if isinstance(data, dict) and data.get("name"):
            return str(data["name"])
        if isinstance(data, dict) and data.get("_target_"):
            return str(data["_target_"]).rsplit(".", 1)[-1].removesuffix("Data").lower()
        if self.summary and self.summary.get("data"):
            return str(self.summary["data"])
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


def first_error(log_file: Path) -> str | None:
    """The first line of the first ERROR record in a run's log file that is the error itself."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        record = LOG_RECORD.match(line)
        if record and record["level"] in ("ERROR", "CRITICAL"):
            message = record["message"].strip()
            if message and not message.startswith(NOT_THE_ERROR):
                return WHERE_THE_TRACEBACK_IS.sub("", message)
    return None


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


def expand_globs(paths: Sequence[Path]) -> list[Path]:
    """The paths given, a pattern the shell left alone (quoted, or matching nothing) expanded to
    the directories it matches, in sorted order (``sweep*`` may match ``sweep.log`` too); a
    pattern that matches no directory stays as it is, to be reported as missing."""
    expanded: list[Path] = []
    for path in paths:
        matches = sorted(glob.glob(str(path))) if glob.has_magic(str(path)) else []
        expanded += [Path(m) for m in matches if Path(m).is_dir()] or [path]
    return expanded


def collect_jobs(paths: Sequence[Path], command: str) -> tuple[Path, list[Path]]:
    """The run directories of every sweep or run in ``paths`` (globs expanded, each once), and the
    folder they share (the one directory itself when only one is given); RunDirError for a path
    that holds neither."""
    roots = expand_globs(paths)
    jobs: dict[Path, Path] = {}
    for root in roots:
        for job in check_run_or_sweep(root, command)[1]:
            jobs.setdefault(job.resolve(), job)
    if len(roots) == 1:
        return roots[0], list(jobs.values())
    return Path(os.path.commonpath([p.resolve() for p in roots])), list(jobs.values())


def job_names(jobs: Sequence[Path]) -> list[str]:
    """The jobs' paths cut to the fewest last parts that still tell them apart, the same number
    for all: ``3`` within one sweep, ``<time>/3`` across sweeps."""
    parts = [job.resolve().parts for job in jobs]
    for n in range(1, max((len(p) for p in parts), default=1) + 1):
        names = ["/".join(p[-n:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [job.as_posix() for job in jobs]
