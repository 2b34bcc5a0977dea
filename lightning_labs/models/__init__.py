"""Plain ``nn.Module`` networks; nothing here depends on Lightning."""

from lightning_labs.models.build import build_net, check_net_fits_data, complete_net_config
from lightning_labs.models.convnet import ConvNet
from lightning_labs.models.lenet import LeNet5

__all__ = ["ConvNet", "LeNet5", "build_net", "check_net_fits_data", "complete_net_config"]
