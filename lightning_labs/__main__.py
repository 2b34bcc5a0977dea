"""``python -m lightning_labs``: the list of commands (each also installed as ``ll-<command>``)."""

from __future__ import annotations

import sys

COMMANDS = {
    "train": "train a model on a dataset, then test its best checkpoint",
    "eval": "test a checkpoint (ckpt_path=...) and print its metrics",
    "predict": "classify samples of the test split, or image files, with a checkpoint",
    "export": "write a checkpoint's network as ONNX, TorchScript or a state_dict",
    "inspect": "parameters, MACs and layers of a model; how two models differ",
    "benchmark": "inference latency of a model on every device, batch size and variant",
    "compare": "one table and plots of a sweep's runs",
    "report": "a Markdown report of a run or a sweep, with its pictures",
}


def main() -> int:
    print("lightning_labs commands (Hydra overrides follow the command; --help lists a command's options):\n")
    width = max(map(len, COMMANDS))
    for name, what in COMMANDS.items():
        print(f"  python -m lightning_labs.{name:<{width}}  (ll-{name}){' ' * (width - len(name))}  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
