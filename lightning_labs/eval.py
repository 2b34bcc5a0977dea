"""``python -m lightning_labs.eval ckpt_path=...`` (or ``ll-eval``): test a checkpoint, print its metrics.

python -m lightning_labs.eval ckpt_path=outputs/train/<date>/<time>/checkpoints/best.ckpt
python -m lightning_labs.eval ckpt_path=... data.root=/other/copy

The data is the checkpoint's own, with only the settings given changed; the metrics are also
written to ``eval.json`` (see :mod:`lightning_labs.inference.evaluate`).
"""

from __future__ import annotations

from omegaconf import DictConfig

from lightning_labs.runtime.entry import command
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)


@command("eval")
def main(cfg: DictConfig) -> None:
    from lightning_labs.inference.evaluate import evaluate
    from lightning_labs.runtime.console import print_metrics

    print_metrics("Test metrics", evaluate(cfg))
    log.info("Checkpoint: %s", cfg.ckpt_path)


if __name__ == "__main__":
    main()
