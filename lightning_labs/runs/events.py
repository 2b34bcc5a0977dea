"""A run's TensorBoard event files read back: scalars (by step or epoch), the latest images, texts.

Apart from :mod:`lightning_labs.runs.discovery` (which finds runs and reads their JSON/YAML files)
because this is the part that needs TensorBoard, imported only when a run's events are first read;
the curves of compare and report and the report's pictures come from here.
"""

from __future__ import annotations

import bisect
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

EVENT_GLOB = "events.out.tfevents.*"
IMAGE_ORDER = ("predictions/", "confusion_matrix/", "feature_maps/")


@dataclass
class Image:
    """The latest picture logged under ``tag``: the step it was logged at and its PNG bytes."""

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
