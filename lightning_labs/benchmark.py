"""``python -m lightning_labs.benchmark`` (or ``ll-benchmark``): inference latency on every device.

python -m lightning_labs.benchmark model=resnet50 data=imagenet num_classes=1000
python -m lightning_labs.benchmark ckpt_path=.../best.ckpt devices=[cpu] batch_sizes=[1,16]
python -m lightning_labs.benchmark ckpt_path=.../best.ckpt image=digit.png   # preparing + inference

Variants: eager fp32, channels_last, bf16 and fp16 autocast, torch.compile, ONNX Runtime; those
that cannot run here are skipped with a one-line reason. Writes benchmark.json (with every timed
call), benchmark.csv and latency.png into the run directory (see
:mod:`lightning_labs.inference.benchmark`).
"""

from __future__ import annotations

from omegaconf import DictConfig

from lightning_labs.runtime.entry import command


@command("benchmark")
def main(cfg: DictConfig) -> None:
    from lightning_labs.inference.benchmark import benchmark

    benchmark(cfg)


if __name__ == "__main__":
    main()
