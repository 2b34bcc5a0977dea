"""Lightning callbacks of the package."""

from lightning_labs.callbacks.latency import LatencyBenchmark
from lightning_labs.callbacks.model_facts import ModelFactsSummary
from lightning_labs.callbacks.unfreeze import UnfreezeAtEpoch

__all__ = ["LatencyBenchmark", "ModelFactsSummary", "UnfreezeAtEpoch"]
