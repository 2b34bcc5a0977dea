"""LightningDataModules: in-memory datasets (MNIST, CIFAR, synthetic) and image folders (ImageNet)."""

from lightning_labs.data.base import ClassificationData
from lightning_labs.data.cifar import CIFARData
from lightning_labs.data.folder import FolderData
from lightning_labs.data.in_memory import InMemoryImageData
from lightning_labs.data.mnist import MNISTData
from lightning_labs.data.synthetic import SyntheticData

__all__ = ["CIFARData", "ClassificationData", "FolderData", "InMemoryImageData", "MNISTData", "SyntheticData"]
