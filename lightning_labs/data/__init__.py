"""LightningDataModules: in-memory datasets (MNIST, CIFAR, synthetic), image folders (ImageNet) and
your own Dataset class (``data=custom``)."""

from lightning_labs.data.base import ClassificationData
from lightning_labs.data.cifar import CIFARData
from lightning_labs.data.custom import CustomData
from lightning_labs.data.folder import FolderData
from lightning_labs.data.in_memory import InMemoryImageData
from lightning_labs.data.mnist import MNISTData
from lightning_labs.data.synthetic import SyntheticData

__all__ = [
    "CIFARData",
    "ClassificationData",
    "CustomData",
    "FolderData",
    "InMemoryImageData",
    "MNISTData",
    "SyntheticData",
]
