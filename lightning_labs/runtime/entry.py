"""What every Hydra command shares: its config, one clear message for an error, quiet logging.

A command is a function of the composed config::

    @command("eval")
    def main(cfg: DictConfig) -> None:
        from lightning_labs.inference.evaluate import evaluate  # torch loads once the config is valid

        print_metrics("Test metrics", evaluate(cfg))

Hydra composes ``conf/<config_name>.yaml`` with the command line first, so a mistyped option is
refused in about a second; commands import their library (and with it torch and Lightning, about
5 s) inside the function for that reason, and give their value checks as ``check``.
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
from lightning_labs.runtime.parallel_job import in_own_slot

T = TypeVar("T")


def command(
    config_name: str, check: Callable[[DictConfig], None] | None = None
) -> Callable[[Callable[[DictConfig], T]], Callable[[], T]]:
    """Turn ``task(cfg)`` into a command line: Hydra's main over ``conf/<config_name>.yaml``.

    ``check(cfg)`` runs first, before torch and Lightning load, so a wrong value is refused in
    about a second too. Then Lightning is imported and its own console handler is replaced by the
    run's (:func:`quiet_third_party`: it must follow the import, which attaches that handler), so
    each of its messages is printed once and kept in the run's log file. Errors end as one message
    and exit status 1 (:func:`clear_errors`). In a ``hydra/launcher=parallel`` sweep the job first
    takes its own devices and output file (:func:`in_own_slot`). Hydra names the run
    (``outputs/<task>/...``) after the module that defines ``task``.
    """

    def decorate(task: Callable[[DictConfig], T]) -> Callable[[], T]:
        @functools.wraps(task)
        def checked_then_quiet(cfg: DictConfig) -> T:
            if check is not None:
                check(cfg)
            import lightning  # noqa: F401  (the training stack, once the config is known to be good)

            quiet_third_party()
            return task(cfg)

        return hydra.main(version_base="1.3", config_path=config_path(), config_name=config_name)(
            in_own_slot(clear_errors(checked_then_quiet))
        )

    return decorate
