"""Wall time of a whole short training run, start-up included: the train command against a plain loop.

    .venv/bin/python benchmarks/whole_run.py              # 6 epochs of LeNet-5 at batch 16, 2 rounds

Each side is a fresh process timed from start to exit:

* ``python -m lightning_labs.train trainer=cpu data.batch_size=16 trainer.max_epochs=6``: the
  command as a user types it, with its default callbacks, checkpoints, TensorBoard logging, a
  validation pass per epoch and the test of the best checkpoint;
* this file with ``--plain``: the same composed config trained by ``plain_loop.plain_train`` (the
  loop a lab would write: same network, data, optimizer, schedule and augmentation), then tested.
  It imports Lightning too (for the config and the seeding), so its start-up is not shorter than
  the command's: the ratio is the cost of everything else the command does.

The rounds alternate the order of the two (the machine may be busy with other work). Writes
benchmarks/results/whole_run.json.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result

SETTINGS = ["trainer=cpu", "data.batch_size=16", "trainer.max_epochs=6"]


def plain() -> None:
    """The plain side, in this process: compose the same config, train, test."""
    from hydra import compose, initialize_config_dir
    from plain_loop import plain_train

    from lightning_labs.runtime.config import config_path

    with initialize_config_dir(config_path(), version_base="1.3"):
        cfg = compose("train", overrides=SETTINGS)
    result = plain_train(cfg, "cpu", steps=None, warmup=1, evaluate=True)
    print(f"plain loop: {result.epochs:.0f} epochs, test accuracy {result.test_acc:.4f}")


def timed(command: list[str], out: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=out)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plain", action="store_true", help="run the plain side (used by the benchmark)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.plain:
        plain()
        return
    import tempfile

    cases = {
        "lightning_labs": [sys.executable, "-m", "lightning_labs.train", *SETTINGS],
        "plain": [sys.executable, str(Path(__file__).resolve()), "--plain"],
    }
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for round_number in range(args.rounds):
        order = list(cases) if round_number % 2 == 0 else list(reversed(cases))
        for name in order:
            with tempfile.TemporaryDirectory() as out:
                command = cases[name] + ([f"paths.log_dir={out}"] if name == "lightning_labs" else [])
                seconds[name].append(timed(command, Path(out)))
            print(f"round {round_number + 1}: {name} {seconds[name][-1]:.1f} s", flush=True)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    ratio = median["lightning_labs"] / median["plain"]
    print(
        f"lightning_labs {median['lightning_labs']:.1f} s, plain loop {median['plain']:.1f} s: {ratio:.2f}x"
    )
    path = write_result(
        "whole_run",
        {"settings": SETTINGS, "results": {"seconds": seconds, "median_seconds": median, "ratio": ratio}},
    )
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
