"""A student's own network (``model=custom model.net._target_=...``): each mistake gets one message
naming what is wrong (the class, the module, the layer and shapes) and how to fix it."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from lightning_labs.models import LeNet5, check_net_fits_data, complete_net_config
from lightning_labs.training.run import train

FACTS = {"in_channels": 1, "num_classes": 10, "image_size": [28, 28]}


class Net(nn.Module):
    """A LeNet-like MNIST network whose fc1 assumes 5x5 maps: 28x28 inputs give 4x4 ones."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc1(x.flatten(1))


class CatNet(Net):
    """The bug is in ``forward`` itself, between layers: concatenating maps of other sizes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv1(x)], dim=1)


def test_a_target_on_the_default_model_says_use_model_custom(make_cfg) -> None:
    cfg = make_cfg(f"model.net._target_={__name__}.Net")  # model=lenet5 passes act and pool
    with pytest.raises(ValueError) as refused:
        train(cfg)
    assert str(refused.value) == (
        f"{__name__}.Net takes no argument act, pool, width (it takes: num_classes). For your own network, "
        f"start from model=custom: model=custom model.net._target_={__name__}.Net; otherwise drop "
        "those settings."
    )


def test_model_custom_without_a_target_says_it_is_required(make_cfg) -> None:
    with pytest.raises(ValueError, match=r"model=custom needs your class, model\.net\._target_=pkg\.Class"):
        train(make_cfg("model=custom"))


def test_a_mistyped_class_lists_the_module_classes_in_one_message(caplog) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(ValueError) as refused:
        complete_net_config({"_target_": f"{__name__}.Nett"}, FACTS)
    message = str(refused.value)
    assert f"module {__name__} has no 'Nett'. Did you mean Net or CatNet?" in message
    assert message.endswith("It defines: CatNet, Net.")  # the classes defined here, not imported ones
    assert not caplog.records  # Hydra's own "Error getting object" log line is gone


def test_a_mistyped_module_names_the_module() -> None:
    with pytest.raises(ValueError, match=r"there is no module lightning_labs\.modles\b"):
        complete_net_config({"_target_": "lightning_labs.modles.LeNet5"}, FACTS)
    with pytest.raises(ValueError, match=r"no module named 'my_lab_pkg'.*PYTHONPATH"):
        complete_net_config({"_target_": "my_lab_pkg.Net"}, FACTS)


def test_a_shape_bug_names_the_layer_and_its_input_shape() -> None:
    with pytest.raises(ValueError) as refused:
        check_net_fits_data(Net(), (1, 28, 28), 10)
    message = str(refused.value)
    assert (
        "fails in layer fc1 (a Linear expecting 400 input features), given input of shape (2, 256): "
        "mat1 and mat2 shapes cannot be multiplied (2x256 and 400x10)"
    ) in message
    assert "channels" not in message.split("fails")[1]  # the first conv is not the problem
    assert isinstance(refused.value.__cause__, RuntimeError)  # the original, for train.log


def test_a_bug_between_layers_names_the_last_layer_passed() -> None:
    with pytest.raises(
        ValueError,
        match=r"fails in CatNet\.forward itself, between layers, after layer conv1 -> \(2, 6, 24, 24\)",
    ):
        check_net_fits_data(CatNet(), (1, 28, 28), 10)


def test_a_channel_mismatch_names_the_first_conv() -> None:
    with pytest.raises(
        ValueError,
        match=r"layer features\.0 \(a Conv2d expecting 3 input channels\), given input of shape "
        r"\(2, 1, 28, 28\)",
    ):
        check_net_fits_data(LeNet5(in_channels=3), (1, 28, 28), 10)
