"""How busy the hardware is while training: GPU utilisation and memory, this process's CPU use.

Replaces Lightning's ``DeviceStatsMonitor``, which logs dozens of cards (``cpu_swap_percent``
among them) whose names sort before ``train/`` and ``val/`` in TensorBoard. Here every card is
under ``device/``, so loss and accuracy come first.
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import psutil
import torch
from lightning.pytorch.utilities import rank_zero_warn

GIB = 1024**3


def gpu_percent(device: torch.device) -> float | None:
    """GPU-Util as nvidia-smi shows it (NVML: the share of the last 1/6 to 1 s a kernel ran), or
    None when NVML's Python binding (``pip install nvidia-ml-py``) is missing."""
    try:
        return float(torch.cuda.utilization(device))
    except ModuleNotFoundError:
        return None


def gpu_memory_gib(device: torch.device) -> float:
    """Memory in use on the GPU, all processes, as nvidia-smi's Memory-Usage (cudaMemGetInfo), in GiB."""
    free, total = torch.cuda.mem_get_info(device)
    return (total - free) / GIB


class CpuClock:
    """This process's CPU time and the wall time since the last reading (DataLoader workers are
    other processes: not counted)."""

    def __init__(self) -> None:
        self.restart()

    def busy_seconds(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    def restart(self) -> None:
        """Start counting now, in the calling process (a DDP worker is not the process that built this)."""
        self.process = psutil.Process()
        self.busy, self.wall = self.busy_seconds(), time.perf_counter()

    def read(self) -> tuple[float, float]:
        """(CPU seconds, wall seconds) since the last reading or restart; the next reading starts now."""
        busy, wall = self.busy_seconds(), time.perf_counter()
        spent = (busy - self.busy, wall - self.wall)
        self.busy, self.wall = busy, wall
        return spent


class DeviceUsage(L.Callback):
    """Logs ``device/*`` scalars while training, on logging steps and at each epoch's last step.

    Per step (points at that step, every ``trainer.log_every_n_steps``): ``device/cpu_percent``
    (this process, since the previous point; 100 = one core) and, on a CUDA GPU,
    ``device/gpu_percent`` (nvidia-smi's GPU-Util, through NVML) and ``device/gpu_memory_gib``
    (memory in use on the GPU, as nvidia-smi's Memory-Usage). Per epoch (also in
    ``metrics.json``, for the last epoch): ``device/cpu_percent_mean`` (CPU time over wall time
    from the epoch's start to its last training step, the span the epoch's points split, so the
    mean lies between them), ``device/cpu_percent_peak`` and, on a GPU,
    ``device/gpu_percent_mean`` and ``_peak`` over the epoch's points, and
    ``device/gpu_peak_allocated_gib`` (``torch.cuda.max_memory_allocated``: the most this process's
    tensors held at once during the epoch).

    On the CPU the GPU figures are not logged at all (rather than zeros that read as an idle GPU).
    Reading NVML takes microseconds and needs no synchronisation with the GPU.
    """

    def __init__(self) -> None:
        self.clock = CpuClock()
        self.samples: dict[str, list[float]] = {}
        self.cpu_seconds = self.wall_seconds = 0.0  # over the epoch's points, for the mean
        self.sampled_step = -1

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.clock.restart()
        self.samples, self.cpu_seconds, self.wall_seconds = {}, 0.0, 0.0
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run resumed mid-epoch starts without on_train_epoch_start.
        self.on_train_epoch_start(trainer, pl_module)
        if pl_module.device.type == "cuda" and gpu_percent(pl_module.device) is None:
            rank_zero_warn(
                "device/gpu_percent is not logged: NVML's Python binding is missing "
                "(pip install nvidia-ml-py); GPU memory is logged"
            )

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        every, step = trainer.log_every_n_steps, trainer.global_step
        last = batch_idx + 1 >= trainer.num_training_batches
        # Once per optimizer step (accumulated batches share one): a reading of a few microseconds
        # would divide the CPU clock's 10 ms ticks by next to nothing.
        if step == self.sampled_step or not (last or (every and step % every == 0)):
            return
        self.sampled_step = step
        sample = self.sample(pl_module.device)
        for name, value in sample.items():
            self.samples.setdefault(name, []).append(value)
        for logger in trainer.loggers:  # numbered as Lightning numbers the values logged in that step
            logger.log_metrics(sample, step=step - 1)

    def sample(self, device: torch.device) -> dict[str, float]:
        """One reading of every figure of this device, named as logged."""
        cpu, wall = self.clock.read()
        self.cpu_seconds, self.wall_seconds = self.cpu_seconds + cpu, self.wall_seconds + wall
        sample = {"device/cpu_percent": 100 * cpu / max(wall, 1e-9)}
        if device.type == "cuda":
            sample["device/gpu_memory_gib"] = gpu_memory_gib(device)
            utilisation = gpu_percent(device)
            if utilisation is not None:
                sample["device/gpu_percent"] = utilisation
        return sample

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        figures = {}
        if self.wall_seconds:
            figures["device/cpu_percent_mean"] = 100 * self.cpu_seconds / self.wall_seconds
        for name in ("device/cpu_percent", "device/gpu_percent"):
            if self.samples.get(name):
                figures[f"{name}_peak"] = max(self.samples[name])
        gpu = self.samples.get("device/gpu_percent")
        if gpu:
            figures["device/gpu_percent_mean"] = sum(gpu) / len(gpu)
        if pl_module.device.type == "cuda":
            figures["device/gpu_peak_allocated_gib"] = torch.cuda.max_memory_allocated(pl_module.device) / GIB
        for name, value in figures.items():
            pl_module.log(name, value, rank_zero_only=True)
