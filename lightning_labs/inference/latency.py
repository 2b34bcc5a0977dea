"""Inference latency of a network, measured the same way by the benchmark command and its callback.

Each (device, variant, batch size) is warmed up (so one-off costs such as ``torch.compile`` and
cuDNN autotuning stay out of the figures), then timed call by call under ``torch.inference_mode``:
with ``time.perf_counter`` on the CPU, with CUDA events on a GPU (the device is synchronised once,
after the timed calls). Every variant's output is compared with plain fp32 eager on the same
device, so a fast but wrong variant is reported as such.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

T = TypeVar("T")

VARIANTS = ("eager", "channels_last", "bf16", "fp16", "compile", "onnxruntime")
# Largest |output - fp32 eager output|, relative to the largest |fp32 eager output|, still in agreement.
TOLERANCE = {
    "eager": 0.0,
    "channels_last": 1e-3,
    "bf16": 5e-2,
    "fp16": 1e-2,
    "compile": 1e-3,
    "onnxruntime": 1e-3,
}


class Unavailable(Exception):
    """A variant that cannot run here; its message is the one-line reason shown to the user."""


def latency_stats(times_ms: Sequence[float], batch_size: int) -> dict[str, float]:
    """Mean, spread and percentiles of per-call times, and the images per second they give."""
    times = torch.tensor(times_ms, dtype=torch.float64)
    quantiles = torch.quantile(times, torch.tensor([0.5, 0.9, 0.99], dtype=torch.float64)).tolist()
    mean = float(times.mean())
    return {
        "mean_ms": mean,
        "std_ms": float(times.std()) if len(times) > 1 else 0.0,
        "min_ms": float(times.min()),
        "p50_ms": quantiles[0],
        "p90_ms": quantiles[1],
        "p99_ms": quantiles[2],
        "images_per_s": batch_size / mean * 1000,
    }


@dataclass
class Measurement:
    device: str
    variant: str
    batch_size: int
    times_ms: list[float]
    threads: int | None
    max_rel_diff: float
    agrees: bool
    stats: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stats = latency_stats(self.times_ms, self.batch_size)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Skipped:
    device: str
    variant: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def available_devices() -> list[str]:
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def prepare(
    net: nn.Module, variant: str, device: str, example: torch.Tensor
) -> Callable[[torch.Tensor], Any]:
    """A function running ``net`` as ``variant`` on ``device``; raises Unavailable with the reason."""
    if variant not in VARIANTS:
        raise ValueError(f"Unknown latency variant {variant!r}; choose from: {', '.join(VARIANTS)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise Unavailable("no CUDA device")
    net = copy.deepcopy(net).eval().to(device)
    if variant == "eager":
        return net
    if variant == "channels_last":
        net = net.to(memory_format=torch.channels_last)
        return lambda x: net(x.contiguous(memory_format=torch.channels_last))
    if variant in ("bf16", "fp16"):
        if variant == "fp16" and device != "cuda":
            raise Unavailable("fp16 autocast needs a CUDA device")
        dtype = torch.bfloat16 if variant == "bf16" else torch.float16

        def autocast(x: torch.Tensor) -> torch.Tensor:
            with torch.autocast(device_type=device, dtype=dtype):
                return net(x)

        return autocast
    if variant == "compile":
        compiled = torch.compile(net, dynamic=False)  # one static graph per batch size
        try:
            with torch.inference_mode():
                compiled(example.to(device))
        except Exception as err:
            raise Unavailable(f"torch.compile failed: {str(err).splitlines()[0][:200]}") from None
        return compiled
    return _onnxruntime(net.cpu(), device, example)


def _onnxruntime(net: nn.Module, device: str, example: torch.Tensor) -> Callable[[torch.Tensor], Any]:
    try:
        import onnxruntime
    except ImportError:
        raise Unavailable("onnxruntime is not installed (pip install onnxruntime)") from None
    provider = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}[device]
    if provider not in onnxruntime.get_available_providers():
        raise Unavailable(f"this onnxruntime has no {provider}")
    from lightning_labs.inference.export import export_onnx

    path = Path(tempfile.mkdtemp(prefix="lightning_labs_onnx_")) / "model.onnx"
    export_onnx(net, example[:2].cpu(), example[:1].cpu(), path, opset=None)
    session = onnxruntime.InferenceSession(str(path), providers=[provider])
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {name: x.cpu().numpy()})[0])


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_calls(
    fn: Callable[[T], Any],
    x: T,
    device: str,
    warmup: int,
    iterations: int,
    time_budget_s: float | None = None,
) -> list[float]:
    """Milliseconds of each call ``fn(x)``: ``iterations`` of them, fewer if ``time_budget_s`` runs out.

    ``x`` is usually a batch already on ``device``; the benchmark of one image file also times
    reading and preparing it, with ``x`` its path and ``device`` the CPU.
    """
    with torch.inference_mode():
        for _ in range(warmup):
            fn(x)
        _synchronize(device)
        deadline = time.perf_counter() + time_budget_s if time_budget_s else float("inf")
        if device == "cuda":
            events = []
            while len(events) < iterations and (len(events) < 3 or time.perf_counter() < deadline):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn(x)
                end.record()
                events.append((start, end))
            torch.cuda.synchronize()
            return [start.elapsed_time(end) for start, end in events]
        times = []
        while len(times) < iterations and (len(times) < 3 or time.perf_counter() < deadline):
            begin = time.perf_counter()
            fn(x)
            times.append((time.perf_counter() - begin) * 1000)
        return times


def measure_latency(
    net: nn.Module,
    input_shape: Sequence[int],
    devices: Sequence[str] | None = None,
    batch_sizes: Sequence[int] = (1, 8, 32),
    variants: Sequence[str] = ("eager",),
    warmup: int = 10,
    iterations: int = 50,
    time_budget_s: float | None = None,
    on_result: Callable[[Measurement | Skipped], None] | None = None,
    example: torch.Tensor | None = None,
) -> list[Measurement | Skipped]:
    """Time every device x variant x batch size; variants that cannot run are Skipped with a reason.

    The input is random, or ``example`` (at least ``max(batch_sizes)`` images of ``input_shape``,
    on the CPU), such as a real image prepared as at evaluation.
    """
    results: list[Measurement | Skipped] = []
    generator = torch.Generator().manual_seed(0)
    for device in devices or available_devices():
        for variant in variants:
            inputs = (
                torch.randn(max(batch_sizes), *input_shape, generator=generator)
                if example is None
                else example
            )
            try:
                fn = prepare(net, variant, device, inputs)
                reference = prepare(net, "eager", device, inputs)
            except Unavailable as reason:
                results.append(Skipped(device, variant, str(reason)))
                if on_result:
                    on_result(results[-1])
                continue
            for batch_size in batch_sizes:
                x = inputs[:batch_size].to(device)
                with torch.inference_mode():
                    expected = reference(x).float().cpu()
                    got = torch.as_tensor(fn(x)).float().cpu()
                diff = float((got - expected).abs().max() / expected.abs().max().clamp_min(1e-12))
                times = time_calls(fn, x, device, warmup, iterations, time_budget_s)
                threads = torch.get_num_threads() if device == "cpu" else None
                results.append(
                    Measurement(device, variant, batch_size, times, threads, diff, diff <= TOLERANCE[variant])
                )
                if on_result:
                    on_result(results[-1])
    return results
