"""The trainer's profiler when nothing is profiled: no per-call cost at all."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from lightning.pytorch.profilers import PassThroughProfiler

_NOTHING = nullcontext()  # reusable: entering and leaving it does nothing


class NoProfiler(PassThroughProfiler):
    """Lightning's default ``PassThroughProfiler``, minus the cost of its context manager.

    Lightning wraps every hook call in ``with trainer.profiler.profile(name)``, some 230 times per
    training step with the default callbacks; the pass-through profiler still builds a generator
    context manager for each, about 1 µs apiece, a quarter of a millisecond per step, as much as a
    tenth of a LeNet-5 step at batch 16 (``benchmarks/train_overhead.py``). This one hands back
    one shared do-nothing context. To profile a run, pick a real one:
    ``trainer.profiler=simple`` (or ``advanced``, ``pytorch``).
    """

    def profile(self, action_name: str) -> Any:  # type: ignore[override]
        return _NOTHING
