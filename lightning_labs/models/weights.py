"""Pretrained weights: a state dict or checkpoint on disk, or torchvision's named weights.

Files come in a few common wrappings, which are recognised and unwrapped (the log says which):
a dict holding the weights under ``state_dict``, ``model`` or ``model_state_dict`` (PyTorch's
ImageNet example saves ``{'epoch', 'arch', 'state_dict', 'best_acc1', 'optimizer'}``), a
lightning_labs ``.ckpt`` (the network's tensors are those under ``net.``), and names that all
start with ``module.`` (``nn.DataParallel``/DDP) or ``_orig_mod.`` (``torch.compile``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from lightning_labs.checkpoints.safe_load import torch_load
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)
SHOWN = 8  # how many key names an error lists
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
# A whole pickled model (torch.save(model)) as model.weights: only its tensors are wanted.
WHOLE_MODEL = (
    "If it is a whole model saved with torch.save(model) and you trust it, save its weights once in "
    "Python: torch.save(torch.load(FILE, weights_only=False).state_dict(), 'weights.pth'), and pass "
    "model.weights=weights.pth."
)
PREFIXES = {"module.": "nn.DataParallel/DistributedDataParallel", "_orig_mod.": "torch.compile"}


@dataclass
class Weights:
    """Named tensors, how they were found, and the network a lightning_labs checkpoint records."""

    tensors: dict[str, torch.Tensor]
    found: list[str] = field(default_factory=list)
    net: Any = None  # a lightning_labs checkpoint's network config ...
    edits: list[Any] = field(default_factory=list)  # ... and its model surgery


def _names(keys: Sequence[str], shown: int = SHOWN) -> str:
    more = f" (+{len(keys) - shown} more)" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def _plain(value: Any) -> Any:
    """Configs as plain dicts and lists, so that a checkpoint's config compares equal to a live one."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def _is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(v, torch.Tensor) for v in value.values())
    )


def _is_lightning_labs_checkpoint(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("hyper_parameters"), Mapping)
        and "net" in value["hyper_parameters"]
        and isinstance(value.get("state_dict"), Mapping)
        and any(str(k).startswith("net.") for k in value["state_dict"])
    )


def _no_weights(loaded: Any, path: Path, where: str) -> ValueError:
    if not isinstance(loaded, Mapping):
        return ValueError(f"{path} holds a {type(loaded).__name__}, not weights (names mapped to tensors)")
    keys = _names([str(k) for k in loaded]) or "none (it is empty)"
    return ValueError(
        f"{path} holds no weights: {where} {keys}; none is a tensor, nor names mapped to tensors under "
        f"{' / '.join(map(repr, WRAPPER_KEYS))}. Pass a state dict or a checkpoint."
    )


def _unwrap(loaded: Any, path: Path) -> Weights:
    """The named tensors in a loaded file, found through the wrappings named in the module docstring."""
    if _is_lightning_labs_checkpoint(loaded):
        hparams = loaded["hyper_parameters"]
        tensors = {k.removeprefix("net."): v for k, v in loaded["state_dict"].items() if k.startswith("net.")}
        found = ["the network (net.*) of a lightning_labs checkpoint"]
        return Weights(tensors, found, hparams["net"], hparams.get("edits") or [])
    found, where = [], "its top-level keys are"
    while not _is_state_dict(loaded):
        if not isinstance(loaded, Mapping):
            raise _no_weights(loaded, path, where)
        key = next((k for k in WRAPPER_KEYS if isinstance(loaded.get(k), Mapping)), None)
        if key is None:
            raise _no_weights(loaded, path, where)
        beside = [str(k) for k in loaded if k != key]
        found.append(f"the {key!r} entry of a dict" + (f" (beside {_names(beside)})" if beside else ""))
        loaded, where = loaded[key], f"its {key!r} entry holds"
    return Weights(dict(loaded), found)


def read_weights(source: str, net_config: Mapping[str, Any]) -> Weights:
    """The tensors named by ``source``: a file path, or a torchvision weights name such as DEFAULT."""
    path = Path(source)
    if path.is_file():
        return _unwrap(torch_load(path, opt_in=WHOLE_MODEL), path)
    arch = net_config.get("arch") if str(net_config.get("_target_", "")).endswith("torchvision_net") else None
    if arch is None:
        raise FileNotFoundError(
            f"model.weights={source!r} is not a file, and only torchvision models (model=resnet50, ...) "
            "have named weights. Pass the path of a .pth state dict or .ckpt checkpoint."
        )
    try:
        weights = torchvision.models.get_model_weights(arch)[source]
    except KeyError:
        names = [w.name for w in torchvision.models.get_model_weights(arch)]
        raise ValueError(
            f"{arch} has no weights named {source!r}; choose one of: DEFAULT, {', '.join(names)}"
        ) from None
    try:
        return Weights(weights.get_state_dict(progress=False))
    except Exception as err:
        raise RuntimeError(
            f"Could not fetch torchvision's {weights} ({err}). Without a network, download "
            f"{weights.url} elsewhere and pass model.weights=/path/to/{Path(weights.url).name}"
        ) from None


def _wrapper_prefix(file_keys: Sequence[str], own_keys: Sequence[str]) -> str | None:
    """A prefix of ``PREFIXES`` that every name in the file has and no name of the network has."""
    for prefix in PREFIXES:
        everywhere = bool(file_keys) and all(k.startswith(prefix) for k in file_keys)
        if everywhere and not any(k.startswith(prefix) for k in own_keys):
            return prefix
    return None


def _strip_wrapper_prefixes(weights: Weights, own_keys: Sequence[str]) -> None:
    while prefix := _wrapper_prefix(list(weights.tensors), own_keys):
        weights.tensors = {k.removeprefix(prefix): v for k, v in weights.tensors.items()}
        weights.found.append(f"the prefix {prefix!r} of {PREFIXES[prefix]}, stripped")


def _fresh_layers(
    edited: Mapping[str, Mapping[str, Any]], weights: Weights, net_config: Mapping[str, Any]
) -> list[str]:
    """The layers replaced or inserted by edits that must not take tensors from ``weights``.

    Their tensors may come only from a lightning_labs checkpoint of the same network (same
    ``model.net``) saved with that same edit: a file of the unedited network, or of another
    one, can hold same-shaped tensors (an old head's bias) that mean something else there.
    """
    same_net = weights.net is not None and _plain(weights.net) == _plain(net_config)
    saved = [_plain(e) for e in weights.edits] if same_net else []
    return [name for name, edit in edited.items() if _plain(edit) not in saved]


def _in_layers(name: str, layers: Sequence[str]) -> bool:
    return any(name == layer or name.startswith(layer + ".") for layer in layers)


def _prefix_of(keys: Sequence[str], targets: Sequence[str]) -> str | None:
    """The prefix that, put in front of ``targets``, gives at least half of ``keys`` (None if none does)."""
    wanted = set(targets)
    counts = Counter(
        key[: i + 1] for key in keys for i, char in enumerate(key) if char == "." and key[i + 1 :] in wanted
    )
    if not counts:
        return None
    prefix, count = counts.most_common(1)[0]
    return prefix if count >= min(len(keys), len(wanted)) / 2 else None


def _prefix_hint(file_keys: Sequence[str], own_keys: Sequence[str]) -> str:
    if extra := _prefix_of(file_keys, own_keys):
        return (
            f"The file's names are the network's with {extra!r} in front: save them without it, e.g. "
            f"torch.save({{k.removeprefix({extra!r}): v for k, v in state.items()}}, 'fixed.pth')."
        )
    if lacking := _prefix_of(own_keys, file_keys):
        return (
            f"The network's names are the file's with {lacking!r} in front: the file holds part of a network."
        )
    return "No common prefix explains the difference: check that the file comes from this architecture."


@dataclass
class _Fit:
    """How the tensors of a file fit a network whose layers ``fresh`` must stay as initialised."""

    loaded: dict[str, torch.Tensor]
    kept: list[str]  # the network's tensors outside the fresh layers
    missing: list[str]
    unexpected: list[str]
    mismatched: list[str]  # "name (file shape) vs (network shape)"
    fresh: list[str]  # fresh layers that hold tensors, in the network or in the file

    def problems(self) -> list[str]:
        problems = []
        if self.missing:
            problems.append(f"missing in the file: {_names(self.missing)}")
        if self.unexpected:
            problems.append(f"unexpected in the file: {_names(self.unexpected)}")
        if self.mismatched:
            problems.append(f"shape differs (file vs network): {_names(self.mismatched)}")
        if self.fresh:
            problems.append(
                f"left fresh, as model.edits replaced or inserted them: {', '.join(self.fresh)} (their "
                "tensors load only from a lightning_labs checkpoint of this same edited network)"
            )
        return problems


def _fit(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor], fresh: Sequence[str]) -> _Fit:
    usable = {k: v for k, v in state.items() if not _in_layers(k, fresh)}
    fits = {k: v for k, v in usable.items() if k in own and v.shape == own[k].shape}
    return _Fit(
        loaded=fits,
        kept=[k for k in own if not _in_layers(k, fresh)],
        missing=[k for k in own if k not in usable and not _in_layers(k, fresh)],
        unexpected=[k for k in usable if k not in own],
        mismatched=[
            f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
            for k, v in usable.items()
            if k in own and k not in fits
        ],
        fresh=[layer for layer in fresh if any(_in_layers(k, [layer]) for k in [*own, *state])],
    )


def _too_few_message(source: str, state: Mapping[str, torch.Tensor], fit: _Fit) -> str:
    where = " outside the layers model.edits made" if fit.fresh else ""
    shapes = (
        f" Same names, other shapes (file vs network): {_names(fit.mismatched, 3)}." if fit.mismatched else ""
    )
    return (
        f"Only {len(fit.loaded)} of the {len(fit.kept)} tensors of the network{where} load from {source}: "
        "it does not hold this network's weights (model.strict=false lets some tensors, such as a new "
        f"head's, stay fresh, not most of them). The file holds: {_names(list(state), 5)}; the network "
        f"expects: {_names(fit.kept, 5)}.{shapes} {_prefix_hint(list(state), fit.kept)}"
    )


def load_weights(
    net: nn.Module,
    source: str,
    net_config: Mapping[str, Any],
    strict: bool = True,
    edited: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Copy the tensors of ``source`` into ``net``, parameters and buffers (BatchNorm statistics) alike.

    With ``strict`` every tensor of the network must come from the file and every tensor of the
    file must go into the network, with the same shape. Without it, the tensors that fit load
    and the rest (a new head, say) keep their fresh initialisation, but only when at least half
    of the network's tensors (outside the edited layers) load: fewer means that the file holds
    another network's weights, or names with an unknown prefix, and loading stops, naming both
    and the likely prefix. The layers in ``edited``
    (replaced or inserted by ``apply_edits``) stay fresh whatever their shapes, unless the file
    is a lightning_labs checkpoint of this same edited network (see ``_fresh_layers``).
    """
    own = net.state_dict()
    weights = read_weights(source, net_config)
    _strip_wrapper_prefixes(weights, list(own))
    if weights.found:
        log.info("Recognised in %s: %s", source, "; ".join(weights.found))
    fit = _fit(weights.tensors, own, _fresh_layers(edited or {}, weights, net_config))
    problems = fit.problems()
    too_few = not fit.loaded or len(fit.loaded) < len(fit.kept) / 2
    if problems and strict:
        way_out = (
            _prefix_hint(list(weights.tensors), fit.kept)
            if too_few
            else "To load the tensors that fit and keep the rest freshly initialised (e.g. a new head), "
            "pass model.strict=false."
        )
        raise ValueError(f"The weights in {source} do not fit the network: {'; '.join(problems)}. {way_out}")
    if too_few:
        raise ValueError(_too_few_message(source, weights.tensors, fit))
    net.load_state_dict(fit.loaded, strict=False)
    log.info("Loaded %d of %d tensors from %s", len(fit.loaded), len(own), source)
    for problem in problems:
        log.info("  not loaded: %s", problem)
