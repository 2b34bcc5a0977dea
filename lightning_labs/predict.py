"""``python -m lightning_labs.predict ckpt_path=... image=PATH`` (or ``ll-predict``): classify image files.

python -m lightning_labs.predict ckpt_path=outputs/train/<date>/<time>/checkpoints/best.ckpt image=digit.png
python -m lightning_labs.predict ckpt_path=... image=my_photos/ topk=3

Each image is prepared exactly as at evaluation (colour mode, size, normalisation, rebuilt from
the checkpoint), and the top-k classes with their probabilities are printed and written to
``predictions.json`` in the run directory (see :mod:`lightning_labs.inference.predict`).
"""

from __future__ import annotations

from omegaconf import DictConfig

from lightning_labs.runtime.entry import command


@command("predict")
def main(cfg: DictConfig) -> None:
    from lightning_labs.inference.predict import predict, print_predictions

    print_predictions(predict(cfg))


if __name__ == "__main__":
    main()
