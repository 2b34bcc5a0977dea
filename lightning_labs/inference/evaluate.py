"""Testing a checkpoint on its own data (or on the data settings given), with the run it came from.

The data is the checkpoint's own, with only the settings given changed (see
:mod:`lightning_labs.checkpoints.data_config`), and a split unlike training's is said so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import RichProgressBar
from omegaconf import DictConfig

from lightning_labs.checkpoints.data_config import typed_data_keys
from lightning_labs.checkpoints.restore import data_from_checkpoint, load_checkpoint, model_from_checkpoint
from lightning_labs.models import check_net_fits_data
from lightning_labs.runtime.config import instantiate, to_plain
from lightning_labs.runtime.launch_checks import check_accelerator
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)


def training_environment(ckpt_path: Path) -> dict[str, Any] | None:
    """The ``environment.json`` of the run that wrote the checkpoint (machine, versions, seed, commit)."""
    path = ckpt_path.resolve().parent.parent / "environment.json"
    if not path.is_file():
        return None
    environment = json.loads(path.read_text())
    log.info(
        "Trained on %s (%s) with torch %s, seed %s, commit %s",
        environment.get("hostname"),
        environment.get("gpu") or environment.get("cpu"),
        environment.get("torch"),
        environment.get("seed"),
        environment.get("git_commit"),
    )
    return environment


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test metrics of ``cfg.ckpt_path`` on the test split; also written to ``eval.json``."""
    check_accelerator(cfg.trainer)
    checkpoint = load_checkpoint(cfg.ckpt_path, trusted=cfg.trust_checkpoint)
    model = model_from_checkpoint(checkpoint)
    datamodule = data_from_checkpoint(checkpoint, to_plain(cfg.get("data")), typed_data_keys())
    check_net_fits_data(model.net, datamodule.input_shape, datamodule.num_classes)
    progress = [RichProgressBar()] if cfg.trainer.get("enable_progress_bar", True) else []
    trainer = instantiate(cfg.trainer, logger=False, callbacks=progress)
    results = trainer.test(model, datamodule=datamodule, verbose=False)[0]
    metrics = {name: float(value) for name, value in results.items()}
    differences = datamodule.differences_from_training()
    for difference in differences:
        log.warning(
            "Not the data of the checkpoint's run: %s. These metrics do not compare with its own.", difference
        )
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "checkpoint": str(cfg.ckpt_path),
        "data": datamodule.name,
        "data_identity": datamodule.identity(),
        "same_data_as_training": None if datamodule.trained_identity is None else not differences,
        "metrics": metrics,
        "trained_with": training_environment(Path(cfg.ckpt_path)),
    }
    (output_dir / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")
    return metrics
