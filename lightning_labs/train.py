"""``python -m lightning_labs.train`` (or ``ll-train``): compose the config, train, test the best checkpoint.

python -m lightning_labs.train model=vgg11 data=cifar10 trainer=gpu
python -m lightning_labs.train -m model.pool=max,avg model.act=relu,sigmoid

The values are checked before torch and Lightning are imported (about 5 s), so a mistyped
option or value is refused in about a second. The run itself is
:func:`lightning_labs.training.run.run`; it returns ``optimized_metric`` to a sweeper.
"""

from __future__ import annotations

from omegaconf import DictConfig

from lightning_labs.runtime.entry import command
from lightning_labs.training.config_checks import check_values


@command("train")
def main(cfg: DictConfig) -> float | None:
    check_values(cfg)
    from lightning_labs.training.run import run

    return run(cfg)


if __name__ == "__main__":
    main()
