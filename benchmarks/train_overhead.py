"""Training throughput of lightning_labs against a plain PyTorch loop doing the same work.

    .venv/bin/python benchmarks/train_overhead.py            # a few minutes on 2 CPU cores

Both sides train the same network (same initial weights) on the same in-memory uint8 data with
the same batch size, optimizer, one-cycle schedule, label smoothing and per-batch augmentation.
(a) is the loop a lab would write; (b) is `lightning_labs.train` with its default callbacks and
TensorBoard logging, validation off (the plain loop has none). Only training steps are timed,
from the end of a warm-up step to the end of the last step, so start-up and epoch-end checkpoint
writing are out of both figures. The two alternate, several times, in one process: this machine
is noisy, so the figure of merit is the ratio of the medians.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result

from lightning_labs.runtime.config import config_path, instantiate, to_plain
from lightning_labs.runtime.logs import quiet_third_party
from lightning_labs.training.lr_scaling import optimizer_arguments
from lightning_labs.training.run import train

# name, overrides, batch size, timed steps
CASES = [
    ("lenet5-mnist", ["model=lenet5", "data=mnist"], 16, 300),
    ("lenet5-mnist", ["model=lenet5", "data=mnist"], 128, 50),
    ("vgg11-cifar(synthetic)", ["model=vgg11", "data=synthetic", "data.train_size=1200"], 16, 6),
]
WARMUP = 5
REPEATS = 3


class StepTimer(L.Callback):
    """Seconds from the end of the warm-up steps to the end of the last step, and images seen."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == WARMUP - 1:
            self.start, self.images = time.perf_counter(), 0
        elif batch_idx >= WARMUP:
            self.images += len(batch[1])
            self.end = time.perf_counter()


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


def lightning_run(cfg) -> float:
    with_timer = cfg.copy()
    with open_dict(with_timer):
        with_timer.callbacks["step_timer"] = {"_target_": f"{__name__}.StepTimer"}
    _, objects = train(with_timer)
    timer = next(c for c in objects["trainer"].callbacks if isinstance(c, StepTimer))
    return timer.images / (timer.end - timer.start)


def plain_run(cfg, steps: int) -> float:
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
    seen, start = 0, 0.0
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
            start = time.perf_counter()
        elif step >= WARMUP:
            seen += len(y)
    return seen / (time.perf_counter() - start)


def main() -> None:
    quiet_third_party()
    out = Path("outputs/benchmarks/train_overhead")
    rows = []
    for name, overrides, batch_size, steps in CASES:
        cfg = compose_case(overrides, batch_size, steps, out)
        plain, framework = [], []
        for repeat in range(REPEATS):  # alternate which side goes first
            if repeat % 2 == 0:
                plain.append(plain_run(cfg, steps))
                framework.append(lightning_run(cfg))
            else:
                framework.append(lightning_run(cfg))
                plain.append(plain_run(cfg, steps))
        row = {
            "case": name,
            "batch_size": batch_size,
            "timed_steps": steps,
            "plain_images_per_s": plain,
            "lightning_labs_images_per_s": framework,
            "plain_median": statistics.median(plain),
            "lightning_labs_median": statistics.median(framework),
        }
        row["ratio"] = row["lightning_labs_median"] / row["plain_median"]
        rows.append(row)
        print(
            f"{name} batch {batch_size}: plain {row['plain_median']:,.0f} img/s, "
            f"lightning_labs {row['lightning_labs_median']:,.0f} img/s, ratio {row['ratio']:.3f}"
        )
    path = write_result("train_overhead", {"warmup_steps": WARMUP, "repeats": REPEATS, "results": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
