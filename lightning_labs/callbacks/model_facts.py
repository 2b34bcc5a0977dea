"""Print and log the model's parameters, MACs and layers when fitting starts."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from lightning_labs.models.facts import model_facts
from lightning_labs.runtime.console import print_rich
from lightning_labs.runtime.logs import get_logger
from lightning_labs.runtime.model_tables import facts_summary, facts_table

log = get_logger(__name__)


class ModelFactsSummary(L.Callback):
    """At fit start: the layer table on the console, totals in the log, the table in TensorBoard.

    Args:
        depth: nesting depth of the layers listed (1: top-level blocks only).
    """

    def __init__(self, depth: int = 2) -> None:
        self.depth = depth

    @rank_zero_only
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        facts = model_facts(pl_module.net, pl_module.hparams.input_shape, self.depth)
        print_rich(facts_table(facts, title=type(pl_module.net).__name__))
        log.info("Model: %s", facts_summary(facts))
        rows = "\n".join(
            f"| {layer.name} | {layer.kind} | {layer.output_shape} | {layer.params:,} | {layer.macs:,} |"
            for layer in facts.layers
        )
        header = "| layer | type | output | params | MACs |\n|---|---|---|---|---|"
        text = f"{facts_summary(facts)}\n\n{header}\n{rows}"
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_text("model/facts", text, global_step=trainer.global_step)
            logger.log_metrics(
                {"model/params": facts.params, "model/trainable": facts.trainable, "model/macs": facts.macs},
                step=trainer.global_step,
            )
