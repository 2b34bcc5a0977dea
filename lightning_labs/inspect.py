"""``python -m lightning_labs.inspect`` (or ``ll-inspect``): what a model is made of, how two models differ.

    python -m lightning_labs.inspect model=vgg11 data=cifar10
    python -m lightning_labs.inspect model=resnet50 model@compare=resnet50_extra_conv data=imagenet
    python -m lightning_labs.inspect ckpt_path=outputs/train/<date>/<time>/checkpoints/best.ckpt

From a model config, architectures only: pretrained weights are not loaded (``model.freeze`` is
applied, so the trainable/frozen split shows). ``ckpt_path`` describes the trained network of a
checkpoint instead, for the input it was trained on: its edits and frozen layers included.
"""

from __future__ import annotations

from omegaconf import DictConfig

from lightning_labs.runtime.console import print_rich
from lightning_labs.runtime.entry import command
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)


@command("inspect")
def main(cfg: DictConfig) -> None:
    from lightning_labs.runtime.model_tables import diff_table, facts_summary, facts_table
    from lightning_labs.training.assembly import describe_models

    name = str(cfg.ckpt_path) if cfg.get("ckpt_path") else cfg.model.get("name", "model")
    model, diff = describe_models(cfg)
    print_rich(facts_table(model, title=name))
    log.info("%s: %s", name, facts_summary(model))
    if diff is not None:
        other = cfg.compare.get("name", "compare")
        print_rich(diff_table(diff, name, other))
        log.info("%s: %s", other, facts_summary(diff.after))


if __name__ == "__main__":
    main()
