"""The model zoo, pretrained weights, model surgery, freezing and fine-tuning, and `inspect`."""

from __future__ import annotations

import logging
import urllib.error
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from lightning_labs.models import build_net, count_parameters, freeze, torchvision_net
from lightning_labs.models.facts import model_facts
from lightning_labs.models.surgery import apply_edits
from lightning_labs.runtime.config import config_path, to_plain
from lightning_labs.training.assembly import describe_models, model_arguments
from lightning_labs.training.run import train

RESNET18 = {"_target_": "lightning_labs.models.torchvision_net", "arch": "resnet18"}
FINETUNE = ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"]


def test_resnet50_has_the_published_size() -> None:
    facts = model_facts(torchvision_net("resnet50", num_classes=1000), (3, 224, 224))
    assert facts.params == pytest.approx(25.6e6, rel=0.01)
    assert facts.macs == pytest.approx(4.1e9, rel=0.01)


def test_torchvision_nets_follow_the_data() -> None:
    net = torchvision_net("mobilenet_v3_small", num_classes=7, in_channels=1)
    assert net(torch.zeros(2, 1, 64, 64)).shape == (2, 7)
    with pytest.raises(ValueError, match=r"Unknown torchvision model 'resnet5'.*resnet50"):
        torchvision_net("resnet5")


def test_resnet18_cifar_has_a_3x3_stem_and_no_max_pool(make_cfg) -> None:
    cfg = make_cfg("model=resnet18_cifar", "data=cifar10")
    facts = {"in_channels": 3, "num_classes": 10, "image_size": [32, 32]}
    arguments = model_arguments(to_plain(cfg.model), facts)
    net = build_net(arguments["net"], arguments["edits"])
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert isinstance(net.maxpool, nn.Identity)
    layers = {layer.name: layer for layer in model_facts(net, (3, 32, 32)).layers}
    assert layers["layer1.0"].output_shape == (64, 32, 32)  # full resolution into the first block


def test_insert_after_keeps_every_parameter_name_and_runs_in_place() -> None:
    net = torchvision_net("resnet18", num_classes=10)
    names = set(net.state_dict())
    apply_edits(
        net,
        [
            {
                "insert_after": "layer4",
                "name": "extra",
                "with": {
                    "_target_": "lightning_labs.models.ConvBNAct",
                    "in_channels": 512,
                    "out_channels": 32,
                },
            },
            {
                "replace": "fc",
                "with": {
                    "_target_": "lightning_labs.models.LinearHead",
                    "in_features": 32,
                    "num_classes": 10,
                },
            },
        ],
    )
    assert names - set(net.state_dict()) == set()  # nothing renamed, fc only resized
    assert any(name.startswith("extra.") for name in net.state_dict())
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 10)
    order = [layer.name for layer in model_facts(net, (3, 64, 64)).layers]
    assert order.index("layer4.1") < order.index("extra.0") < order.index("avgpool")


def test_unknown_layer_in_an_edit_suggests_names() -> None:
    with pytest.raises(
        ValueError, match=r"no layer named 'layer5'.*Did you mean: layer.*Top-level layers: conv1"
    ):
        apply_edits(
            torchvision_net("resnet18"), [{"replace": "layer5", "with": {"_target_": "torch.nn.Identity"}}]
        )
    with pytest.raises(ValueError, match="must say 'replace: LAYER' or 'insert_after: LAYER'"):
        apply_edits(torchvision_net("resnet18"), [{"after": "fc", "with": {"_target_": "torch.nn.Identity"}}])


def test_missing_and_unexpected_keys_are_listed(tmp_path: Path) -> None:
    torch.save(
        {"conv1.weight": torch.zeros(64, 3, 7, 7), "head.weight": torch.zeros(3)}, tmp_path / "odd.pth"
    )
    with pytest.raises(
        ValueError, match=r"missing in the file: bn1.weight.*unexpected in the file: head.weight"
    ):
        build_net({**RESNET18, "num_classes": 10}, weights=str(tmp_path / "odd.pth"))


def test_default_weights_without_a_network_say_how_to_pass_a_file(monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(
        RuntimeError, match=r"download https://download.pytorch.org/.*resnet18.*model.weights=/path/to/"
    ):
        build_net({**RESNET18, "num_classes": 10}, weights="DEFAULT", strict=False)
    with pytest.raises(FileNotFoundError, match="only torchvision models"):
        build_net({"_target_": "lightning_labs.models.LeNet5"}, weights="DEFAULT")
    with pytest.raises(ValueError, match="no weights named 'IMAGENET9'"):
        build_net({**RESNET18, "num_classes": 10}, weights="IMAGENET9")


def test_a_whole_pickled_model_is_refused_as_weights(tmp_path: Path) -> None:
    torch.save(torchvision_net("resnet18"), tmp_path / "model.pt")
    with pytest.raises(
        ValueError, match=r"could run code from the file\. If it is a whole model .*state_dict\(\)"
    ):
        build_net(RESNET18, weights=str(tmp_path / "model.pt"))


def test_freeze_patterns_and_globs() -> None:
    net = torchvision_net("resnet18", num_classes=10)
    norms = freeze(net, ["conv1", "bn1", "layer[12]"])
    frozen = {name for name, p in net.named_parameters() if not p.requires_grad}
    assert (
        "conv1.weight" in frozen and "layer2.1.bn2.bias" in frozen and "layer3.0.conv1.weight" not in frozen
    )
    assert net.bn1 in norms and net.layer3[0].bn1 not in norms
    with pytest.raises(ValueError, match="'layr1' matches no layer"):
        freeze(torchvision_net("resnet18"), ["layr1"])


def test_finetune_recipe_trains_only_the_new_layers(make_cfg, tmp_path: Path) -> None:
    """Freeze the pretrained backbone of resnet50_extra_conv: it stays bit-identical, BN statistics too."""
    backbone = torchvision_net("resnet50", num_classes=1000)
    torch.save(backbone.state_dict(), tmp_path / "resnet50.pth")
    cfg = make_cfg(
        "model=resnet50_extra_conv",
        "data=cifar10",
        "data.batch_size=8",
        "trainer.limit_train_batches=3",
        "test=false",
        f"model.weights={tmp_path / 'resnet50.pth'}",
        "model.strict=false",
        f"model.freeze=[{','.join(FINETUNE)}]",
        "optimizer=sgd",
        "scheduler=step",
    )
    _, objects = train(cfg)
    model = objects["model"]
    after = model.net.state_dict()
    for name, tensor in backbone.state_dict().items():
        if name.split(".")[0] in FINETUNE:
            assert torch.equal(after[name], tensor), name  # weights and running statistics untouched
    assert after["fc.weight"].shape == (10, 128)
    trained = [p for group in objects["trainer"].optimizers[0].param_groups for p in group["params"]]
    assert {id(p) for p in trained} == {id(p) for p in model.parameters() if p.requires_grad}
    assert sum(p.numel() for p in trained) == 2048 * 128 * 9 + 2 * 128 + 128 * 10 + 10


def test_new_layers_change_while_frozen_ones_do_not(make_cfg) -> None:
    cfg = make_cfg("model=cnn", "data=cifar10", "data.batch_size=16", "model.freeze=[features]", "test=false")
    _, objects = train(cfg)  # seeded: the same initial weights as a fresh build under the same seed
    model = objects["model"]
    torch.manual_seed(cfg.seed)
    fresh = type(model)(**model.hparams)
    assert torch.equal(model.net.features[0].weight, fresh.net.features[0].weight)
    assert not torch.equal(model.net.classifier[-1].weight, fresh.net.classifier[-1].weight)
    bn = next(m for m in model.net.features if isinstance(m, nn.BatchNorm2d))
    assert not bn.training and int(bn.num_batches_tracked) == 0  # frozen BatchNorm never updated

    # inspect ckpt_path=...: the trained network, its frozen layers and the input it was trained on.
    checkpoint = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    with initialize_config_dir(config_path(), version_base="1.3"):
        inspected = compose("inspect", overrides=[f"ckpt_path={checkpoint}", "paths.output_dir=/tmp"])
    facts, diff = describe_models(inspected)
    trainable, frozen = count_parameters(model.net)
    assert diff is None and (facts.trainable, facts.params) == (trainable, trainable + frozen)
    assert frozen > 0 and facts.input_shape == (3, 32, 32)


def test_unfreeze_at_epoch_adds_the_backbone_to_the_optimizer(make_cfg, caplog) -> None:
    cfg = make_cfg(
        "model.freeze=[features]", "model.unfreeze_at_epoch=1", "trainer.max_epochs=2", "test=false"
    )
    with caplog.at_level(logging.INFO):
        _, objects = train(cfg)
    assert "Epoch 2: " in caplog.text and "frozen parameters now train (lr x 0.1)" in caplog.text  # 1 frozen
    groups = objects["trainer"].optimizers[0].param_groups
    assert len(groups) == 2
    assert groups[1]["max_lr"] == pytest.approx(groups[0]["max_lr"] * 0.1)  # one-cycle drives the new group
    assert all(p.requires_grad for p in objects["model"].parameters())


def test_inspect_diffs_resnet50_and_its_surgery() -> None:
    with initialize_config_dir(config_path(), version_base="1.3"):
        cfg = compose(
            "inspect",
            overrides=[
                "model=resnet50",
                "model@compare=resnet50_extra_conv",
                "data=imagenet",  # 1000 classes, 3x224x224 as its config declares: no files needed
                "data.root=/nowhere",
                "paths.output_dir=/tmp",
            ],
        )
    facts, diff = describe_models(cfg)
    assert facts.params == pytest.approx(25.6e6, rel=0.01)
    assert [layer.name for layer in diff.added] == ["extra_conv.0", "extra_conv.1", "extra_conv.2"]
    assert {old.name for old, _ in diff.changed} == {"avgpool", "fc"} and not diff.removed
    assert diff.after.params - diff.before.params == 2048 * 128 * 9 + 2 * 128 + (128 - 2048) * 1000
    assert diff.after.macs > diff.before.macs


def test_inspect_reads_shapes_from_the_data_without_its_files() -> None:
    with initialize_config_dir(config_path(), version_base="1.3"):
        cfg = compose(
            "inspect",
            overrides=[
                "model=vgg11",
                "data=cifar10",
                "data.root=/nowhere",
                "paths.output_dir=/tmp",
                "model.freeze=[features]",
            ],
        )
    facts, diff = describe_models(cfg)
    assert diff is None and facts.params == 9_228_362 and facts.macs == pytest.approx(606e6, rel=0.002)
    assert facts.trainable == 5_130  # only the 512 -> 10 head


def test_model_facts_reach_tensorboard(make_cfg) -> None:
    cfg = make_cfg(
        "callbacks.model_facts={_target_:lightning_labs.callbacks.ModelFactsSummary,depth:1}", "test=false"
    )
    train(cfg)
    events = EventAccumulator(str(Path(cfg.paths.output_dir) / "tensorboard"))
    events.Reload()
    assert "model/facts/text_summary" in events.Tags()["tensors"]
    assert events.Scalars("model/params")[0].value == 61_706


def test_a_lightning_labs_checkpoint_serves_as_pretrained_weights(make_cfg) -> None:
    cfg = make_cfg("test=false")
    _, objects = train(cfg)
    best = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    net = build_net({"_target_": "lightning_labs.models.LeNet5"}, weights=str(best))
    trained = objects["model"].net.state_dict()
    assert all(torch.equal(tensor, trained[name]) for name, tensor in net.state_dict().items())
