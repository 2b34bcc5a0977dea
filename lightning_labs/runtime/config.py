"""Where the configs live and how a config becomes plain values."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from hydra.errors import InstantiationException
from omegaconf import DictConfig, ListConfig, OmegaConf

from lightning_labs.runtime.launch import if_rank_zero, run_stamp


def config_dir() -> Path:
    """``conf/`` of the source tree, or the copy packed into an installed wheel."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "conf"
    return packaged if packaged.is_dir() else package.parent / "conf"


CONFIG_DIR = str(config_dir())


def to_plain(value: Any) -> Any:
    """Resolved dicts/lists/scalars: what checkpoints, JSON files and constructors can hold."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def instantiate(config: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets the constructor's own error through.

    Hydra wraps every constructor error in an ``InstantiationException``; ours already say what
    was wrong and how to fix it, so the original (with its type) reaches the user instead.
    """
    try:
        return hydra.utils.instantiate(config, **kwargs)
    except InstantiationException as err:
        if err.__cause__ is None:
            raise
        raise err.__cause__.with_traceback(err.__cause__.__traceback__) from None


def _open_dict() -> DictConfig:
    node = OmegaConf.create({})
    OmegaConf.set_struct(node, False)
    return node


def config_path() -> str:
    """``conf/``, with what its files need registered first; every command and test loads it here.

    ``conf/hydra/default.yaml`` names run directories with the ``run_stamp`` and ``if_rank_zero``
    resolvers (one directory every DDP rank agrees on, written by rank 0). ``data_changes@data``
    in the defaults of eval/predict/export/benchmark is a stored empty dict open to any key, so
    that ``data.root=...`` works without ``data=<name>`` (Hydra closes every YAML dict, and only a
    stored node can stay open); those commands apply its keys to the checkpoint's own data config.

    ``conf/hydra/launcher/submitit_{slurm,local}.yaml`` share their names with the submitit
    plugin's schemas, so Hydra 1.3 validates them against those (useful: a mistyped key is refused)
    and warns that it will stop doing so; they list every key, so they work either way and the
    warning is left out.
    """
    warnings.filterwarnings(
        "ignore", message=r"\n'hydra/launcher/submitit_\w+' is validated against ConfigStore"
    )
    OmegaConf.register_new_resolver("run_stamp", run_stamp, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("if_rank_zero", if_rank_zero, replace=True)
    ConfigStore.instance().store(name="data_changes", node=_open_dict())
    return CONFIG_DIR
