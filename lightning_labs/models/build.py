"""Build a network from its config and make sure it fits the data before any training starts."""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import torch
from torch import nn

from lightning_labs.models.surgery import apply_edits
from lightning_labs.models.weights import load_weights
from lightning_labs.runtime.config import instantiate

DATA_FACTS = ("in_channels", "num_classes", "image_size")
HYDRA_KEYS = ("_target_", "_args_", "_partial_", "_convert_", "_recursive_")
MISSING = (None, "", "???")
MAX_LISTED = 30  # a package of hundreds of classes (torch.nn) gets the close matches only


def _public_callables(module: ModuleType) -> list[str]:
    """The classes a module defines itself, or else every public class and function it offers
    (packages such as ``torch.nn`` define theirs in submodules)."""
    own = [n for n, v in vars(module).items() if inspect.isclass(v) and v.__module__ == module.__name__]
    offered = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
    return sorted(own or offered)


def _missing_attribute(target: str, module: ModuleType, rest: list[str]) -> ValueError:
    """The message for ``module.rest`` not found: a module that could not be imported, or a typo."""
    if len(rest) > 1:
        return ValueError(
            f"_target_={target!r} cannot be imported: there is no module "
            f"{module.__name__}.{rest[0]}. Check the spelling of the module path."
        )
    names = _public_callables(module)
    close = difflib.get_close_matches(rest[0], names, n=3)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    listing = f" It defines: {', '.join(names) or 'no class'}." if len(names) <= MAX_LISTED else ""
    return ValueError(
        f"_target_={target!r} cannot be imported: module {module.__name__} has no {rest[0]!r}.{hint}{listing}"
    )


def locate(target: str) -> Any:
    """The class or function named by a ``_target_``, or one ValueError saying what is missing.

    Hydra's own lookup logs its error and raises another; this one names the module that could
    not be imported, or the classes the module does define when the class name is mistyped.
    """
    parts = target.split(".")
    for end in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:end])
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is not None and name != err.name and not name.startswith(f"{err.name}."):
                raise ValueError(f"_target_={target!r}: importing {name} failed: {err}") from err
            continue
        except Exception as err:  # the user's module itself fails: a syntax error, a bad import...
            raise ValueError(
                f"_target_={target!r}: importing {name} failed: {type(err).__name__}: {err}"
            ) from err
        found: Any = module
        for i, attribute in enumerate(parts[end:]):
            if not hasattr(found, attribute):
                raise _missing_attribute(target, module, parts[end + i :])
            found = getattr(found, attribute)
        return found
    raise ValueError(
        f"_target_={target!r} cannot be imported: no module named {parts[0]!r}. Check the spelling, "
        "and that its package is installed or its folder is on PYTHONPATH (e.g. run from the folder "
        "that holds it, or PYTHONPATH=<that folder>)."
    )


def _check_arguments(target: str, params: Mapping[str, inspect.Parameter], config: Mapping[str, Any]) -> None:
    """Refuse settings the constructor does not take, before it raises a bare TypeError.

    The usual cause: ``model.net._target_`` set on another model's config (``model=lenet5``, the
    default, passes ``act`` and ``pool``), where ``model=custom`` passes nothing of its own.
    """
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = [key for key in config if key not in params and key not in HYDRA_KEYS]
    if unknown:
        raise ValueError(
            f"{target} takes no argument {', '.join(unknown)} (it takes: {', '.join(params) or 'none'}). "
            f"For your own network, start from model=custom: model=custom model.net._target_={target}; "
            "otherwise drop those settings."
        )


def complete_net_config(net: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, Any]:
    """Fill ``in_channels``, ``num_classes`` and ``image_size`` from the data.

    A value is filled only where the constructor names the parameter and the config leaves it
    unset (missing or null), so configs never repeat what the data already knows and a user's
    own network receives only the arguments it declares. Blocks inserted by model surgery get
    the same treatment (a new head's ``num_classes``, for instance).
    """
    config = dict(net)
    target = config.get("_target_")
    if target in MISSING:
        raise ValueError(
            "The network config has no _target_: model=custom needs your class, "
            "model.net._target_=pkg.Class (e.g. model=custom model.net._target_=my_pkg.MyNet)."
        )
    params = inspect.signature(locate(target)).parameters
    _check_arguments(target, params, config)
    for key in DATA_FACTS:
        if key in params and config.get(key) is None:
            config[key] = facts[key]
    return config


def build_net(
    config: Mapping[str, Any],
    edits: Sequence[Mapping[str, Any]] = (),
    weights: str | None = None,
    strict: bool = True,
) -> nn.Module:
    """The network of a model config: built from ``_target_``, edited, then given its weights.

    Weights load after the edits, so a lightning_labs checkpoint saved from this same edited
    network loads whole, and weights of the unedited network (torchvision's, say) fill every
    layer the edits kept, while the layers they replaced or inserted stay fresh.
    """
    try:
        net = instantiate(dict(config), _convert_="all")
    except Exception as err:
        cause = err.__cause__ or err
        raise ValueError(f"Could not build the network {config.get('_target_')}: {cause}") from err
    if not isinstance(net, nn.Module):
        raise TypeError(f"model.net._target_ must build an nn.Module, got {type(net).__name__}")
    edited = apply_edits(net, edits)
    if weights:
        load_weights(net, weights, config, strict, edited)
    return net


def _shape(value: Any) -> str:
    """``(2, 16, 5, 5)`` for a tensor; the shapes of a tuple of tensors; the type name otherwise."""
    if isinstance(value, torch.Tensor):
        return str(tuple(value.shape))
    if isinstance(value, (tuple, list)):
        return ", ".join(_shape(v) for v in value)
    return type(value).__name__


def _expects(module: nn.Module) -> str:
    """What a layer wants of its input, for the layers where a wrong shape is most common."""
    if isinstance(module, nn.Conv2d):
        return f"a Conv2d expecting {module.in_channels} input channels"
    if isinstance(module, nn.Linear):
        return f"a Linear expecting {module.in_features} input features"
    return type(module).__name__


class LayerTrace:
    """Forward hooks recording the layers a forward pass is inside and the ones it has left.

    When a forward pass raises, the innermost layer still open is the one that failed.
    """

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.names = {module: name for name, module in net.named_modules()}
        self.open: list[tuple[nn.Module, str]] = []  # (layer, its input's shape)
        self.done: list[str] = []  # "layer -> output shape"
        self.handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> LayerTrace:
        for module in self.names:
            self.handles += [
                module.register_forward_pre_hook(self._enter),
                module.register_forward_hook(self._leave),
            ]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()

    def _enter(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.open.append((module, _shape(args)))

    def _leave(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        self.open.pop()
        self.done.append(f"{self.names[module]} -> {_shape(output)}")

    def where(self) -> str:
        """Where the failed forward pass was: the layer and its input shape, or the network's own
        ``forward`` code and the last layer it got through."""
        if not self.open:
            return "before its first layer"
        module, shape = self.open[-1]
        if module is not self.net:
            return f"in layer {self.names[module]} ({_expects(module)}), given input of shape {shape}"
        after = f", after layer {self.done[-1]}" if self.done else ""
        return f"in {type(module).__name__}.forward itself, between layers{after}"


def check_net_fits_data(net: nn.Module, input_shape: Sequence[int], num_classes: int) -> None:
    """Run one tiny batch through the network so that a mismatch fails now, naming the layer
    that failed and the shapes involved (the original error stays chained, for the log file)."""
    x = torch.zeros(2, *input_shape)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), LayerTrace(net) as trace:
            out = net(x)
    except (RuntimeError, ValueError, IndexError) as err:  # what torch raises for a wrong shape
        raise ValueError(
            f"The network does not fit the data: the data gives images of shape {tuple(input_shape)} "
            f"(channels, height, width), and a batch of {tuple(x.shape)} fails {trace.where()}: {err}"
        ) from err
    finally:
        net.train(was_training)
    if tuple(out.shape) != (2, num_classes):
        raise ValueError(
            f"The network outputs shape {tuple(out.shape[1:])} per image, but the data has "
            f"{num_classes} classes: the last layer must output {num_classes} logits."
        )
