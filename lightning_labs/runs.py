"""Reading finished runs back: the files a run directory holds, its TensorBoard events, a sweep's jobs.

A run directory (``outputs/train/<date>/<time>/``) holds ``metrics.json``, ``environment.json``,
``.hydra/{config,overrides}.yaml``, ``tensorboard/events.out.tfevents.*`` and, for a benchmark run
(or a training run with ``callbacks=latency``), ``benchmark.json``. A sweep directory
(``outputs/multirun/train/<date>/<time>/``) holds one such directory per job, named by job number.
A job that crashed, was stopped or is still running has no ``metrics.json``.

Nothing here needs torch: reading a run back is quick and works without the training stack.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

EVENT_GLOB = "events.out.tfevents.*"
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


def parse_override(override: str) -> tuple[str, str]:
    """Key and value: ``model.pool=max`` -> (model.pool, max), ``+x=1`` -> (x, 1), ``~x`` -> (x, ~)."""
    text = override.strip()
    if text.startswith("~"):
        return text[1:].partition("=")[0], "~"
    key, _, value = text.lstrip("+").partition("=")
    return key, value


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


# ---------------------------------------------------------------------------------------------- events


@dataclass
class Image:
    tag: str
    step: int
    png: bytes


class Events:
    """A run's TensorBoard event files, all read (every scalar and image kept)."""

    def __init__(self, directory: Path) -> None:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        # "More than one graph event" and the like: TensorBoard's notes on how Lightning writes files.
        logging.getLogger("tensorboard").setLevel(logging.ERROR)
        self.directory = directory
        self.accumulator = EventAccumulator(
            str(directory),
            size_guidance={
                "scalars": 0,
                "images": 0,
                "tensors": 0,
                "histograms": 1,
                "compressedHistograms": 1,
            },
        ).Reload()
        self.tags = self.accumulator.Tags()

    @property
    def scalar_tags(self) -> list[str]:
        return list(self.tags.get("scalars", []))

    @property
    def image_tags(self) -> list[str]:
        return list(self.tags.get("images", []))

    def scalars(self, tag: str) -> list[tuple[int, float]]:
        """(step, value) pairs of a scalar, in step order; [] when it was not logged."""
        if tag not in self.tags.get("scalars", []):
            return []
        return sorted(((e.step, e.value) for e in self.accumulator.Scalars(tag)), key=lambda p: p[0])

    def last(self, tag: str) -> float | None:
        values = self.scalars(tag)
        return values[-1][1] if values else None

    def by_epoch(self, tag: str) -> list[tuple[float, float]]:
        """(epoch, value) pairs: epochs counted from 1, taken from Lightning's ``epoch`` scalar.

        An epoch-level value logged at the end of epoch ``e`` (0-based) is placed at ``e + 1``.
        Without an ``epoch`` scalar the steps are returned unchanged.
        """
        values = self.scalars(tag)
        epochs = self.scalars("epoch")
        if not epochs:
            return [(float(step), value) for step, value in values]
        steps = [s for s, _ in epochs]
        pairs = []
        for step, value in values:
            index = max(bisect.bisect_right(steps, step) - 1, 0)  # the last epoch value logged by then
            pairs.append((epochs[index][1] + 1, value))
        return pairs

    def latest_image(self, tag: str) -> Image | None:
        """The last image logged under ``tag`` as PNG bytes."""
        if tag not in self.image_tags:
            return None
        event = self.accumulator.Images(tag)[-1]
        return Image(tag, event.step, to_png(event.encoded_image_string))

    def text(self, tag: str) -> str | None:
        """The last text logged under ``tag`` (``model/facts``), or None."""
        from tensorboard.util import tensor_util

        name = f"{tag}/text_summary"
        if name not in self.tags.get("tensors", []):
            return None
        array = tensor_util.make_ndarray(self.accumulator.Tensors(name)[-1].tensor_proto)
        items = [array.item()] if array.ndim == 0 else list(array.flat)
        return "\n".join(i.decode() if isinstance(i, bytes) else str(i) for i in items)


def to_png(encoded: bytes) -> bytes:
    if encoded.startswith(b"\x89PNG"):
        return encoded
    import io

    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.open(io.BytesIO(encoded)).save(buffer, format="PNG")
    return buffer.getvalue()


def event_dir(run_dir: Path) -> Path | None:
    """The folder of the run's event files: ``tensorboard/`` or wherever under the run they are."""
    preferred = run_dir / "tensorboard"
    if preferred.is_dir() and any(preferred.glob(EVENT_GLOB)):
        return preferred
    found = sorted(run_dir.rglob(EVENT_GLOB))
    return found[0].parent if found else None


def load_events(run_dir: Path) -> Events | None:
    """The run's events; None when it has none (``logger=none``) or they cannot be read."""
    directory = event_dir(run_dir)
    if directory is None:
        return None
    try:
        return Events(directory)
    except Exception as error:  # a corrupt or truncated file: report without the pictures
        logging.getLogger(__name__).warning("Could not read the event files in %s: %s", directory, error)
        return None


IMAGE_ORDER = ("predictions/", "confusion_matrix/", "feature_maps/")


def ordered_image_tags(tags: Sequence[str]) -> list[str]:
    """Predictions first, then confusion matrices, feature maps (input first), then the rest;
    within a group in the order they were first logged (feature maps: from the input inwards)."""

    def rank(tag: str) -> tuple[int, int]:
        group = next((i for i, prefix in enumerate(IMAGE_ORDER) if tag.startswith(prefix)), len(IMAGE_ORDER))
        return group, 0 if tag.endswith("/input") else 1

    return sorted(tags, key=rank)


def file_name(tag: str) -> str:
    """An image tag as a file name: ``predictions/test`` -> ``predictions_test.png``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", tag).strip("_") + ".png"
