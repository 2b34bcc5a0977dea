"""Writing a checkpoint's network as ONNX, TorchScript or a state_dict, checked against PyTorch.

The network (the checkpoint's ``model.net``, in eval mode) takes ``images`` (batch x C x H x W,
normalised as at evaluation, any batch size; C x H x W as in training unless ``data.*`` changes
it) and gives ``logits`` (batch x classes). ONNX and TorchScript files are run on a random batch
next to the PyTorch network and the largest absolute difference of their outputs is reported; a
state_dict file is loaded back into a blank copy of the network and compared the same way.
"""

from __future__ import annotations

import copy
import shlex
import shutil
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import rich
import rich.markup
import rich.table
import torch
from omegaconf import DictConfig
from torch import nn

from lightning_labs.checkpoints.data_config import typed_data_keys
from lightning_labs.checkpoints.restore import data_from_checkpoint, load_checkpoint, model_from_checkpoint
from lightning_labs.models import check_net_fits_data
from lightning_labs.runtime.config import to_plain
from lightning_labs.runtime.console import print_rich
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)

FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "state_dict": ".pth"}
INPUT_NAME, OUTPUT_NAME = "images", "logits"
TRACE_BATCH = 2  # the example batch the network is traced with
CHECK_BATCH = 3  # the random batch outputs are compared on: another size, so the batch axis is tried
EXTRA_INSTALL = "pip install 'lightning-labs[export]' (or: pip install onnx onnxruntime)"
NETRON_INSTALL = "pip install 'lightning-labs[netron]' (or: pip install netron)"

# Upstream deprecation notices about the exporters used here; they say nothing about this export.
_EXPORTER_NOTICES = (
    r".*legacy TorchScript-based ONNX export.*",
    r".*The feature will be removed.*",
    r".*`torch\.jit\.\w+` is deprecated.*",
)


@contextmanager
def _quiet_exporters():
    with warnings.catch_warnings():
        for pattern in _EXPORTER_NOTICES:
            warnings.filterwarnings("ignore", message=pattern)
        yield


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}: use format= one of {', '.join(FORMATS)}.")
    return fmt


def output_path(cfg: DictConfig, fmt: str) -> Path:
    """``cfg.output``, or ``model.<suffix>`` in the run directory."""
    if cfg.get("output"):
        return Path(cfg.output)
    return Path(cfg.paths.output_dir) / f"model{FORMATS[fmt]}"


def _max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        raise RuntimeError(f"The exported network outputs shape {tuple(a.shape)}, PyTorch {tuple(b.shape)}")
    return float((a.double() - b.double()).abs().max())


def export_onnx(net: nn.Module, example: torch.Tensor, check: torch.Tensor, path: Path, opset: Any) -> dict:
    """ONNX file with a dynamic batch axis, checked by ``onnx.checker`` and, when at hand, ONNX Runtime."""
    try:
        import onnx
    except ImportError:
        raise ImportError(f"format=onnx needs the onnx package: {EXTRA_INSTALL}") from None
    with _quiet_exporters(), torch.no_grad():
        torch.onnx.export(
            net,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph, full_check=True)

    def dims(value: Any) -> list[int | str]:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    facts: dict[str, Any] = {
        "inputs": {v.name: dims(v) for v in graph.graph.input},
        "outputs": {v.name: dims(v) for v in graph.graph.output},
        "opset": max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")),
        "max_abs_diff": None,
        "checked_with": None,
    }
    try:
        import onnxruntime
    except ImportError:
        log.warning("onnxruntime is not installed: the ONNX file was not run. %s", EXTRA_INSTALL)
        return facts
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (ours,) = session.run([OUTPUT_NAME], {INPUT_NAME: check.numpy()})
    with torch.no_grad():
        facts["max_abs_diff"] = _max_abs_diff(torch.from_numpy(ours), net(check))
    facts["checked_with"] = f"ONNX Runtime {onnxruntime.__version__}"
    return facts


def export_torchscript(net: nn.Module, example: torch.Tensor, check: torch.Tensor, path: Path) -> dict:
    """A traced TorchScript module, reloaded from the file and compared with the network."""
    with _quiet_exporters(), torch.no_grad():
        traced = torch.jit.trace(net, example)
        traced.save(str(path))
        reloaded = torch.jit.load(str(path), map_location="cpu")
        diff = _max_abs_diff(reloaded(check), net(check))
    return {"max_abs_diff": diff, "checked_with": "torch.jit.load"}


def export_state_dict(net: nn.Module, check: torch.Tensor, path: Path) -> dict:
    """The network's weights (keys as in the plain network), read back strictly into a blank copy of it."""
    torch.save(net.state_dict(), path)
    blank = copy.deepcopy(net)
    with torch.no_grad():
        for tensor in blank.state_dict().values():
            tensor.zero_()  # so that only the file's tensors can reproduce the outputs
    blank.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    with torch.no_grad():
        diff = _max_abs_diff(blank(check), net(check))
    return {"max_abs_diff": diff, "checked_with": f"the file loaded into a blank {type(net).__name__}"}


def export(cfg: DictConfig) -> dict[str, Any]:
    """Write ``cfg.ckpt_path``'s network in ``cfg.format``; returns what was written and checked."""
    fmt = check_format(str(cfg.format).lower())
    checkpoint = load_checkpoint(cfg.ckpt_path, trusted=cfg.trust_checkpoint)
    model = model_from_checkpoint(checkpoint)
    net = model.net.cpu().eval()
    input_shape = [int(n) for n in model.hparams["input_shape"]]
    num_classes = int(model.hparams["num_classes"])
    if cfg.get("data"):  # data=/data.*: the input of that data (logged where unlike training's)
        datamodule = data_from_checkpoint(checkpoint, to_plain(cfg.data), typed_data_keys())
        input_shape = list(datamodule.input_shape)
        check_net_fits_data(net, input_shape, num_classes)
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(TRACE_BATCH, *input_shape, generator=generator)
    check = torch.randn(CHECK_BATCH, *input_shape, generator=generator)

    path = output_path(cfg, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    facts: dict[str, Any] = {
        "inputs": {INPUT_NAME: ["batch", *input_shape]},
        "outputs": {OUTPUT_NAME: ["batch", num_classes]},
    }
    if fmt == "onnx":
        facts |= export_onnx(net, example, check, path, cfg.get("opset"))
    elif fmt == "torchscript":
        facts |= export_torchscript(net, example, check, path)
    else:
        facts |= export_state_dict(net, check, path)
        facts["network"] = f"{type(net).__module__}.{type(net).__qualname__}"
    summary = {
        "format": fmt,
        "file": str(path),
        "bytes": path.stat().st_size,
        "checkpoint": str(cfg.ckpt_path),
        "check_batch": CHECK_BATCH,
        **facts,
    }
    log.info("Wrote %s (%s, %s)", path, fmt, _size(summary["bytes"]))
    if summary["max_abs_diff"] is not None:
        log.info(
            "Max abs difference from PyTorch (%s, random batch of %d): %.3g",
            summary["checked_with"],
            CHECK_BATCH,
            summary["max_abs_diff"],
        )
    return summary


def _size(n_bytes: int) -> str:
    if n_bytes < 1024:
        return f"{n_bytes} B"
    if n_bytes < 1024**2:
        return f"{n_bytes / 1024:.1f} KB"
    return f"{n_bytes / 1024**2:.1f} MB"


def _tensors(named: dict[str, list]) -> str:
    return ", ".join(f"{name} ({', '.join(str(d) for d in shape)})" for name, shape in named.items())


def print_export_summary(summary: dict[str, Any]) -> None:
    table = rich.table.Table(title=f"Exported ({summary['format']})", show_header=False)
    table.add_column(style="cyan")
    table.add_column()
    rows = [
        ("file", summary["file"]),
        ("size", _size(summary["bytes"])),
        ("input", _tensors(summary["inputs"])),
        ("output", _tensors(summary["outputs"])),
    ]
    if "opset" in summary:
        rows.append(("opset", str(summary["opset"])))
    if "network" in summary:
        rows.append(("network", f"{summary['network']} (weights only: no input/output names)"))
    diff = summary["max_abs_diff"]
    rows.append(
        (
            "max abs diff",
            "not checked" if diff is None else f"{diff:.3g} ({summary['checked_with']} vs PyTorch)",
        )
    )
    for row in rows:
        table.add_row(*(rich.markup.escape(cell) for cell in row))
    print_rich(table)
    if summary["format"] == "onnx":
        print(netron_hint(Path(summary["file"])))  # plain print: a command to copy is never wrapped


def netron_hint(path: Path) -> str:
    """How to look at the ONNX graph in Netron, which serves it to the browser on this machine.

    Only the command is printed (the export itself starts no server). Netron's ``netron`` script
    is looked for on PATH and beside this Python (a virtual environment that is not activated).
    """
    file = shlex.quote(str(path))
    on_path = shutil.which("netron")
    script = on_path or shutil.which("netron", path=str(Path(sys.executable).parent))
    if script is None:
        install = f"Netron is not installed; to see the graph in your browser: {NETRON_INSTALL}"
        return f"{install}, then run\n  netron {file}"
    command = "netron" if on_path else shlex.quote(script)
    return f"Netron is installed; to see the graph in your browser, run\n  {command} {file}"
