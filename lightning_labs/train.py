"""``python -m lightning_labs.train``: compose the config, build data, model and trainer, fit, test.

python -m lightning_labs.train model=vgg11 data=cifar10 trainer=gpu
python -m lightning_labs.train -m model.pool=max,avg model.act=relu,sigmoid

Hydra composes the config and the values are checked before torch and Lightning are imported
(about 5 s), so a mistyped option or value is refused in about a second. The run itself is
:func:`lightning_labs.training.run`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from lightning_labs.config import CONFIG_DIR
from lightning_labs.config_checks import check_values
from lightning_labs.errors import clear_errors


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@clear_errors
def main(cfg: DictConfig) -> float | None:
    check_values(cfg)
    from lightning_labs.training import run  # torch and Lightning load only for a valid config

    return run(cfg)


if __name__ == "__main__":
    main()
