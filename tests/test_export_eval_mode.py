"""Export and predict run the network in eval mode: checked on a CNN with BatchNorm and dropout.

LeNet-5 has neither layer, so its outputs are the same in train and eval mode and a missing
``.eval()`` goes unseen. This small CNN's BatchNorm running statistics are trained away from
their defaults and its dropout is strong, so train-mode outputs differ clearly from eval-mode ones.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import hydra
import numpy as np
import onnxruntime
import pytest
import torch
from omegaconf import DictConfig
from PIL import Image

from lightning_labs.checkpoints.restore import load_checkpoint, model_from_checkpoint
from lightning_labs.data import ClassificationData
from lightning_labs.inference.export import export
from lightning_labs.inference.predict import predict
from lightning_labs.training.run import train

SMALL_CNN = [
    "model=cnn",
    "model.net.layers=[8,M,16,M]",
    "model.net.fc=[32]",
    "model.net.batch_norm=true",
    "model.net.dropout=0.5",
    "trainer.limit_train_batches=3",
    "logger=none",  # (and the callbacks that only feed a logger)
    "test=false",
    "seed=0",
]
DATA = {
    "mnist": ["data=mnist"],
    "cifar10": ["data=cifar10", "data.batch_size=32"],
    "imagenet": [
        "data=imagenet",
        "data.image_size=32",
        "data.resize_size=36",
        "data.num_workers=0",
        "data.batch_size=16",
    ],
}
ATOL = 1e-5
TRAIN_MODE_GAP = 1e-3  # train-mode outputs must differ by more than this, or the test proves nothing


def train_small_cnn(make_cfg: Callable[..., DictConfig], data: str) -> tuple[Path, DictConfig]:
    """last.ckpt of the small CNN after 3 steps on ``data``, and the run's config."""
    cfg = make_cfg(*SMALL_CNN, *DATA[data])
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", cfg


def eval_net(checkpoint: Path) -> torch.nn.Module:
    """The checkpoint's network in eval mode, with BatchNorm statistics that are not the defaults."""
    net = model_from_checkpoint(load_checkpoint(checkpoint)).net.eval()
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    dropouts = [m for m in net.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(norms) == 2 and len(dropouts) == 2
    assert all(not torch.allclose(m.running_mean, torch.zeros_like(m.running_mean)) for m in norms)
    assert all(not torch.allclose(m.running_var, torch.ones_like(m.running_var)) for m in norms)
    return net


def train_mode_outputs(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What the network gives in train mode (batch statistics, dropout), leaving it in eval mode."""
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    with torch.no_grad():
        out = net(x)
    net.load_state_dict(state)  # BatchNorm's running statistics moved in train mode
    net.eval()
    return out


def eval_batch(data_cfg: DictConfig, count: int) -> tuple[ClassificationData, torch.Tensor, torch.Tensor]:
    """A fresh datamodule, and the first ``count`` test images as the network sees them at evaluation."""
    datamodule = hydra.utils.instantiate(data_cfg)
    datamodule.setup("test")
    images, labels = datamodule.on_after_batch_transfer(next(iter(datamodule.test_dataloader())), 0)
    return datamodule, images[:count], labels[:count]


def test_onnx_and_torchscript_compute_the_eval_mode_network(make_cfg, tmp_path: Path) -> None:
    checkpoint, cfg = train_small_cnn(make_cfg, "cifar10")
    net = eval_net(checkpoint)
    _, real, _ = eval_batch(cfg.data, count=8)
    random = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = {"real": net(real), "random": net(random)}
    for name, x in (("real", real), ("random", random)):
        gap = (train_mode_outputs(net, x) - expected[name]).abs().max()
        assert gap > TRAIN_MODE_GAP, f"train mode gives the eval-mode outputs on the {name} batch"

    runs: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    for fmt in ("onnx", "torchscript", "state_dict"):
        summary = export(
            make_cfg(
                f"ckpt_path={checkpoint}",
                f"format={fmt}",
                f"paths.output_dir={tmp_path / fmt}",
                config_name="export",
            )
        )
        # The command's own check (file vs the network it exported) is of an eval-mode network too.
        assert summary["max_abs_diff"] < ATOL, (fmt, summary["max_abs_diff"])
        path = Path(summary["file"])
        if fmt == "onnx":
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            runs[fmt] = lambda x, s=session: torch.from_numpy(s.run(["logits"], {"images": x.numpy()})[0])
        elif fmt == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                runs[fmt] = torch.jit.load(str(path))
        else:
            assert summary["max_abs_diff"] == 0.0
    for fmt, run in runs.items():
        for name, x in (("real", real), ("random", random)):
            with torch.no_grad():
                got = run(x)
            diff = float((got - expected[name]).abs().max())
            assert diff < ATOL, f"{fmt} differs from the eval-mode network by {diff:.3g} on the {name} batch"


def save_png(image: torch.Tensor, path: Path) -> Path:
    """A uint8 C x H x W image (1 or 3 channels) as a lossless PNG."""
    pixels = image.permute(1, 2, 0).numpy()
    Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(path)
    return path


def predicted_probabilities(predictions: list[dict], num_classes: int) -> torch.Tensor:
    """predict's top-k lists (k = every class) as an images x classes tensor."""
    table = torch.full((len(predictions), num_classes), float("nan"), dtype=torch.float64)
    for row, prediction in enumerate(predictions):
        for entry in prediction["top"]:
            table[row, entry["index"]] = entry["probability"]
    assert not table.isnan().any()
    return table


@pytest.mark.parametrize("data", ["mnist", "cifar10", "imagenet"])
def test_predict_gives_the_softmax_of_the_eval_mode_network(make_cfg, tmp_path: Path, data: str) -> None:
    checkpoint, cfg = train_small_cnn(make_cfg, data)
    net = eval_net(checkpoint)
    count = 6
    datamodule, expected_inputs, _ = eval_batch(cfg.data, count)
    folder = tmp_path / "images"
    folder.mkdir()
    if data == "imagenet":  # the fixture's own JPEG files, in the test split's order
        split = datamodule.datasets["test"]
        picked = range(0, len(split), len(split) // count)[:count]  # one image of each class folder
        expected_inputs = torch.stack([split[i][0] for i in picked])
        for n, i in enumerate(picked):
            source = Path(split.samples[i][0])
            shutil.copy(source, folder / f"{n:02d}_{source.name}")
    else:  # the test split's first images, written as PNG files
        for i, image in enumerate(datamodule.test_set.images[:count]):
            save_png(image, folder / f"{i:02d}.png")
    num_classes = datamodule.num_classes
    with torch.no_grad():
        expected = net(expected_inputs).double().softmax(dim=1)
    assert (train_mode_outputs(net, expected_inputs).double().softmax(dim=1) - expected).abs().max() > 1e-3

    predictions = predict(
        make_cfg(
            f"ckpt_path={checkpoint}",
            f"image={folder}",
            f"topk={num_classes}",
            f"paths.output_dir={tmp_path / 'predict'}",
            config_name="predict",
        )
    )
    assert [Path(p["image"]).parent for p in predictions] == [folder] * count
    got = predicted_probabilities(predictions, num_classes)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=ATOL, rtol=0)
