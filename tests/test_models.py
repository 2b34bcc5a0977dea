"""The networks: published sizes, configurable layers, data facts and shape checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lightning_labs.models import ConvNet, LeNet5, build_net, check_net_fits_data, complete_net_config

VGG11_CIFAR = [64, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


def macs(net: nn.Module, shape: tuple[int, ...]) -> float:
    with FlopCounterMode(display=False) as counter:
        net.eval()(torch.zeros(1, *shape))
    return counter.get_total_flops() / 2


def params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_vgg11_cifar_variant_has_the_published_size() -> None:
    net = ConvNet(VGG11_CIFAR, in_channels=3, num_classes=10)
    assert params(net) == 9_228_362
    assert macs(net, (3, 32, 32)) == pytest.approx(606e6, rel=0.002)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_lenet5_has_the_classic_layout() -> None:
    net = LeNet5()
    assert params(net) == 61_706  # LeCun et al.'s 5x5 convs 6-16-120, fc 84, 10 outputs
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (6, (5, 5), (2, 2)),
        (16, (5, 5), (0, 0)),
        (120, (5, 5), (0, 0)),
    ]
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    # Other sizes and channels work: the first fc layer is sized for the input.
    assert LeNet5(in_channels=3, image_size=(32, 32))(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


ACTIVATIONS = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.GELU)
POOLS = (nn.AvgPool2d, nn.MaxPool2d)


@pytest.mark.parametrize("act, cls", [("sigmoid", nn.Sigmoid), ("tanh", nn.Tanh), ("gelu", nn.GELU)])
@pytest.mark.parametrize("pool, pool_cls", [("avg", nn.AvgPool2d), ("max", nn.MaxPool2d)])
def test_activation_and_pool_are_configurable(act: str, cls: type, pool: str, pool_cls: type) -> None:
    # LeNet-5: an activation after each of its 3 convs and its hidden fc layer, a pool after the
    # first 2 convs; the ConvNet: one per conv, one per "M".
    for net, activations in (
        (LeNet5(act=act, pool=pool), 4),
        (ConvNet([8, "M", 16, "M"], act=act, pool=pool), 2),
    ):
        assert [type(m) for m in net.modules() if isinstance(m, ACTIVATIONS)] == [cls] * activations
        assert [type(m) for m in net.modules() if isinstance(m, POOLS)] == [pool_cls] * 2


def test_unknown_activation_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=r"Unknown activation 'swishy'; choose one of: .*relu.*sigmoid"):
        LeNet5(act="swishy")


def test_convnet_knobs_change_the_network() -> None:
    base = ConvNet([16, "M", 32, "M"], global_pool=False, fc=[64], dropout=0.3, image_size=(32, 32))
    wide_k = ConvNet([16, "M", 32, "M"], global_pool=False, fc=[64], kernel_size=5, image_size=(32, 32))
    strided = ConvNet([16, 32], stride=2, global_pool=False, image_size=(32, 32))
    # 5x5 instead of 3x3 kernels: 16 more weights per (in, out) channel pair of the 3->16 and 16->32 convs.
    assert params(wide_k) - params(base) == (25 - 9) * (3 * 16 + 16 * 32)
    assert any(isinstance(m, nn.Dropout) and m.p == 0.3 for m in base.modules())
    assert [m.out_features for m in base.modules() if isinstance(m, nn.Linear)] == [64, 10]
    # Two stride-2 convs take 32x32 to 8x8: the flattened head sees 32 * 8 * 8 features.
    assert next(m for m in strided.modules() if isinstance(m, nn.Linear)).in_features == 32 * 8 * 8
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ConvNet([8], kernel_size=4)


class UserNet(nn.Module):
    """A user's own network: declares num_classes only."""

    def __init__(self, num_classes: int, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(), nn.LazyLinear(width), nn.ReLU(), nn.Linear(width, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_data_facts_fill_only_declared_and_unset_parameters() -> None:
    facts = {"in_channels": 1, "num_classes": 10, "image_size": [28, 28]}
    user = complete_net_config({"_target_": f"{__name__}.UserNet", "width": 4}, facts)
    assert user == {"_target_": f"{__name__}.UserNet", "width": 4, "num_classes": 10}
    lenet = complete_net_config({"_target_": "lightning_labs.models.LeNet5", "in_channels": 3}, facts)
    assert lenet["in_channels"] == 3 and lenet["num_classes"] == 10 and lenet["image_size"] == [28, 28]
    assert isinstance(build_net(user), UserNet)


def test_unimportable_network_names_the_target() -> None:
    with pytest.raises(ValueError, match=r"'my_pkg.Nope' cannot be imported"):
        complete_net_config({"_target_": "my_pkg.Nope"}, {})


def test_shape_check_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"shape \(1, 28, 28\).*expecting 3 input channels"):
        check_net_fits_data(LeNet5(in_channels=3), (1, 28, 28), 10)
    with pytest.raises(ValueError, match=r"outputs shape \(10,\).*100 classes"):
        check_net_fits_data(LeNet5(), (1, 28, 28), 100)
    check_net_fits_data(LeNet5(), (1, 28, 28), 10)
