"""Lightning callbacks of the package."""

from lightning_labs.callbacks.checkpoint import ModelCheckpoint
from lightning_labs.callbacks.device import DeviceUsage
from lightning_labs.callbacks.figures import ConfusionMatrixFigure, PredictionGrid
from lightning_labs.callbacks.idle_hooks import SkipIdleBatchHooks
from lightning_labs.callbacks.inside import FeatureMaps, WeightHistograms
from lightning_labs.callbacks.interrupt import CheckpointOnInterrupt
from lightning_labs.callbacks.latency import LatencyBenchmark
from lightning_labs.callbacks.log_interval import LogEveryEpoch
from lightning_labs.callbacks.model_facts import ModelFactsSummary
from lightning_labs.callbacks.profiler import NoProfiler
from lightning_labs.callbacks.progress import EpochSummary, RichProgressBarFromOne
from lightning_labs.callbacks.speed import EpochSpeed
from lightning_labs.callbacks.unfreeze import UnfreezeAtEpoch

__all__ = [
    "CheckpointOnInterrupt",
    "ConfusionMatrixFigure",
    "DeviceUsage",
    "EpochSpeed",
    "EpochSummary",
    "FeatureMaps",
    "LatencyBenchmark",
    "LogEveryEpoch",
    "ModelCheckpoint",
    "ModelFactsSummary",
    "NoProfiler",
    "PredictionGrid",
    "RichProgressBarFromOne",
    "SkipIdleBatchHooks",
    "UnfreezeAtEpoch",
    "WeightHistograms",
]
