"""``python -m lightning_labs.predict ckpt_path=...`` (or ``ll-predict``): predict with a checkpoint.

python -m lightning_labs.predict ckpt_path=outputs/train/<date>/<time>/checkpoints/best.ckpt count=20
python -m lightning_labs.predict ckpt_path=... split=val count=40 seed=1
python -m lightning_labs.predict ckpt_path=... image=digit.png
python -m lightning_labs.predict ckpt_path=... image=my_photos/ topk=3

``split=`` (test by default, or val; ``seed=`` picks the samples) prints predicted against true
classes for ``count`` samples of the checkpoint's own data and their accuracy, and writes
``predictions.csv`` and ``predictions.png``. ``image=`` prepares each file exactly as at
evaluation and prints its top-k classes, written to ``predictions.json`` and ``predictions.csv``
(see :mod:`lightning_labs.inference.predict`).
"""

from __future__ import annotations

from omegaconf import DictConfig

from lightning_labs.runtime.entry import command


@command("predict")
def main(cfg: DictConfig) -> None:
    from lightning_labs.inference.predict import (
        predict,
        predict_split,
        print_predictions,
        print_split_predictions,
    )

    if cfg.image is None:
        print_split_predictions(predict_split(cfg))
    else:
        print_predictions(predict(cfg))


if __name__ == "__main__":
    main()
