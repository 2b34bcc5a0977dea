"""The training loop a lab would write by hand, for any composed ``train`` config: the yardstick the
benchmarks hold ``lightning_labs.train`` against (same network, data, optimizer, schedule, loss,
per-batch augmentation, precision and memory format; on the same device, in the same process).

    from plain_loop import plain_train          # in a script under benchmarks/, run as a file
    result = plain_train(cfg, "cuda", steps=45, warmup=5, precision="bf16-mixed", channels_last=True)
    result.images_per_s, result.warmup_s

The in-memory splits are moved to the device once (as ``lightning_labs`` does on a GPU); each step
cuts a batch by index, augments and normalises it there, then forward, loss, backward, step and
schedule. Only the steps after ``warmup`` are timed (compilation and cuDNN autotuning happen in the
first ones), with the device synchronised at both ends.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass

import lightning as L
import torch
from omegaconf import DictConfig

from lightning_labs.models import build_net
from lightning_labs.runtime.config import instantiate, to_plain
from lightning_labs.training.assembly import model_arguments
from lightning_labs.training.lr_scaling import optimizer_arguments

# Lightning's precision names -> the autocast dtype (None: float32 throughout)
AUTOCAST = {"32-true": None, "32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


@dataclass
class PlainResult:
    images_per_s: float  # over the timed steps
    warmup_s: float  # the untimed first steps: compilation, autotuning, allocator warm-up
    peak_memory_gib: float | None  # CUDA only
    seconds: float  # the whole training, warm-up included (data set-up and evaluation not)
    epochs: float  # steps / batches per epoch
    test_acc: float | None = None  # with evaluate=True


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_train(
    cfg: DictConfig,
    device: str,
    steps: int | None,
    warmup: int,
    precision: str = "32-true",
    channels_last: bool = False,
    compile: bool = False,
    compile_backend: str = "inductor",
    evaluate: bool = False,
) -> PlainResult:
    """Train ``cfg``'s network on ``cfg``'s data for ``steps`` optimizer steps (reshuffling every
    epoch; None: ``trainer.max_epochs`` epochs of ``trainer.limit_train_batches`` or all batches),
    the first ``warmup`` of them untimed; ``evaluate``: top-1 accuracy on the test split."""
    if precision not in AUTOCAST:
        raise ValueError(f"plain loop: precision {precision!r} is not one of {', '.join(AUTOCAST)}")
    dev = torch.device(device)
    L.seed_everything(cfg.seed, verbose=False)
    torch.set_float32_matmul_precision(cfg.get("float32_matmul_precision", "highest"))
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    images, labels = datamodule.train_set.images.to(dev), datamodule.train_set.labels.to(dev)

    arguments = model_arguments(to_plain(cfg.model), datamodule.facts)
    net = build_net(arguments["net"], arguments["edits"]).to(dev)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    forward = torch.compile(net, backend=compile_backend) if compile else net
    optimizer = instantiate(optimizer_arguments(cfg.optimizer))(params=net.parameters())
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg.module.label_smoothing)
    dtype = AUTOCAST[precision]
    scaler = torch.amp.GradScaler(dev.type) if dtype is torch.float16 else None
    batch_size = int(cfg.data.batch_size)
    per_epoch = math.ceil(len(labels) / batch_size)
    limit = cfg.trainer.get("limit_train_batches")
    if isinstance(limit, int) and not isinstance(limit, bool):
        per_epoch = min(per_epoch, limit)
    steps = steps or int(cfg.trainer.max_epochs) * per_epoch
    if not 0 < warmup < steps:
        raise ValueError(f"plain loop: need 0 < warmup ({warmup}) < steps ({steps})")
    # the one-cycle schedule of train.yaml, stepped per batch over the whole run
    scheduler_cfg = {k: v for k, v in to_plain(cfg.scheduler).items() if k != "interval"}
    scheduler = instantiate(scheduler_cfg)(optimizer, total_steps=steps)

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    net.train()
    synchronize(dev)
    started = time.perf_counter()
    timed_from, seen = 0.0, 0
    for step in range(steps):
        if step % per_epoch == 0:
            order = torch.randperm(len(labels), device=dev)
        index = order[(step % per_epoch) * batch_size : (step % per_epoch + 1) * batch_size]
        x = datamodule._normalize(datamodule.augment(images[index]))
        y = labels[index]
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=dtype) if dtype is not None else nullcontext():
            loss = criterion(forward(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        scheduler.step()
        if step == warmup - 1:
            synchronize(dev)
            timed_from = time.perf_counter()
        elif step >= warmup:
            seen += len(y)
    synchronize(dev)
    ended = time.perf_counter()
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
    result = PlainResult(
        seen / (ended - timed_from), timed_from - started, peak, ended - started, steps / per_epoch
    )
    if evaluate:
        result.test_acc = test_accuracy(net, datamodule, dev, dtype)
    return result


@torch.inference_mode()
def test_accuracy(net: torch.nn.Module, datamodule, device: torch.device, dtype: torch.dtype | None) -> float:
    """Top-1 accuracy of ``net`` on the test split, in eval mode, batch by batch as evaluation does."""
    datamodule.setup("test")
    images, labels = datamodule.test_set.images.to(device), datamodule.test_set.labels.to(device)
    net.eval()
    correct, batch_size = 0, int(datamodule.batch_size)
    for start in range(0, len(labels), batch_size):
        x = datamodule._normalize(images[start : start + batch_size])
        with torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext():
            correct += int((net(x).argmax(1) == labels[start : start + batch_size]).sum())
    return correct / len(labels)
