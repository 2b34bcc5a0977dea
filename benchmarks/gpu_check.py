"""Every GPU path measured in one command, each figure beside a plain PyTorch loop on the same device.

    make gpu-check                                     # the gpu-marked tests, then this script
    .venv/bin/python benchmarks/gpu_check.py           # all parts: ~5-6 min on an H100, 8 at most
    .venv/bin/python benchmarks/gpu_check.py --only latency lenet      # rerun some parts
    .venv/bin/python benchmarks/gpu_check.py --dry-run --out /tmp/gpu  # the same code, tiny, on the CPU

Parts (each with a time budget; a part past it is stopped, and what it measured is kept):

- ``vgg11``: training throughput of VGG-11 on CIFAR-shaped synthetic data, batch 512: fp32 (TF32
  matmuls, ``float32_matmul_precision=high`` as in train.yaml), ``16-mixed``, ``bf16-mixed``, then
  bf16-mixed with ``channels_last`` weights, then also ``model.compile=true``;
- ``resnet50``: the same for ResNet-50 at 224 px, batch 256, bf16-mixed + channels_last;
- ``latency``: the ``resnet50_cpu_vs_gpu_latency`` preset (batch 1 and 32; eager, channels_last,
  bf16, fp16, compile), on the GPU, then on the CPU (fewer warm-up calls, 3 s per figure);
- ``lenet``: LeNet-5 / MNIST with ``trainer=gpu`` (in this process) and by the real command line
  ``python -m lightning_labs.train trainer=ddp trainer.devices=1``, to its usual test accuracy
  (97% or more), beside the plain loop's.

Throughput figures come from one process: the plain loop (``benchmarks/plain_loop.py``) and then
``lightning_labs.training.run.train`` with the same config and its default callbacks, validation
off; only the steps after the warm-up ones are timed (compilation and cuDNN autotuning fall in the
warm-up, whose seconds are reported too), with the GPU synchronised at both ends. cuDNN autotuning
(``torch.backends.cudnn.benchmark``) is on for both sides. The compiled network is compiled by the
plain loop first; lightning_labs's compile then finds inductor's on-disk cache warm, so its first
steps are shorter: compare the img/s, not the warm-up seconds, of that row.

Results go to ``benchmarks/results/gpu_<device>.json`` (the device as torch names it, e.g.
``gpu_nvidia-h100-80gb-hbm3.json``) and a markdown table beside it (``.md``), rewritten after every
figure. ``--dry-run`` runs every part on the CPU at tiny sizes (VGG-11 with narrow layers,
ResNet-18 for ResNet-50, 1 thread; ``model.compile`` with the ``aot_eager`` backend, no 16-mixed,
latency without compile, one LeNet epoch of 6 batches): 40-50 s on 2 busy cores. It writes
``gpu_cpu-dry-run.{json,md}`` into ``--out`` (default outputs/gpu_check_dry_run), so the script is
tested without a GPU (tests/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR

REPO = Path(__file__).resolve().parent.parent
Row = dict[str, Any]
Record = Callable[[Row], None]


@dataclass(frozen=True)
class Variant:
    name: str
    precision: str
    channels_last: bool = False
    compile: bool = False


VGG_VARIANTS = (
    Variant("fp32", "32-true"),
    Variant("16-mixed", "16-mixed"),
    Variant("bf16-mixed", "bf16-mixed"),
    Variant("bf16-mixed + channels_last", "bf16-mixed", channels_last=True),
    Variant("bf16-mixed + channels_last + compile", "bf16-mixed", channels_last=True, compile=True),
)


@dataclass(frozen=True)
class Sizes:
    """What a run measures: full sizes on a GPU, or tiny ones on the CPU (``--dry-run``)."""

    device: str
    trainer: tuple[str, ...]  # overrides that pick the training device
    vgg: tuple[str, ...]  # model overrides
    vgg_size: dict[str, int]  # batch, image (px), warmup, steps
    resnet: tuple[str, ...]
    resnet_size: dict[str, int]
    compile_backend: str
    latency: tuple[str, ...]  # overrides of the latency preset
    latency_devices: tuple[tuple[str, int, float | None], ...]  # device, warm-up calls, seconds per figure
    lenet_runs: tuple[tuple[str, tuple[str, ...]], ...]  # name, trainer overrides (2nd: command line)
    lenet: tuple[str, ...]  # overrides of every LeNet run
    min_lenet_acc: float | None  # "the usual accuracy" (None: not checked)
    skip: dict[str, str] = field(default_factory=dict)  # variant name -> why it is not run
    threads: int | None = None  # torch's CPU threads (None: torch's default)


GPU = Sizes(
    device="cuda",
    trainer=("trainer=gpu",),
    vgg=("model=vgg11",),
    vgg_size={"batch": 512, "image": 32, "warmup": 5, "steps": 40},
    resnet=("model=resnet50",),
    resnet_size={"batch": 256, "image": 224, "warmup": 4, "steps": 12},
    compile_backend="inductor",
    latency=(),
    latency_devices=(("cuda", 10, None), ("cpu", 3, 3.0)),
    lenet_runs=(
        ("trainer=gpu", ("trainer=gpu",)),
        ("trainer=ddp, 1 GPU", ("trainer=ddp", "trainer.devices=1")),
    ),
    lenet=(),
    min_lenet_acc=0.97,  # the 15-epoch recipe reaches 98% on the bundled sample (README)
)
DRY_RUN = Sizes(
    device="cpu",
    trainer=("trainer=cpu",),
    # tiny networks of the same classes and configs: a CPU's (emulated) bf16 would take minutes
    vgg=("model=vgg11", "model.net.layers=[8,M,16,M,16,M,16,M]"),
    vgg_size={"batch": 8, "image": 16, "warmup": 1, "steps": 2},
    resnet=("model=resnet18",),
    resnet_size={"batch": 2, "image": 32, "warmup": 1, "steps": 2},
    compile_backend="aot_eager",
    latency=(
        "model=resnet18",
        "input_shape=[3,32,32]",
        "batch_sizes=[1,2]",
        "variants=[eager,channels_last,bf16,fp16]",
        "iterations=2",
    ),
    latency_devices=(("cpu", 1, None),),
    lenet_runs=(
        ("trainer=cpu", ("trainer=cpu",)),
        ("trainer=ddp, 1 CPU process", ("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=1")),
    ),
    lenet=("debug=fast", "trainer.precision=32-true", "logger=none"),
    min_lenet_acc=None,
    skip={"16-mixed": "Lightning's 16-mixed needs a CUDA device"},
    # One thread: on a small machine shared with other jobs, two OpenMP threads of tiny steps wait on
    # each other (0.7 s instead of 4 ms per VGG step measured on 2 busy cores).
    threads=1,
)

# A measurement with torch.compile is not started with less of its part's budget left (an
# inductor compile of VGG-11's training step or ResNet-50's inference takes 30-60 s); a part stops
# starting anything MARGIN_SECONDS before its budget ends, when its process is stopped.
COMPILE_SECONDS = 60
MARGIN_SECONDS = 10

# name -> (time budget in seconds on an H100, what it measures)
PARTS: dict[str, tuple[int, str]] = {
    "vgg11": (135, "VGG-11 training img/s, batch 512: fp32, 16-mixed, bf16-mixed, channels_last, compile"),
    "resnet50": (75, "ResNet-50 training img/s at 224 px, batch 256, bf16-mixed + channels_last"),
    "latency": (180, "resnet50_cpu_vs_gpu_latency: batch 1 and 32, eager/channels_last/bf16/fp16/compile"),
    "lenet": (105, "LeNet-5 / MNIST to its usual accuracy with trainer=gpu and trainer=ddp (1 GPU)"),
}


# --- the results file -------------------------------------------------------------------------


def device_slug(name: str) -> str:
    """``NVIDIA H100 80GB HBM3`` -> ``nvidia-h100-80gb-hbm3``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


class Results:
    """``gpu_<device>.json`` and its markdown table, rewritten whole after every change (so a crash
    or a time-out keeps everything measured before it); parts not run this time are kept."""

    def __init__(self, out: Path, device_name: str) -> None:
        slug = device_slug(device_name)
        self.json = out / f"gpu_{slug}.json"
        self.md = out / f"gpu_{slug}.md"
        self.device_name = device_name

    def read(self) -> dict[str, Any]:
        if self.json.is_file():
            return json.loads(self.json.read_text())
        return {"benchmark": self.json.stem, "device": self.device_name, "parts": {}}

    def write(self, data: dict[str, Any]) -> None:
        self.json.parent.mkdir(parents=True, exist_ok=True)
        for path, text in ((self.json, json.dumps(data, indent=2) + "\n"), (self.md, markdown(data))):
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, path)

    def start(self, facts: dict[str, Any]) -> None:
        self.write(self.read() | facts)

    def update(self, part: str, **fields: Any) -> None:
        data = self.read()
        data["parts"].setdefault(part, {}).update(fields)
        self.write(data)

    def add_row(self, part: str, row: Row) -> None:
        data = self.read()
        data["parts"].setdefault(part, {}).setdefault("rows", []).append(row)
        self.write(data)


# --- the markdown table -----------------------------------------------------------------------


def _n(value: float | None, digits: int = 0) -> str:
    """``12,345``; small figures (a dry run's) keep three significant digits."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if abs(value) >= 10 ** (3 - digits) or value == 0 else f"{value:.3g}"


def markdown(data: dict[str, Any]) -> str:
    parts = data.get("parts", {})
    machine = data.get("machine", {})
    lines = [
        f"## GPU check: {data.get('device')}"
        + (" (dry run: tiny sizes on the CPU)" if data.get("dry_run") else ""),
        "",
        f"torch {machine.get('torch', '?')}, lightning {machine.get('lightning', '?')}, "
        f"CPU {machine.get('cpu', '?')} "
        f"({machine.get('cpu_cores', '?')} cores), commit {str(data.get('commit') or '?')[:12]}, "
        f"{machine.get('date', '?')}. Written by `benchmarks/gpu_check.py`.",
        "",
    ]
    throughput = [(name, r) for name in ("vgg11", "resnet50") for r in parts.get(name, {}).get("rows", [])]
    if throughput:
        lines += [
            "Training throughput, plain PyTorch loop and `lightning_labs.train` on the same device in one "
            "process (validation off; first steps = the untimed warm-up, compilation included):",
            "",
            "| network, input | variant | batch | plain loop img/s | lightning_labs img/s | ratio "
            "| first steps s, plain / ll | peak GiB, plain / ll |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for _, r in throughput:
            if "skipped" in r:
                lines.append(
                    f"| {r['case']} | {r['variant']} | {r['batch']} | skipped: {r['skipped']} | | | | |"
                )
                continue
            lines.append(
                f"| {r['case']} | {r['variant']} | {r['batch']} | {_n(r['plain_img_s'])} | "
                f"{_n(r['lightning_img_s'])} | {r['ratio']:.2f} | "
                f"{_n(r['plain_warmup_s'], 1)} / {_n(r['lightning_warmup_s'], 1)} | "
                f"{_n(r['plain_peak_gib'], 1)} / {_n(r['lightning_peak_gib'], 1)} |"
            )
        lines.append("")
    latency = parts.get("latency", {}).get("rows", [])
    if latency:
        devices = list(dict.fromkeys(r["device"] for r in latency))
        lines += [
            "Inference latency, `experiment=resnet50_cpu_vs_gpu_latency` (mean ms per call; img/s):",
            "",
            "| variant | batch | " + " | ".join(f"{d} ms | {d} img/s" for d in devices) + " |",
            "|---|---:|" + "---:|---:|" * len(devices),
        ]
        keys = list(dict.fromkeys((r["variant"], r.get("batch")) for r in latency if "skipped" not in r))
        for variant, batch in keys:
            cells = []
            for d in devices:
                hit = [
                    r for r in latency if (r["device"], r["variant"], r.get("batch")) == (d, variant, batch)
                ]
                if hit:
                    flag = "" if hit[0]["agrees"] else " (DIFFERS)"
                    cells += [f"{hit[0]['mean_ms']:.2f}{flag}", _n(hit[0]["img_s"])]
                else:
                    cells += ["-", "-"]
            lines.append(f"| {variant} | {batch} | " + " | ".join(cells) + " |")
        for r in latency:
            if "skipped" in r:
                lines.append(f"| {r['variant']} | - | {r['device']}: skipped ({r['skipped']}) |")
        lines.append("")
    lenet = parts.get("lenet", {}).get("rows", [])
    if lenet:
        lines += [
            "LeNet-5 / MNIST, the default recipe, trained to the end:",
            "",
            "| run | test/acc | epochs | seconds (training + test) | with start-up, s |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in lenet:
            ok = "" if r.get("accuracy_ok") in (None, True) else " (BELOW the usual)"
            lines.append(
                f"| {r['run']} | {r['test_acc']:.4f}{ok} | {r['epochs']} | {_n(r['seconds'], 1)} | "
                f"{_n(r.get('command_s'), 1)} |"
            )
        lines.append("")
    lines += ["| part | status | seconds | budget, s |", "|---|---|---:|---:|"]
    for name, part in parts.items():
        lines.append(
            f"| {name} | {part.get('status', '?')} | {_n(part.get('seconds'))} | {_n(part.get('budget_s'))} |"
        )
    return "\n".join(lines) + "\n"


# --- measurements -----------------------------------------------------------------------------


def compose_train(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from lightning_labs.runtime.config import config_path

    with initialize_config_dir(config_path(), version_base="1.3"):
        return compose("train", overrides=overrides)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepTimer(L.Callback):
    """Seconds of the training steps after ``warmup`` (the device synchronised at both ends), the
    images seen in them, the warm-up's seconds and the peak CUDA memory."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.images = warmup, 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)
        _synchronize(pl_module.device)
        self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if batch_idx == self.warmup - 1:
            _synchronize(pl_module.device)
            self.timed_from = time.perf_counter()
        elif batch_idx >= self.warmup:
            self.images += len(batch[1])
        if batch_idx == trainer.num_training_batches - 1:
            _synchronize(pl_module.device)
            self.ended = time.perf_counter()
            cuda = pl_module.device.type == "cuda"
            self.peak = torch.cuda.max_memory_allocated(pl_module.device) / 2**30 if cuda else None


class ChannelsLast(L.Callback):
    """The network's weights in channels_last before training (its convolutions then run NHWC),
    as the plain loop's ``net.to(memory_format=torch.channels_last)``."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        pl_module.net.to(memory_format=torch.channels_last)


def lightning_throughput(overrides: list[str], warmup: int, channels_last: bool) -> dict[str, Any]:
    """Train through ``lightning_labs.training.run.train`` with its default callbacks, plus the timer."""
    from omegaconf import open_dict

    from lightning_labs.training.run import train

    cfg = compose_train(overrides)
    with open_dict(cfg):
        cfg.callbacks["step_timer"] = {"_target_": f"{__name__}.StepTimer", "warmup": warmup}
        if channels_last:
            cfg.callbacks["channels_last"] = {"_target_": f"{__name__}.ChannelsLast"}
    _, objects = train(cfg)
    timer = next(c for c in objects["trainer"].callbacks if isinstance(c, StepTimer))
    return {
        "img_s": timer.images / (timer.ended - timer.timed_from),
        "warmup_s": timer.timed_from - timer.started,
        "peak_gib": timer.peak,
    }


def throughput_row(
    s: Sizes, work: Path, case: str, model: list[str], size: dict[str, int], classes: int, variant: Variant
) -> Row:
    """The plain loop, then lightning_labs, on the same config: one row of the table."""
    from plain_loop import plain_train

    batch, warmup, steps = size["batch"], size["warmup"], size["steps"]
    batches = warmup + steps
    overrides = [
        *model,
        "data=synthetic",
        f"data.input_shape=[3,{size['image']},{size['image']}]",
        f"data.num_classes={classes}",
        "data.val_fraction=0.1",
        f"data.train_size={math.ceil(batches * batch / 0.9) + 2}",  # 10% go to validation
        f"data.test_size={batch}",
        f"data.batch_size={batch}",
        *s.trainer,
        f"trainer.precision={variant.precision}",
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={batches}",
        "trainer.limit_val_batches=0",
        "test=false",
        f"model.compile={str(variant.compile).lower()}",
        f"model.compile_backend={s.compile_backend}",
        f"paths.output_dir={work / case.split()[0] / re.sub(r'[^a-z0-9]+', '_', variant.name)}",
    ]
    row: Row = {"case": case, "variant": variant.name, "batch": batch, "timed_steps": steps}
    row |= {
        "precision": variant.precision,
        "channels_last": variant.channels_last,
        "compile": variant.compile,
    }
    if variant.name in s.skip:
        return row | {"skipped": s.skip[variant.name]}
    plain = plain_train(
        compose_train(overrides),
        s.device,
        steps=batches,
        warmup=warmup,
        precision=variant.precision,
        channels_last=variant.channels_last,
        compile=variant.compile,
        compile_backend=s.compile_backend,
    )
    if variant.compile:
        torch._dynamo.reset()  # its caches hold the plain network (inductor's on-disk cache stays)
    gc.collect()
    if s.device == "cuda":
        torch.cuda.empty_cache()
    framework = lightning_throughput(overrides, warmup, variant.channels_last)
    return row | {
        "plain_img_s": plain.images_per_s,
        "lightning_img_s": framework["img_s"],
        "ratio": framework["img_s"] / plain.images_per_s,
        "plain_warmup_s": plain.warmup_s,
        "lightning_warmup_s": framework["warmup_s"],
        "plain_peak_gib": plain.peak_memory_gib,
        "lightning_peak_gib": framework["peak_gib"],
    }


def case_name(model: tuple[str, ...], size: dict[str, int]) -> str:
    """``vgg11 3x32x32`` (``, tiny`` when the dry run shrinks the network)."""
    name = model[0].removeprefix("model=")
    return f"{name} 3x{size['image']}x{size['image']}" + (", tiny" if len(model) > 1 else "")


def out_of_time(deadline: float, compiles: bool) -> str | None:
    """Why a measurement is not started this close to the part's deadline (None: it is)."""
    needs = COMPILE_SECONDS if compiles else 5
    left = deadline - time.time()
    return (
        f"not started: {left:.0f} s of the part's budget left, it needs about {needs}"
        if left < needs
        else None
    )


def part_vgg11(s: Sizes, work: Path, record: Record, deadline: float) -> None:
    case = case_name(s.vgg, s.vgg_size)
    for variant in VGG_VARIANTS:
        late = out_of_time(deadline, variant.compile)
        if late:
            record({"case": case, "variant": variant.name, "batch": s.vgg_size["batch"], "skipped": late})
            continue
        record(throughput_row(s, work, case, list(s.vgg), s.vgg_size, 10, variant))


def part_resnet50(s: Sizes, work: Path, record: Record, deadline: float) -> None:
    variant = Variant("bf16-mixed + channels_last", "bf16-mixed", channels_last=True)
    case = case_name(s.resnet, s.resnet_size)
    record(throughput_row(s, work, case, list(s.resnet), s.resnet_size, 1000, variant))


def part_latency(s: Sizes, work: Path, record: Record, deadline: float) -> None:
    """The preset as ``python -m lightning_labs.benchmark experiment=resnet50_cpu_vs_gpu_latency``
    measures it, device by device (the GPU first: a time-out then costs CPU figures)."""
    from hydra import compose, initialize_config_dir

    from lightning_labs.inference.benchmark import network_to_time
    from lightning_labs.inference.latency import Measurement, measure_latency
    from lightning_labs.runtime.config import config_path

    with initialize_config_dir(config_path(), version_base="1.3"):
        cfg = compose(
            "benchmark",
            overrides=[
                "experiment=resnet50_cpu_vs_gpu_latency",
                *s.latency,
                f"paths.output_dir={work / 'latency'}",
            ],
        )
    net, input_shape, _ = network_to_time(cfg)

    def as_row(result) -> None:
        if isinstance(result, Measurement):
            stats = result.stats
            record(
                {
                    "device": result.device,
                    "variant": result.variant,
                    "batch": result.batch_size,
                    "calls": len(result.times_ms),
                    "mean_ms": stats["mean_ms"],
                    "p50_ms": stats["p50_ms"],
                    "p90_ms": stats["p90_ms"],
                    "img_s": stats["images_per_s"],
                    "agrees": result.agrees,
                    "max_rel_diff": result.max_rel_diff,
                    "threads": result.threads,
                }
            )
        else:
            record({"device": result.device, "variant": result.variant, "skipped": result.reason})

    for device, warmup, seconds in s.latency_devices:
        for variant in cfg.variants:  # one at a time, so that the budget's end skips, not kills
            late = out_of_time(deadline, variant == "compile")
            if late:
                record({"device": device, "variant": variant, "skipped": late})
                continue
            measure_latency(
                net,
                input_shape,
                devices=[device],
                batch_sizes=list(cfg.batch_sizes),
                variants=[variant],
                warmup=warmup,
                iterations=int(cfg.iterations),
                time_budget_s=seconds,
                on_result=as_row,
            )


def part_lenet(s: Sizes, work: Path, record: Record, deadline: float) -> None:
    """The first trainer in this process through ``train`` (as the throughput parts), the DDP one by
    its real command line (DDP starts its processes from the command line, as a user's would),
    then the plain loop with the same recipe for as many steps."""
    from plain_loop import plain_train

    from lightning_labs.training.run import train

    for index, (name, trainer) in enumerate(s.lenet_runs):
        run_dir = work / re.sub(r"[^a-z0-9]+", "_", name)
        overrides = [*trainer, *s.lenet]
        started = time.perf_counter()
        if index == 0:
            train(compose_train([*overrides, f"paths.output_dir={run_dir}"]))
            command = f"train({' '.join(overrides)}) in this process"
        else:
            run_command([*overrides, f"hydra.run.dir={run_dir}"], run_dir, deadline, s.threads)
            command = " ".join(["python -m lightning_labs.train", *overrides])
        summary = json.loads((run_dir / "metrics.json").read_text())
        acc = summary["metrics"]["test/acc"]
        record(
            {
                "run": name,
                "command": command,
                "test_acc": acc,
                "epochs": summary["epochs"],
                "seconds": summary["seconds"],
                "command_s": time.perf_counter() - started,
                "accuracy_ok": None if s.min_lenet_acc is None else acc >= s.min_lenet_acc,
            }
        )
    cfg = compose_train([*s.lenet_runs[0][1], *s.lenet])
    started = time.perf_counter()
    plain = plain_train(
        cfg, s.device, steps=None, warmup=1, precision=str(cfg.trainer.precision), evaluate=True
    )
    record(
        {
            "run": f"plain loop ({cfg.trainer.precision})",
            "test_acc": plain.test_acc,
            "epochs": plain.epochs,
            "seconds": time.perf_counter() - started,
            "accuracy_ok": None if s.min_lenet_acc is None else plain.test_acc >= s.min_lenet_acc,
        }
    )


def run_command(overrides: list[str], run_dir: Path, deadline: float, threads: int | None) -> None:
    """``python -m lightning_labs.train <overrides>``, its output in ``run_dir/command.log``."""
    command = [sys.executable, "-m", "lightning_labs.train", *overrides]
    env = os.environ | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "command.log", "w") as log:
        done = subprocess.run(
            command,
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=max(1, deadline - time.time()),
        )
    if done.returncode != 0:
        tail = (run_dir / "command.log").read_text()[-1500:]
        raise RuntimeError(f"{' '.join(command[2:])} failed (exit {done.returncode}):\n{tail}")


RUNNERS = {"vgg11": part_vgg11, "resnet50": part_resnet50, "latency": part_latency, "lenet": part_lenet}


# --- running the parts ------------------------------------------------------------------------


def run_part(part: str, s: Sizes, results: Results, work: Path, budget: float) -> None:
    """Measure one part in this process; rows are written as they come, the status at the end."""
    from lightning_labs.runtime.logs import quiet_third_party

    quiet_third_party()
    if s.device == "cuda":
        torch.backends.cudnn.benchmark = True
    started = time.perf_counter()
    deadline = time.time() + budget - MARGIN_SECONDS  # before the parent stops this process
    threads = torch.get_num_threads()
    torch.set_num_threads(s.threads or threads)
    shutil.rmtree(work, ignore_errors=True)  # this part's runs of an earlier check (a run dir is not reused)
    try:
        RUNNERS[part](s, work, lambda row: results.add_row(part, row), deadline)
    except Exception as err:
        results.update(part, status=f"failed: {type(err).__name__}: {str(err)[:2000]}")
        raise
    finally:
        torch.set_num_threads(threads)
    results.update(part, status="ok", seconds=time.perf_counter() - started)


def run_isolated(part: str, args: argparse.Namespace, results: Results, budget: float) -> None:
    """The part in its own process, stopped (with everything it started) past its budget."""
    command = [sys.executable, __file__, "--worker", part, "--out", str(args.out), "--work", str(args.work)]
    command += ["--budget-scale", str(args.budget_scale)] + (["--dry-run"] if args.dry_run else [])
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, start_new_session=True)
    try:
        code = process.wait(timeout=budget)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        status = f"timed out after {budget:.0f} s (figures measured before are kept)"
        results.update(part, status=status, seconds=time.perf_counter() - started)
        print(f"{part}: {status}", flush=True)
        return
    if code != 0 and results.read()["parts"][part].get("status") == "running":
        results.update(part, status=f"failed: exit status {code}")
    results.update(part, seconds=time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", nargs="+", choices=list(PARTS), help="run these parts (others kept in the file)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="tiny sizes on the CPU: checks the code, not speed"
    )
    parser.add_argument("--out", type=Path, default=None, help="where gpu_<device>.json/.md go")
    parser.add_argument(
        "--work", type=Path, default=None, help="where the runs write (outputs/gpu_check; dry run: OUT/work)"
    )
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply every part's time budget")
    parser.add_argument("--in-process", action="store_true", help="no subprocess per part (no time limit)")
    parser.add_argument("--worker", choices=list(PARTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.dry_run:
        s, device_name = DRY_RUN, "cpu dry run"
        args.out = args.out or REPO / "outputs" / "gpu_check_dry_run"
    elif torch.cuda.is_available():
        s, device_name = GPU, torch.cuda.get_device_name(0)
        args.out = args.out or RESULTS_DIR
    else:
        print("gpu_check: no CUDA device here; --dry-run runs the same code on the CPU at tiny sizes")
        return 2
    # the runs' checkpoints and logs: a dry run's beside its results, a real check's in outputs/
    args.work = args.work or (args.out / "work" if args.dry_run else REPO / "outputs" / "gpu_check")
    args.out, args.work = args.out.resolve(), args.work.resolve()
    results = Results(args.out, device_name)

    if args.worker:  # one part, in the process the parent started
        budget = PARTS[args.worker][0] * args.budget_scale
        try:
            run_part(args.worker, s, results, args.work / args.worker, budget)
        except Exception:
            return 1
        return 0

    from lightning_labs.runtime.environment import git_commit, machine_info

    results.start(
        {
            "machine": machine_info(),
            "commit": git_commit(REPO),
            "dry_run": args.dry_run,
            "device": device_name,
        }
    )
    for part in args.only or list(PARTS):
        budget = PARTS[part][0] * args.budget_scale
        print(f"gpu_check: {part} ({PARTS[part][1]}), budget {budget:.0f} s", flush=True)
        results.update(part, rows=[], status="running", budget_s=budget, seconds=None, about=PARTS[part][1])
        if args.in_process:
            try:
                run_part(part, s, results, args.work / part, budget)
            except Exception as err:
                print(f"{part}: failed: {type(err).__name__}: {err}", flush=True)
        else:
            run_isolated(part, args, results, budget)
    print(markdown(results.read()))
    print(f"wrote {results.json} and {results.md}")
    failed = [p for p, v in results.read()["parts"].items() if v.get("status") != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
