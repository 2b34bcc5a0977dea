"""Training throughput of lightning_labs against a plain PyTorch loop doing the same work.

    .venv/bin/python benchmarks/train_overhead.py            # a few minutes on 2 CPU cores

Both sides train the same network (same initial weights) on the same in-memory uint8 data with
the same batch size, optimizer, one-cycle schedule, label smoothing and per-batch augmentation.
(a) is the loop a lab would write; (b) is `lightning_labs.train` with its default callbacks and
TensorBoard logging, validation off (the plain loop has none). Only training steps are timed,
from the end of a warm-up step to the end of the last step, so start-up and epoch-end checkpoint
writing are out of both figures. The two alternate, several times, in one process: this machine
is noisy, so the figure of merit is the ratio of the medians.

The ``tiny-linear`` case (one 784x10 linear layer: next to no compute) measures the framework's
own cost per training step directly: its step time minus the plain loop's, in microseconds.

    .venv/bin/python benchmarks/train_overhead.py --repeats 5 --cases tiny-linear lenet5-mnist
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result

from lightning_labs.runtime.config import config_path, instantiate, to_plain
from lightning_labs.runtime.logs import quiet_third_party
from lightning_labs.training.lr_scaling import optimizer_arguments
from lightning_labs.training.run import train


class TinyLinear(nn.Module):
    """One linear layer over the flattened image: a step of next to no compute."""

    def __init__(self, in_channels: int, num_classes: int, image_size: list[int]) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels * image_size[0] * image_size[1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


TINY = ["model=custom", f"model.net._target_={__name__}.TinyLinear", "data=mnist"]

# name, overrides, batch size, timed steps
CASES = [
    ("tiny-linear", TINY, 16, 500),
    ("lenet5-mnist", ["model=lenet5", "data=mnist"], 16, 300),
    ("lenet5-mnist", ["model=lenet5", "data=mnist"], 128, 50),
    ("vgg11-cifar(synthetic)", ["model=vgg11", "data=synthetic", "data.train_size=1200"], 16, 6),
]
WARMUP = 5
REPEATS = 3


def clocks() -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds. On a shared machine the CPU time is the
    steadier figure: it leaves out the time the process waited while others ran."""
    return time.perf_counter(), time.process_time()


def rates(images: int, start: tuple[float, float], end: tuple[float, float]) -> tuple[float, float]:
    """Images per wall second and per CPU second."""
    return images / (end[0] - start[0]), images / (end[1] - start[1])


class StepTimer(L.Callback):
    """Clocks from the end of the warm-up steps to the end of the last step, and images seen."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == WARMUP - 1:
            self.start, self.images = clocks(), 0
        elif batch_idx >= WARMUP:
            self.images += len(batch[1])
            self.end = clocks()


def compose_case(overrides: list[str], batch_size: int, steps: int, out: Path):
    with initialize_config_dir(config_path(), version_base="1.3"):
        return compose(
            "train",
            overrides=[
                *overrides,
                "trainer=cpu",
                f"data.batch_size={batch_size}",
                "trainer.max_epochs=1",
                f"trainer.limit_train_batches={WARMUP + steps}",
                "trainer.limit_val_batches=0",
                "test=false",
                f"paths.output_dir={out}",
            ],
        )


def lightning_run(cfg) -> tuple[float, float]:
    with_timer = cfg.copy()
    with open_dict(with_timer):
        with_timer.callbacks["step_timer"] = {"_target_": f"{__name__}.StepTimer"}
    _, objects = train(with_timer)
    timer = next(c for c in objects["trainer"].callbacks if isinstance(c, StepTimer))
    return rates(timer.images, timer.start, timer.end)


def plain_run(cfg, steps: int) -> tuple[float, float]:
    """The lab's loop: shuffle, slice a batch, augment, forward, loss, backward, step, schedule."""
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    images, labels = datamodule.train_set.images, datamodule.train_set.labels
    from lightning_labs.models import build_net
    from lightning_labs.training.assembly import model_arguments

    arguments = model_arguments(to_plain(cfg.model), datamodule.facts)
    net = build_net(arguments["net"], arguments["edits"])
    optimizer = instantiate(optimizer_arguments(cfg.optimizer))(params=net.parameters())
    scheduler_cfg = {k: v for k, v in to_plain(cfg.scheduler).items() if k != "interval"}
    scheduler = instantiate(scheduler_cfg)(optimizer, total_steps=WARMUP + steps)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg.module.label_smoothing)
    batch_size = cfg.data.batch_size
    order = torch.randperm(len(labels))
    net.train()
    seen, start = 0, (0.0, 0.0)
    for step in range(WARMUP + steps):
        index = order[step * batch_size : (step + 1) * batch_size]
        x = datamodule._normalize(datamodule.augment(images[index]))
        y = labels[index]
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(net(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % 50 == 0:
            loss.item()  # the sync of the lab's periodic loss print-out, without the printing
        if step == WARMUP - 1:
            start = clocks()
        elif step >= WARMUP:
            seen += len(y)
    return rates(seen, start, clocks())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=REPEATS, help="alternations of the two sides")
    parser.add_argument("--cases", nargs="*", help="names of the cases to run (default: all)")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads (1 on a shared machine: a thread descheduled by "
        "another process stalls every parallel operation of a multi-threaded step)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_third_party()
    out = Path("outputs/benchmarks/train_overhead")
    rows = []
    for name, overrides, batch_size, steps in CASES:
        if args.cases and name not in args.cases:
            continue
        cfg = compose_case(overrides, batch_size, steps, out)
        plain, framework = [], []
        for repeat in range(args.repeats):  # alternate which side goes first
            if repeat % 2 == 0:
                plain.append(plain_run(cfg, steps))
                framework.append(lightning_run(cfg))
            else:
                framework.append(lightning_run(cfg))
                plain.append(plain_run(cfg, steps))
        row = {"case": name, "batch_size": batch_size, "timed_steps": steps}
        for index, clock in enumerate(("wall", "cpu")):  # images per wall second, per CPU second
            sides = {"plain": [p[index] for p in plain], "lightning_labs": [f[index] for f in framework]}
            medians = {side: statistics.median(values) for side, values in sides.items()}
            us = {side: 1e6 * batch_size / median for side, median in medians.items()}
            row[clock] = {
                **{f"{side}_images_per_s": values for side, values in sides.items()},
                **{f"{side}_median": median for side, median in medians.items()},
                "ratio": medians["lightning_labs"] / medians["plain"],
                # The framework's own cost: the difference of the two median step times.
                **{f"{side}_us_per_step": value for side, value in us.items()},
                "overhead_us_per_step": us["lightning_labs"] - us["plain"],
            }
            print(
                f"{name} batch {batch_size} ({clock} clock): plain {medians['plain']:,.0f} img/s, "
                f"lightning_labs {medians['lightning_labs']:,.0f} img/s, ratio {row[clock]['ratio']:.3f}; "
                f"{us['plain']:,.0f} vs {us['lightning_labs']:,.0f} us/step "
                f"(framework +{row[clock]['overhead_us_per_step']:,.0f} us/step)"
            )
        rows.append(row)
    if args.cases:  # a partial run does not replace the committed results
        return
    path = write_result("train_overhead", {"warmup_steps": WARMUP, "repeats": args.repeats, "results": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
