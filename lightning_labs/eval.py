"""``python -m lightning_labs.eval ckpt_path=...`` (or ``ll-eval``): test a checkpoint, print its metrics.

python -m lightning_labs.eval ckpt_path=outputs/train/<date>/<time>/checkpoints/best.ckpt
python -m lightning_labs.eval ckpt_path=... data.root=/other/copy

The data is the checkpoint's own, with only the settings given changed. The metrics and the
accuracy of each class are printed; the run directory gets ``eval.json``,
``per_class_accuracy.csv`` and ``confusion_matrix.png`` (see :mod:`lightning_labs.inference.evaluate`).
"""

from __future__ import annotations

from omegaconf import DictConfig

from lightning_labs.runtime.entry import command
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)


@command("eval")
def main(cfg: DictConfig) -> None:
    from lightning_labs.inference.evaluate import print_class_scores, run_evaluation
    from lightning_labs.runtime.console import print_metrics

    evaluation = run_evaluation(cfg)
    print_metrics("Test metrics", evaluation.metrics)
    print_class_scores(evaluation.classes)
    log.info("Checkpoint: %s", cfg.ckpt_path)


if __name__ == "__main__":
    main()
