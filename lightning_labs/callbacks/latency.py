"""Measure the trained network's inference latency when fitting (or testing) ends, and log it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from lightning_labs.inference.latency import Measurement, measure_latency
from lightning_labs.inference.latency_report import STATS, latency_figure, results_table, write_results
from lightning_labs.runtime.console import print_rich
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)


class LatencyBenchmark(L.Callback):
    """The benchmark command's measurement, run on the trained network.

    Logs ``latency/<device>/<variant>/bs<N>/<statistic>`` scalars, a text table and the box plot
    to the loggers, adds the scalars to the run's final metrics (``metrics.json``), and writes
    benchmark.json / .csv / latency.png into ``output_dir``.

    Args:
        output_dir: where the result files go (the run directory).
        at: ``fit`` (when training ends) or ``test`` (when testing ends).
        devices, batch_sizes, variants, warmup, iterations, time_budget_s: as in the benchmark command.
    """

    def __init__(
        self,
        output_dir: str,
        at: str = "fit",
        devices: Sequence[str] | None = None,
        batch_sizes: Sequence[int] = (1, 32),
        variants: Sequence[str] = ("eager",),
        warmup: int = 5,
        iterations: int = 30,
        time_budget_s: float | None = None,
    ) -> None:
        if at not in ("fit", "test"):
            raise ValueError(f"callbacks.latency.at must be fit or test, got {at!r}")
        self.output_dir = Path(output_dir)
        self.at = at
        self.options = {
            "devices": list(devices) if devices else None,
            "batch_sizes": list(batch_sizes),
            "variants": list(variants),
            "warmup": warmup,
            "iterations": iterations,
            "time_budget_s": time_budget_s,
        }

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.at == "fit":
            self._measure(trainer, pl_module)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.at == "test":
            self._measure(trainer, pl_module)

    @rank_zero_only
    def _measure(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        results = measure_latency(pl_module.net, pl_module.hparams.input_shape, **self.options)
        print_rich(results_table(results, title="Inference latency of the trained network"))
        write_results(results, self.output_dir, {"options": self.options, "at": self.at})
        scalars = {
            f"latency/{r.device}/{r.variant}/bs{r.batch_size}/{stat}": r.stats[stat]
            for r in results
            if isinstance(r, Measurement)
            for stat in STATS
        }
        step = trainer.global_step
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=step)
            if isinstance(logger, TensorBoardLogger):
                rows = "\n".join(
                    f"| {k.removeprefix('latency/').rsplit('/', 1)[0]} | {v:.3f} |"
                    for k, v in scalars.items()
                    if k.endswith("mean_ms")
                )
                logger.experiment.add_text("latency/table", f"| run | mean ms |\n|---|---|\n{rows}", step)
                logger.experiment.add_figure("latency/spread", latency_figure(results), step)
        # The final metrics (metrics.json) are read from callback_metrics after fit/test.
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in scalars.items()})
        log.info("Latency measured: %s", self.output_dir / "benchmark.json")
