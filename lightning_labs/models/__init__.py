"""Plain ``nn.Module`` networks and the tools that build, edit, load and freeze them; no Lightning here."""

from lightning_labs.models.blocks import ConvBNAct, LinearHead
from lightning_labs.models.build import build_net, check_net_fits_data, complete_net_config
from lightning_labs.models.convnet import ConvNet
from lightning_labs.models.freeze import count_parameters, freeze
from lightning_labs.models.lenet import LeNet5
from lightning_labs.models.zoo import torchvision_net

__all__ = [
    "ConvBNAct",
    "ConvNet",
    "LeNet5",
    "LinearHead",
    "build_net",
    "check_net_fits_data",
    "complete_net_config",
    "count_parameters",
    "freeze",
    "torchvision_net",
]
