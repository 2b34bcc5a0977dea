"""LightningDataModules: each holds its dataset as tensors and serves augmented, normalised batches."""

from lightning_labs.data.base import ImageClassificationData
from lightning_labs.data.cifar import CIFARData
from lightning_labs.data.mnist import MNISTData
from lightning_labs.data.synthetic import SyntheticData

__all__ = ["CIFARData", "ImageClassificationData", "MNISTData", "SyntheticData"]
