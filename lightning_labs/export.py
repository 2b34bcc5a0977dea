"""``python -m lightning_labs.export ckpt_path=... format=...`` (or ``ll-export``): a network for deployment.

python -m lightning_labs.export ckpt_path=outputs/train/<date>/<time>/checkpoints/best.ckpt
python -m lightning_labs.export ckpt_path=... format=torchscript output=lenet5.pt
python -m lightning_labs.export ckpt_path=... format=state_dict

The file is run next to the PyTorch network on a random batch, and the largest difference of
their outputs is reported (see :mod:`lightning_labs.inference.export`). After an ONNX export it
prints the command that opens the graph in Netron (``pip install 'lightning-labs[netron]'``).
"""

from __future__ import annotations

from omegaconf import DictConfig

from lightning_labs.runtime.entry import command


@command("export")
def main(cfg: DictConfig) -> float | None:
    from lightning_labs.inference.export import export, print_export_summary

    summary = export(cfg)
    print_export_summary(summary)
    return summary["max_abs_diff"]


if __name__ == "__main__":
    main()
