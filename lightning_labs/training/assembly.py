"""From configs to the objects they describe: the network of a model config, sized to the data.

Training builds its network inside the ClassifierModule from :func:`model_arguments`;
``inspect`` and ``benchmark`` build the same network here, without the module, or describe the
network a checkpoint holds.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig
from torch import nn

from lightning_labs.checkpoints.restore import load_checkpoint, model_from_checkpoint
from lightning_labs.models import build_net, check_net_fits_data, complete_net_config, freeze
from lightning_labs.models.facts import ModelDiff, ModelFacts, diff_models, model_facts
from lightning_labs.runtime.config import instantiate, to_plain


def data_facts(cfg: DictConfig) -> dict[str, Any]:
    """The data's facts; ``input_shape`` / ``num_classes`` from the command line take precedence."""
    shape, classes = cfg.get("input_shape"), cfg.get("num_classes")
    if not (shape and classes):
        # Reads no file; a folder dataset counts its class folders where they exist (else the
        # count its config declares), and data=custom reads its training set.
        datamodule = instantiate(cfg.data)
        shape = shape or datamodule.input_shape
        classes = classes or datamodule.num_classes
    return {"in_channels": shape[0], "num_classes": classes, "image_size": list(shape[1:])}


def model_arguments(model: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """The ClassifierModule arguments of a ``model`` config, completed with the data's facts."""
    edits = [
        {**e, "with": complete_net_config(e["with"], facts)} if "with" in e else e
        for e in model.get("edits") or []
    ]
    return {
        "net": complete_net_config(model["net"], facts),
        "edits": edits,
        "weights": model.get("weights"),
        "strict": model.get("strict", True),
        "freeze": list(model.get("freeze") or []),
        # torch.compile of the training steps; the module keeps the plain network (see ClassifierModule)
        "compile": bool(model.get("compile", False)),
        "compile_backend": model.get("compile_backend", "inductor"),
    }


def input_shape_of(facts: dict[str, Any]) -> list[int]:
    """Channels, height, width of one input image."""
    return [facts["in_channels"], *facts["image_size"]]


def network(model: dict[str, Any], facts: dict[str, Any]) -> nn.Module:
    """The architecture of a ``model`` config (edited and frozen; pretrained weights not loaded),
    checked to fit the data."""
    arguments = model_arguments(model, facts)
    net = build_net(arguments["net"], arguments["edits"])
    check_net_fits_data(net, input_shape_of(facts), facts["num_classes"])
    freeze(net, arguments["freeze"])
    return net


def checkpoint_network(path: str, trusted: bool) -> tuple[nn.Module, dict[str, Any]]:
    """The trained network of a checkpoint (its edits, weights and frozen layers) and its data's facts."""
    module = model_from_checkpoint(load_checkpoint(path, trusted))
    channels, *image_size = (int(n) for n in module.hparams["input_shape"])
    facts = {
        "in_channels": channels,
        "num_classes": int(module.hparams["num_classes"]),
        "image_size": image_size,
    }
    return module.net, facts


def describe_models(cfg: DictConfig) -> tuple[ModelFacts, ModelDiff | None]:
    """Facts of ``cfg.model`` for the data (or of ``cfg.ckpt_path``'s trained network, for the
    data it was trained on), and how ``cfg.compare`` (when given) differs from it."""
    if cfg.get("ckpt_path"):
        net, facts = checkpoint_network(str(cfg.ckpt_path), bool(cfg.trust_checkpoint))
    else:
        facts = data_facts(cfg)
        net = network(to_plain(cfg.model), facts)
    model = model_facts(net, input_shape_of(facts), cfg.depth)
    compare = to_plain(cfg.get("compare"))
    if not compare:
        return model, None
    return model, diff_models(model, model_facts(network(compare, facts), input_shape_of(facts), cfg.depth))
