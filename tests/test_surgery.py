"""Model surgery: a block inserted after a layer runs exactly once, right after it, in any container."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable

import onnx
import pytest
import torch
from torch import nn

from lightning_labs.models import torchvision_net
from lightning_labs.models.surgery import apply_edits, insert_after, replace_module


class Double(nn.Module):
    """Doubles its input and counts its calls: a block that runs twice, or in the wrong place, shows."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return 2 * x


class Tower(nn.Module):
    """A stem (plain attribute), blocks run by a loop over an ``nn.ModuleList``, and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Conv2d(4, 4, 3, padding=1) for _ in range(3))
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = torch.tanh(block(x)) + 0.1  # not linear: doubling in another place gives other outputs
        return self.head(x.mean((2, 3)))


def resnet18() -> nn.Module:
    return torchvision_net("resnet18", num_classes=10)


# The network, and a layer inside: an nn.Sequential, an nn.ModuleList driven by a custom forward,
# and a plain attribute called by name.
CASES: dict[str, tuple[Callable[[], nn.Module], str]] = {
    "Sequential": (resnet18, "layer3.0"),
    "ModuleList": (Tower, "blocks.1"),
    "attribute": (Tower, "stem"),
}


def _by_hand(net: nn.Module, name: str, block: nn.Module) -> nn.Module:
    """The reference: ``net`` with layer ``name`` swapped for ``nn.Sequential(layer, block)``."""
    reference = copy.deepcopy(net)
    parent_name, _, child = name.rpartition(".")
    parent = reference.get_submodule(parent_name) if parent_name else reference
    setattr(parent, child, nn.Sequential(getattr(parent, child), block))
    return reference


@pytest.mark.parametrize("case", CASES)
def test_an_inserted_block_runs_once_right_after_its_layer(case: str) -> None:
    build, layer = CASES[case]
    torch.manual_seed(0)
    net = build().eval()
    names = set(net.state_dict())
    reference = _by_hand(net, layer, Double())
    double = Double()
    insert_after(net, layer, double, "twice")
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        out = net(x)
        assert double.calls == 1
        torch.testing.assert_close(out, reference(x), rtol=0, atol=0)
    assert names <= set(net.state_dict())  # weights saved before the edit still load


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript-based exporter's notice
@pytest.mark.parametrize("case", CASES)
def test_the_exported_graph_has_the_inserted_op_once(case: str) -> None:
    build, layer = CASES[case]
    net = build().eval()
    apply_edits(net, [{"insert_after": layer, "name": "act", "with": {"_target_": "torch.nn.Hardswish"}}])
    buffer = io.BytesIO()
    torch.onnx.export(net, (torch.zeros(1, 3, 16, 16),), buffer, dynamo=False)
    ops = [node.op_type for node in onnx.load_from_string(buffer.getvalue()).graph.node]
    assert ops.count("HardSwish") == 1


def test_replacing_a_layer_keeps_the_block_inserted_after_it() -> None:
    net = Tower()
    double = Double()
    insert_after(net, "stem", double, "twice")
    replace_module(net, "stem", nn.Conv2d(3, 4, 1))
    net(torch.zeros(1, 3, 8, 8))
    assert double.calls == 1


def test_insertion_names_are_checked_and_a_sequential_network_is_refused() -> None:
    net = resnet18()
    insert_after(net, "layer2.0", nn.Identity(), "extra")
    with pytest.raises(ValueError, match=r"Cannot insert 'extra' after 'layer3\.0': 'extra' is taken"):
        insert_after(net, "layer3.0", nn.Identity(), "extra")
    with pytest.raises(ValueError, match=r"the network is a Sequential, which runs every block.*replace: 0"):
        insert_after(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), "0", nn.Identity(), "extra")
