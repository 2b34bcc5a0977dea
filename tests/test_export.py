"""``lightning_labs.export``: ONNX, TorchScript and state_dict files that compute what the network does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from lightning_labs.checkpoints.restore import load_checkpoint, model_from_checkpoint
from lightning_labs.inference.export import export, netron_hint
from lightning_labs.models import LeNet5
from lightning_labs.training.run import train


@pytest.fixture
def checkpoint(make_cfg) -> Path:
    """best.ckpt of LeNet-5 after a few steps on the fixture's real MNIST digits."""
    cfg = make_cfg("model=lenet5", "test=false")
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"


def trained_net(path: Path) -> torch.nn.Module:
    return model_from_checkpoint(load_checkpoint(path)).net.eval()


def digits(batch: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_onnx_export_matches_pytorch_for_any_batch_size(make_cfg, checkpoint: Path, tmp_path: Path) -> None:
    cfg = make_cfg(f"ckpt_path={checkpoint}", f"paths.output_dir={tmp_path / 'export'}", config_name="export")
    summary = export(cfg)
    path = tmp_path / "export" / "model.onnx"  # the default output
    assert summary["file"] == str(path) and path.stat().st_size == summary["bytes"] > 0
    assert summary["max_abs_diff"] < 1e-4 and summary["checked_with"].startswith("ONNX Runtime")

    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    assert [v.name for v in graph.graph.input] == ["images"]
    assert [v.name for v in graph.graph.output] == ["logits"]
    assert summary["inputs"] == {"images": ["batch", 1, 28, 28]}
    assert summary["outputs"] == {"logits": ["batch", 10]}

    net = trained_net(checkpoint)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = digits(batch, seed=batch)
        (logits,) = session.run(["logits"], {"images": x.numpy()})
        with torch.no_grad():
            expected = net(x).numpy()
        assert logits.shape == (batch, 10)
        assert np.abs(logits - expected).max() < 1e-4
        assert expected.std() > 0.01  # logits that differ between classes, not a constant output


def test_torchscript_export_round_trips(make_cfg, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "lenet5.pt"
    cfg = make_cfg(
        f"ckpt_path={checkpoint}",
        "format=torchscript",
        f"output={out}",
        f"paths.output_dir={tmp_path / 'export'}",
        config_name="export",
    )
    summary = export(cfg)
    assert summary["file"] == str(out) and summary["max_abs_diff"] < 1e-5

    with warnings.catch_warnings():  # recent torch marks torch.jit deprecated; the file still loads
        warnings.simplefilter("ignore", FutureWarning)
        loaded = torch.jit.load(str(out))
    net = trained_net(checkpoint)
    for batch in (1, 3):
        x = digits(batch, seed=10 + batch)
        with torch.no_grad():
            assert torch.allclose(loaded(x), net(x), atol=1e-5)


def test_state_dict_loads_strictly_into_a_plain_lenet5(make_cfg, checkpoint: Path, tmp_path: Path) -> None:
    cfg = make_cfg(
        f"ckpt_path={checkpoint}", "format=state_dict", f"paths.output_dir={tmp_path}", config_name="export"
    )
    summary = export(cfg)
    assert summary["file"] == str(tmp_path / "model.pth") and summary["max_abs_diff"] == 0.0

    weights = torch.load(tmp_path / "model.pth", weights_only=True)
    assert not any(key.startswith("net.") for key in weights)
    fresh = LeNet5(in_channels=1, num_classes=10, image_size=[28, 28], act="relu", pool="max").eval()
    fresh.load_state_dict(weights, strict=True)
    x = digits(4, seed=0)
    with torch.no_grad():
        assert torch.equal(fresh(x), trained_net(checkpoint)(x))


def test_unknown_format_and_missing_checkpoint_are_clear_errors(make_cfg, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Unknown export format 'tflite'.*onnx, torchscript, state_dict"):
        export(make_cfg(f"ckpt_path={tmp_path / 'a.ckpt'}", "format=tflite", config_name="export"))
    with pytest.raises(FileNotFoundError, match=r"missing\.ckpt"):
        export(make_cfg(f"ckpt_path={tmp_path / 'missing.ckpt'}", config_name="export"))
    assert not (tmp_path / "run" / "model.onnx").exists()


def test_command_line_export_prints_its_summary(checkpoint: Path, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "lightning_labs.export",
        f"ckpt_path={checkpoint}",
        f"hydra.run.dir={tmp_path / 'cli'}",
    ]
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "cli" / "model.onnx").is_file()
    assert "images (batch, 1, 28, 28)" in result.stdout and "logits (batch, 10)" in result.stdout
    assert "ONNX Runtime" in result.stdout and "Warning" not in result.stdout + result.stderr
    assert "Wrote" in (tmp_path / "cli" / "export.log").read_text()
    hint = netron_hint(tmp_path / "cli" / "model.onnx")  # the subprocess has this PATH and this Python
    assert hint.endswith(f" {tmp_path / 'cli' / 'model.onnx'}") and f"\n{hint}\n" in result.stdout


def test_the_netron_command_is_printed_with_how_to_install_netron_when_missing(
    monkeypatch, tmp_path: Path
) -> None:
    path = tmp_path / "my model.onnx"  # a path with a space is quoted, so that the command can be pasted
    monkeypatch.setattr(shutil, "which", lambda name, path=None: None)
    missing = netron_hint(path)
    assert missing.startswith("Netron is not installed") and "pip install 'lightning-labs[netron]'" in missing
    assert missing.endswith(f"then run\n  netron '{path}'")
    monkeypatch.setattr(shutil, "which", lambda name, path=None: None if path else "/usr/bin/netron")
    assert (
        netron_hint(path) == f"Netron is installed; to see the graph in your browser, run\n  netron '{path}'"
    )
    beside = str(Path(sys.executable).parent / "netron")  # in a virtual environment that is not activated
    monkeypatch.setattr(shutil, "which", lambda name, path=None: beside if path else None)
    assert netron_hint(path).endswith(f"run\n  {beside} '{path}'")
