"""Inside the network, logged to TensorBoard: feature maps of chosen layers, weight histograms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.utils import make_grid

from lightning_labs.callbacks.writer import denormalize, summary_writer
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)


def record_outputs(net: nn.Module, names: Sequence[str], images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The outputs of the named layers of ``net`` for ``images`` (one forward pass, eval mode)."""
    layers = dict(net.named_modules())
    unknown = [name for name in names if name not in layers]
    if unknown:
        convs = [name for name, module in layers.items() if isinstance(module, nn.Conv2d)]
        raise ValueError(
            f"callbacks.feature_maps.layers: no layer named {unknown} in {type(net).__name__}; "
            f"its convolutions are {convs} (python -m lightning_labs.inspect lists every layer)"
        )
    outputs: dict[str, torch.Tensor] = {}
    hooks = [
        layers[name].register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out))
        for name in names
    ]
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            net(images)
    finally:
        for hook in hooks:
            hook.remove()
        net.train(was_training)
    return outputs


def conv_stages(net: nn.Module, image: torch.Tensor, min_size: int = 3) -> list[str]:
    """The last convolution of each spatial resolution: one layer per stage of the network.

    Maps smaller than ``min_size`` pixels a side (LeNet-5's 1 x 1 "conv" C5) show nothing and
    are left out.
    """
    convs = [name for name, module in net.named_modules() if isinstance(module, nn.Conv2d)]
    outputs = record_outputs(net, convs, image)
    last_of_size: dict[tuple[int, int], str] = {}
    for name in convs:
        size = tuple(outputs[name].shape[-2:])
        if min(size) >= min_size:
            last_of_size[size] = name
    return list(last_of_size.values())


def enlarge(images: torch.Tensor, min_pixels: int) -> torch.Tensor:
    """Images (N x C x H x W) scaled up by a whole factor to ``min_pixels`` wide or more, pixels sharp."""
    scale = max(1, -(-min_pixels // images.shape[-1]))
    return F.interpolate(images, scale_factor=scale, mode="nearest")


def channel_grid(maps: torch.Tensor, channels: int, min_pixels: int = 48) -> torch.Tensor:
    """The first ``channels`` maps (C x H x W) side by side, each scaled to [0, 1] on its own."""
    maps = maps[:channels].float().unsqueeze(1)
    low = maps.amin(dim=(2, 3), keepdim=True)
    high = maps.amax(dim=(2, 3), keepdim=True)
    maps = enlarge((maps - low) / (high - low).clamp_min(1e-8), min_pixels)
    return make_grid(maps, nrow=min(8, len(maps)), padding=2, pad_value=1.0)


class FeatureMaps(L.Callback):
    """Activations of chosen layers for one fixed validation image, as image grids.

    Logged as ``feature_maps/<layer>`` (and the image itself as ``feature_maps/input``) after
    every ``every_n_epochs`` validation epochs, so TensorBoard's slider shows them evolve.

    Args:
        layers: layer names (as ``python -m lightning_labs.inspect`` lists them); null: the last
            convolution of each spatial resolution.
        channels: how many channels of each layer to show.
        every_n_epochs: how often to log.
    """

    def __init__(
        self, layers: Sequence[str] | None = None, channels: int = 16, every_n_epochs: int = 1
    ) -> None:
        self.layers = list(layers) if layers is not None else None
        self.channels = channels
        self.every_n_epochs = every_n_epochs
        self.image: torch.Tensor | None = None

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        *_: Any,
    ) -> None:
        if self.image is None and trainer.is_global_zero:
            self.image = batch[0][:1].detach().clone()  # the first validation image, kept for the run
            if self.layers is None:
                self.layers = conv_stages(pl_module.net, self.image)
            else:
                record_outputs(pl_module.net, self.layers, self.image)  # unknown names fail now

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writer = summary_writer(trainer)
        if writer is None or self.image is None or trainer.sanity_checking:
            return
        if trainer.current_epoch % self.every_n_epochs:
            return
        step = trainer.global_step
        if trainer.current_epoch == 0:
            data = trainer.datamodule
            image = enlarge(denormalize(self.image, data.mean, data.std), min_pixels=96)
            writer.add_image("feature_maps/input", image[0], step)
        for name, maps in record_outputs(pl_module.net, self.layers or [], self.image).items():
            writer.add_image(f"feature_maps/{name}", channel_grid(maps[0], self.channels), step)


class WeightHistograms(L.Callback):
    """Histograms of the network's weight tensors (convolution kernels, linear matrices) each epoch.

    Logged as ``weights/<parameter>``; biases and normalisation scales are left out, as they are
    many small tensors that say little.
    """

    def __init__(self, every_n_epochs: int = 1) -> None:
        self.every_n_epochs = every_n_epochs

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writer = summary_writer(trainer)
        if writer is None or trainer.current_epoch % self.every_n_epochs:
            return
        for name, param in pl_module.net.named_parameters():
            if param.dim() < 2:
                continue
            values = param.detach().float().cpu()
            if not torch.isfinite(values).all():
                # TensorBoard cannot bin NaN/inf; the loss check (module.on_nonfinite_loss) says why
                log.warning(
                    "weights/%s holds NaN or inf values after epoch %d: no histogram drawn",
                    name,
                    trainer.current_epoch + 1,
                )
                continue
            writer.add_histogram(f"weights/{name}", values, trainer.global_step)
