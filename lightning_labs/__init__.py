"""lightning_labs: the classic deep-learning labs as one PyTorch Lightning + Hydra tool."""

__version__ = "0.1.0"
