"""Wall time of the 4-job pooling x activation sweep: one job at a time against hydra/launcher=parallel.

    .venv/bin/python benchmarks/sweep.py               # the recipe (15 epochs), 1 round: minutes on 2 cores
    .venv/bin/python benchmarks/sweep.py --rounds 2    # both cases twice, in alternating order
    .venv/bin/python benchmarks/sweep.py --epochs 2    # a quick look (not the recorded figure)

Each case is the command a user types, run in a fresh process and timed from start to exit
(start-up, data loading, testing and the sweep's own bookkeeping included):

    python -m lightning_labs.train -m experiment=pool_act_sweep                            # sequential
    python -m lightning_labs.train -m experiment=pool_act_sweep hydra/launcher=parallel    # parallel

On a machine without a GPU the parallel launcher runs one job per core set with as many torch
threads; with GPUs, one job per GPU (``N jobs on N GPUs``). Both cases train the same four
settings with the same seed; the report puts each setting's test accuracy side by side, since a
different thread count changes the order of floating-point sums and so the last digits. The
rounds alternate the order of the cases (the machine may be busy with other work). Writes
benchmarks/results/sweep.json (and prints the table).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_result

SWEEP = ["-m", "experiment=pool_act_sweep"]
CASES = {"sequential": [], "parallel": ["hydra/launcher=parallel"]}


def run_case(extra: list[str], epochs: int | None, root: Path) -> tuple[float, dict[str, float]]:
    """Seconds the sweep took, and each setting's test accuracy (``pool=max act=relu`` -> 0.98)."""
    sweep = root / "sweep"
    overrides = [*SWEEP, *extra, f"hydra.sweep.dir={sweep}"]
    overrides += [f"trainer.max_epochs={epochs}"] if epochs else []
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "lightning_labs.train", *overrides], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the sweep failed ({' '.join(overrides)}):\n{done.stderr[-3000:]}")
    accuracy = {}
    for metrics_file in sorted(sweep.glob("*/metrics.json")):
        summary = json.loads(metrics_file.read_text())
        setting = " ".join(o.replace("model.", "") for o in summary["overrides"] if o.startswith("model."))
        accuracy[setting] = summary["metrics"]["test/acc"]
    if len(accuracy) != 4:
        raise SystemExit(f"expected 4 finished jobs in {sweep}, found {len(accuracy)}")
    return seconds, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="times each case runs (alternating order)")
    parser.add_argument("--epochs", type=int, help="epochs per job (default: the recipe's)")
    args = parser.parse_args()

    seconds: dict[str, list[float]] = {name: [] for name in CASES}
    accuracy: dict[str, dict[str, float]] = {}
    for round_number in range(args.rounds):
        order = list(CASES) if round_number % 2 == 0 else list(reversed(CASES))
        for name in order:
            with tempfile.TemporaryDirectory() as root:
                took, accuracy[name] = run_case(CASES[name], args.epochs, Path(root))
            seconds[name].append(took)
            print(f"round {round_number + 1}: {name} {took:.1f} s", flush=True)

    median = {name: statistics.median(values) for name, values in seconds.items()}
    speedup = median["sequential"] / median["parallel"]
    print(f"\n{'case':<12}{'wall time (median)':>20}")
    for name in CASES:
        print(f"{name:<12}{median[name]:>18.1f} s")
    print(f"parallel is {speedup:.2f}x faster\n")
    print(f"{'setting':<22}{'sequential':>12}{'parallel':>12}")
    for setting in accuracy["sequential"]:
        print(f"{setting:<22}{accuracy['sequential'][setting]:>12.4f}{accuracy['parallel'][setting]:>12.4f}")
    path = write_result(
        "sweep",
        {
            "settings": {"command": ["python", "-m", "lightning_labs.train", *SWEEP], "epochs": args.epochs},
            "results": {
                "seconds": seconds,
                "median_seconds": median,
                "speedup": speedup,
                "test_acc_last_round": accuracy,
            },
        },
    )
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
