"""``python -m lightning_labs.train`` (or ``ll-train``): compose the config, train, test the best checkpoint.

python -m lightning_labs.train model=vgg11 data=cifar10 trainer=gpu
python -m lightning_labs.train -m model.pool=max,avg model.act=relu,sigmoid

The values and the launch (no DDP trainer in a sweep) are checked before torch and Lightning
are imported (about 5 s), so a mistyped option or value is refused in about a second. The run itself is
:func:`lightning_labs.training.run.run`; it returns ``optimized_metric`` to a sweeper.
"""

from __future__ import annotations

from omegaconf import DictConfig

from lightning_labs.runtime.entry import command
from lightning_labs.runtime.launch_checks import check_launch
from lightning_labs.training.config_checks import check_values


def check(cfg: DictConfig) -> None:
    """Values and launch, refused before the config tree is printed and torch loads."""
    check_values(cfg)
    check_launch(cfg)


@command("train", check=check)
def main(cfg: DictConfig) -> float | None:
    from lightning_labs.training.run import run

    return run(cfg)


if __name__ == "__main__":
    main()
