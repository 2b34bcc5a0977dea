"""``python -m lightning_labs.inspect``: what a model is made of, and how two models differ.

    python -m lightning_labs.inspect model=vgg11 data=cifar10
    python -m lightning_labs.inspect model=resnet50 model@compare=resnet50_extra_conv \
        input_shape=[3,224,224] num_classes=1000

Architectures only: pretrained weights are not loaded (``model.freeze`` is applied, so the
trainable/frozen split shows).
"""

from __future__ import annotations

from typing import Any

import hydra
import rich
from omegaconf import DictConfig

from lightning_labs.assembly import data_facts, model_arguments
from lightning_labs.config import CONFIG_DIR, to_plain
from lightning_labs.console import diff_table, facts_summary, facts_table
from lightning_labs.errors import clear_errors
from lightning_labs.logs import get_logger, quiet_third_party
from lightning_labs.models import build_net, check_net_fits_data, freeze
from lightning_labs.models.facts import ModelDiff, ModelFacts, diff_models, model_facts

log = get_logger(__name__)


def describe(model_cfg: dict[str, Any], facts: dict[str, Any], depth: int) -> ModelFacts:
    """Facts of the network a model config builds for data with ``facts``."""
    arguments = model_arguments(model_cfg, facts)
    net = build_net(arguments["net"], arguments["edits"])
    input_shape = [facts["in_channels"], *facts["image_size"]]
    check_net_fits_data(net, input_shape, facts["num_classes"])
    freeze(net, arguments["freeze"])
    return model_facts(net, input_shape, depth)


def inspect_models(cfg: DictConfig) -> tuple[ModelFacts, ModelDiff | None]:
    facts = data_facts(cfg)
    model = describe(to_plain(cfg.model), facts, cfg.depth)
    compare = to_plain(cfg.get("compare"))
    return model, diff_models(model, describe(compare, facts, cfg.depth)) if compare else None


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="inspect")
@clear_errors
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    name = cfg.model.get("name", "model")
    model, diff = inspect_models(cfg)
    rich.print(facts_table(model, title=name))
    log.info("%s: %s", name, facts_summary(model))
    if diff is not None:
        other = cfg.compare.get("name", "compare")
        rich.print(diff_table(diff, name, other))
        log.info("%s: %s", other, facts_summary(diff.after))


if __name__ == "__main__":
    main()
