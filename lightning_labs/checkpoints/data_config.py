"""The data config that eval, predict, export and benchmark build: the checkpoint's, changed as asked.

A network only gives the accuracy it was trained for on images prepared as in training, so
the checkpoint's own data config is the starting point, and a setting changes only where the
user asks for it:

- ``data.<key>=...`` changes that setting of the checkpoint's data config;
- ``data=<name>`` naming the checkpoint's own dataset (same class and name) keeps its settings
  and changes only the ``data.<key>`` typed with it;
- ``data=<name>`` naming another dataset starts from that file, but keeps the image size,
  resize and normalisation the network was trained with unless they are typed.

Any remaining difference in preprocessing from training is logged as a warning.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser

from lightning_labs.runtime.config import instantiate
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)

# The settings that decide what an evaluation image looks like to the network.
PREPROCESSING = ("image_size", "resize_size", "mean", "std")
# What tells two data configs of one class apart (imagenet vs folder, cifar10 vs cifar100).
DATASET_KEYS = ("_target_", "name", "variant")
NOT_RECORDED = "The checkpoint does not record its data: name it with data=<name> (and data.root=...)"


def data_overrides() -> list[str] | None:
    """The keys of this Hydra job's ``data``/``data.*`` overrides (``data``, ``data.root``...).

    None outside a Hydra job (a config composed in Python), where nothing tells a typed value
    from a file's default.
    """
    if not HydraConfig.initialized():
        return None
    overrides = OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))
    return [o.key_or_group for o in overrides if o.key_or_group.split(".")[0] == "data"]


def typed_data_keys() -> set[str] | None:
    """The data settings typed on the command line (``data.root=...`` gives ``root``).

    None outside a Hydra job: every setting of ``data`` then counts as given.
    """
    keys = data_overrides()
    return None if keys is None else {key.split(".")[1] for key in keys if "." in key}


def _dataset(config: dict[str, Any]) -> str:
    return " ".join(str(config[key]) for key in DATASET_KEYS if config.get(key) is not None)


def _settings(config: dict[str, Any]) -> str:
    return ", ".join(f"data.{key}={value}" for key, value in config.items())


def merged_data_config(
    trained: dict[str, Any] | None, given: dict[str, Any] | None, typed: set[str] | None
) -> dict[str, Any]:
    """The data config to build from ``trained`` (the checkpoint's) and ``given`` (the command's ``data``).

    ``given`` without ``_target_`` holds only ``data.<key>`` changes; with one, it is a dataset
    file (``data=<name>``) plus the ``typed`` keys (None: all of them count as typed).
    """
    if not given:
        if not trained:
            raise ValueError(NOT_RECORDED)
        return trained
    if "_target_" not in given:
        if not trained:
            raise ValueError(f"{NOT_RECORDED}; data.{next(iter(given))}=... alone has nothing to change")
        return {**trained, **given}
    if not trained:
        return given
    changed = set(given) if typed is None else typed & set(given)
    if all(trained.get(key) == given.get(key) for key in DATASET_KEYS):
        return {**trained, **{key: given[key] for key in changed}}
    kept = {
        key: trained[key]
        for key in PREPROCESSING
        if key in trained and key in given and key not in changed and trained[key] != given[key]
    }
    if kept:
        log.info(
            "data: %s is another dataset than the checkpoint's (%s); keeping the preprocessing the "
            "network was trained with: %s (type data.<setting>=... to change it)",
            _dataset(given),
            _dataset(trained),
            _settings(kept),
        )
    return {**given, **kept}


def build_data(config: dict[str, Any]) -> Any:
    """The DataModule of ``config``; a setting its class does not take is named with those it does.

    The entry configs accept any ``data.<key>`` (it changes the checkpoint's config), so a typo
    such as ``data.imagesize`` reaches the constructor instead of Hydra's check.
    """
    try:
        return instantiate(config)
    except TypeError as err:
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(err))
        if not unknown:
            raise
        known = ", ".join(sorted(key for key in config if key != "_target_" and key != unknown[1]))
        raise ValueError(
            f"data.{unknown[1]} is not a setting of {config['_target_']}: check the spelling. Its "
            f"settings: {known}."
        ) from None


def trained_identity(checkpoint: dict[str, Any], trained: dict[str, Any] | None) -> dict[str, Any] | None:
    """``identity()`` of the data the checkpoint's run read (saved with its DataModule's state)."""
    if not trained:
        return None
    state = checkpoint.get(str(trained.get("_target_", "")).rsplit(".", 1)[-1])
    return state.get("identity") if isinstance(state, dict) else None


def pinned_to_trained_folder(
    config: dict[str, Any],
    trained: dict[str, Any] | None,
    identity: dict[str, Any] | None,
    given: dict[str, Any] | None,
    typed: set[str] | None,
) -> dict[str, Any]:
    """``config`` reading the folder training read, unless the user points elsewhere.

    A relative ``data.root``, or MNIST's look for a full set in ``data_dir`` before the bundled
    sample, depends on the folder a command is started in: from another folder, eval would test
    on other data and print its accuracy as the checkpoint's. The absolute folder in the
    checkpoint settles it; ``data.root``/``data.data_dir`` typed (or another dataset named) win.
    """
    root = (identity or {}).get("root")
    chosen = set(given or {}) if typed is None else typed
    if not root or not trained or config.get("_target_") != trained.get("_target_") or "root" not in config:
        return config
    if chosen & {"root", "data_dir"}:
        return config
    if not Path(root).exists():
        log.warning("The checkpoint's data folder %s is gone: reading the data as configured", root)
        return config
    log.info("Data folder of the checkpoint's training run: %s (data.root=... points to another)", root)
    return {**config, "root": root}


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(n) for n in shape)


def log_preprocessing_changes(
    trained: dict[str, Any] | None,
    config: dict[str, Any],
    trained_shape: Sequence[int] | None,
    input_shape: Sequence[int],
) -> None:
    """Warn where ``config`` prepares images otherwise than training did (``trained``, ``trained_shape``)."""
    changes = [
        f"data.{key} {trained[key]} -> {config[key]}"
        for key in PREPROCESSING
        if trained and key in trained and key in config and trained[key] != config[key]
    ]
    if trained_shape and tuple(trained_shape) != tuple(input_shape):
        changes.append(f"input {_shape(trained_shape)} -> {_shape(input_shape)}")
    if changes:
        log.warning(
            "Images are prepared otherwise than in training: %s. Results can differ from the "
            "trained network's; leave those data settings out to use the checkpoint's.",
            "; ".join(changes),
        )
