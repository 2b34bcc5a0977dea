"""What every Hydra command shares: its config, one clear message for an error, quiet logging.

A command is a function of the composed config::

    @command("eval")
    def main(cfg: DictConfig) -> None:
        from lightning_labs.inference.evaluate import evaluate  # torch loads once the config is valid

        print_metrics("Test metrics", evaluate(cfg))

Hydra composes ``conf/<config_name>.yaml`` with the command line first, so a mistyped option is
refused in about a second; commands import their library (and with it torch and Lightning, about
5 s) inside the function for that reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import hydra
from omegaconf import DictConfig

from lightning_labs.runtime.config import config_path
from lightning_labs.runtime.errors import clear_errors
from lightning_labs.runtime.logs import quiet_third_party

T = TypeVar("T")


def command(config_name: str) -> Callable[[Callable[[DictConfig], T]], Callable[[], T]]:
    """Turn ``task(cfg)`` into a command line: Hydra's main over ``conf/<config_name>.yaml``.

    Its errors end as one message and exit status 1 (:func:`clear_errors`), and Lightning's own
    log records go through the run's handlers (:func:`quiet_third_party`). Hydra names the run
    (``outputs/<task>/...``) after the module that defines ``task``.
    """

    def decorate(task: Callable[[DictConfig], T]) -> Callable[[], T]:
        @functools.wraps(task)
        def quiet(cfg: DictConfig) -> T:
            quiet_third_party()
            return task(cfg)

        return hydra.main(version_base="1.3", config_path=config_path(), config_name=config_name)(
            clear_errors(quiet)
        )

    return decorate
