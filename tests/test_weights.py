"""Loading weights: every tensor (BatchNorm statistics too) through every common wrapping of a file,
refusing files that do not hold the network's weights, and keeping the layers an edit made fresh."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from lightning_labs.models import build_net, torchvision_net
from lightning_labs.training.module import ClassifierModule

RESNET18 = {"_target_": "lightning_labs.models.torchvision_net", "arch": "resnet18"}
INPUT = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
EXTRA = {  # an inserted block whose tensors have the same shapes in any network that has it
    "insert_after": "layer4",
    "name": "extra",
    "with": {"_target_": "lightning_labs.models.ConvBNAct", "in_channels": 512, "out_channels": 128},
}
HEAD = {
    "replace": "fc",
    "with": {"_target_": "lightning_labs.models.LinearHead", "in_features": 128, "num_classes": 4},
}


def perturbed(net: nn.Module) -> nn.Module:
    """``net`` with every BatchNorm's statistics, counter and affine values and the head moved off their
    defaults, so that a loader that drops buffers, or any tensor, shows in the comparisons."""
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
                module.num_batches_tracked.fill_(int(torch.randint(1, 10_000, (), generator=generator)))
                module.weight.normal_(1, 0.2, generator=generator)
                module.bias.normal_(0, 0.2, generator=generator)
            elif isinstance(module, nn.Linear):
                module.weight.normal_(0, 0.1, generator=generator)
                module.bias.normal_(0, 0.1, generator=generator)
    return net.eval()


def source_resnet18(num_classes: int = 1000) -> nn.Module:
    torch.manual_seed(0)
    return perturbed(torchvision_net("resnet18", num_classes=num_classes))


def lightning_labs_checkpoint(
    source: nn.Module, config: dict[str, Any], edits: list[dict[str, Any]], path: Path
) -> Path:
    """``source`` in a checkpoint as the train command saves one (``net.*`` tensors, hyper_parameters)."""
    module = ClassifierModule(
        net=config,
        num_classes=config["num_classes"],
        input_shape=list(INPUT.shape[1:]),
        optimizer={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1},
        edits=edits,
    )
    module.net.load_state_dict(source.state_dict())
    torch.save(
        {
            "epoch": 2,
            "global_step": 30,
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
        },
        path,
    )
    return path


def _save(path: Path, content: Any) -> Path:
    torch.save(content, path)
    return path


def _imagenet_example(net: nn.Module, path: Path) -> Path:
    """What PyTorch's ImageNet example saves: a DataParallel model's state dict beside training state."""
    model = nn.DataParallel(net)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    state = {
        "epoch": 3,
        "arch": "resnet18",
        "state_dict": model.state_dict(),
        "best_acc1": torch.tensor(61.2),
    }
    return _save(path, {**state, "optimizer": optimizer.state_dict()})


# Each wrapping: how to write the source network to a file, and what the log says was recognised.
WRAPPINGS: dict[str, tuple[Callable[[nn.Module, Path], Path], str]] = {
    "state_dict": (lambda net, path: _save(path, net.state_dict()), ""),
    "DataParallel": (lambda net, path: _save(path, nn.DataParallel(net).state_dict()), "'module.'"),
    "torch.compile": (lambda net, path: _save(path, torch.compile(net).state_dict()), "'_orig_mod.'"),
    "imagenet_example": (_imagenet_example, "'state_dict' entry of a dict (beside epoch, arch, best_acc1"),
    "model_entry": (lambda net, path: _save(path, {"model": net.state_dict(), "epoch": 1}), "'model' entry"),
    "lightning_labs_ckpt": (
        lambda net, path: lightning_labs_checkpoint(net, {**RESNET18, "num_classes": 1000}, [], path),
        "lightning_labs checkpoint",
    ),
}


@pytest.mark.parametrize("wrapping", WRAPPINGS)
def test_every_tensor_loads_through_every_wrapping(wrapping: str, tmp_path: Path, caplog) -> None:
    """Strict: all tensors (BatchNorm statistics and counters too) and the outputs equal the source's.
    Non-strict into a new 5-class head: all other tensors and the features equal the source's."""
    source = source_resnet18()
    write, recognised = WRAPPINGS[wrapping]
    path = str(write(copy.deepcopy(source), tmp_path / "weights.pth"))
    torch.manual_seed(1)  # the loaded networks start from other random values than the source
    with caplog.at_level("INFO"):
        exact = build_net({**RESNET18, "num_classes": 1000}, weights=path, strict=True).eval()
    assert recognised in caplog.text
    loaded = exact.state_dict()
    for name, tensor in source.state_dict().items():
        assert torch.equal(loaded[name], tensor), name
    with torch.no_grad():
        assert torch.equal(exact(INPUT), source(INPUT))

    new_head = build_net({**RESNET18, "num_classes": 5}, weights=path, strict=False).eval()
    loaded = new_head.state_dict()
    for name, tensor in source.state_dict().items():
        if not name.startswith("fc."):
            assert torch.equal(loaded[name], tensor), name
    new_head.fc, source.fc = nn.Identity(), nn.Identity()
    with torch.no_grad():
        assert torch.equal(new_head(INPUT), source(INPUT))


def test_weights_from_a_file_load_strictly_or_with_a_new_head(tmp_path: Path, caplog) -> None:
    """What strict refuses (the shapes, and the way out) and what non-strict logs."""
    pretrained = source_resnet18()
    torch.save(pretrained.state_dict(), tmp_path / "resnet18.pth")
    config = {**RESNET18, "num_classes": 10}
    with pytest.raises(ValueError) as err:
        build_net(config, weights=str(tmp_path / "resnet18.pth"), strict=True)
    message = str(err.value)
    assert "fc.weight (1000, 512) vs (10, 512)" in message and "model.strict=false" in message

    with caplog.at_level("INFO"):
        net = build_net(config, weights=str(tmp_path / "resnet18.pth"), strict=False)
    assert torch.equal(net.conv1.weight, pretrained.conv1.weight)
    assert torch.equal(net.layer4[1].bn2.running_var, pretrained.layer4[1].bn2.running_var)
    assert net.fc.weight.shape == (10, 512)
    assert "not loaded: shape differs" in caplog.text and "fc.weight" in caplog.text


def test_a_file_of_other_names_is_refused_with_both_lists_and_the_prefix(tmp_path: Path) -> None:
    state = {f"backbone.{name}": tensor for name, tensor in source_resnet18().state_dict().items()}
    torch.save(state, tmp_path / "wrapped.pth")
    with pytest.raises(ValueError) as err:
        build_net({**RESNET18, "num_classes": 10}, weights=str(tmp_path / "wrapped.pth"), strict=False)
    message = str(err.value)
    assert "Only 0 of the 122 tensors of the network load from" in message
    assert "The file holds: backbone.conv1.weight, backbone.bn1.weight" in message
    assert "the network expects: conv1.weight, bn1.weight" in message
    assert "with 'backbone.' in front" in message and "k.removeprefix('backbone.')" in message


def test_fewer_than_half_of_the_tensors_is_refused(tmp_path: Path) -> None:
    """A file that fills only the stem of the network: another network's weights, not a new head."""
    state = {
        k: v for k, v in source_resnet18().state_dict().items() if k.startswith(("conv1.", "bn1.", "layer1."))
    }
    torch.save(state, tmp_path / "stem.pth")
    with pytest.raises(ValueError, match=r"Only 30 of the 122 tensors of the network load"):
        build_net({**RESNET18, "num_classes": 10}, weights=str(tmp_path / "stem.pth"), strict=False)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            {"epoch": 3, "optimizer": {"state": {}}},
            r"holds no weights: its top-level keys are epoch, optimizer",
        ),
        ({"state_dict": {"lr": 0.1}}, r"holds no weights: its 'state_dict' entry holds lr"),
        ([torch.zeros(3)], r"holds a list, not weights"),
    ],
)
def test_a_file_without_weights_names_what_it_holds(content: Any, expected: str, tmp_path: Path) -> None:
    torch.save(content, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=expected):
        build_net({**RESNET18, "num_classes": 10}, weights=str(tmp_path / "other.pth"), strict=False)


def _fresh(config: dict[str, Any], edits: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return build_net(config, edits).state_dict()


def test_edited_layers_stay_fresh_even_where_shapes_match(tmp_path: Path, caplog) -> None:
    """A 4-class checkpoint into resnet18 + extra block + new 4-class head: the old fc.bias has the
    new head's shape but must not go into it; the backbone loads whole."""
    source = source_resnet18(num_classes=4)
    torch.save(source.state_dict(), tmp_path / "four_classes.pth")
    config, edits = {**RESNET18, "num_classes": 4}, [EXTRA, HEAD]
    torch.manual_seed(1)
    with caplog.at_level("INFO"):
        net = build_net(config, edits, weights=str(tmp_path / "four_classes.pth"), strict=False)
    loaded, fresh = net.state_dict(), _fresh(config, edits)
    assert torch.equal(loaded["fc.bias"], fresh["fc.bias"]) and not torch.equal(
        loaded["fc.bias"], source.fc.bias
    )
    assert all(torch.equal(loaded[k], fresh[k]) for k in loaded if k.startswith(("fc.", "extra.")))
    assert all(torch.equal(loaded[k], v) for k, v in source.state_dict().items() if not k.startswith("fc."))
    assert "left fresh, as model.edits replaced or inserted them: extra, fc" in caplog.text

    with pytest.raises(
        ValueError, match=r"left fresh, as model.edits replaced or inserted them: extra, fc.*strict=false"
    ):
        build_net(config, edits, weights=str(tmp_path / "four_classes.pth"), strict=True)


def test_a_checkpoint_of_the_same_edited_network_loads_whole(tmp_path: Path) -> None:
    """Continuing from the edited network's own checkpoint loads every layer, the edited ones too;
    a plain state dict or a checkpoint with another edit leaves them fresh."""
    config, edits = {**RESNET18, "num_classes": 4}, [EXTRA, HEAD]
    source = perturbed(build_net(config, edits))
    ckpt = lightning_labs_checkpoint(source, config, edits, tmp_path / "same.ckpt")
    net = build_net(config, edits, weights=str(ckpt), strict=True).eval()
    assert all(torch.equal(net.state_dict()[k], v) for k, v in source.state_dict().items())
    with torch.no_grad():
        assert torch.equal(net(INPUT), source(INPUT))

    gelu = {**EXTRA, "with": {**EXTRA["with"], "act": "gelu"}}  # same tensor shapes, another block
    other = lightning_labs_checkpoint(source, config, [gelu, HEAD], tmp_path / "other.ckpt")
    torch.manual_seed(1)
    net = build_net(config, edits, weights=str(other), strict=False)
    fresh = _fresh(config, edits)
    assert all(torch.equal(net.state_dict()[k], fresh[k]) for k in fresh if k.startswith("extra."))
    assert torch.equal(net.fc.weight, source.fc.weight)  # the head's edit is the same: it loads
