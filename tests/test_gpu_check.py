"""benchmarks/gpu_check.py on the CPU (--dry-run): every part's code runs at tiny sizes, so the
script works the first time a GPU is there; a part past its time budget is stopped, and the
figures of the other parts are kept."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import gpu_check
from plain_loop import plain_train


def test_dry_run_writes_every_part_with_its_figures(tmp_path: Path) -> None:
    assert gpu_check.main(["--dry-run", "--in-process", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "gpu_cpu-dry-run.json").read_text())
    assert data["dry_run"] is True and data["machine"]["torch"]
    parts = data["parts"]
    assert list(parts) == list(gpu_check.PARTS)
    assert {name: part["status"] for name, part in parts.items()} == dict.fromkeys(gpu_check.PARTS, "ok")

    vgg, resnet = parts["vgg11"]["rows"], parts["resnet50"]["rows"]
    assert [r["variant"] for r in vgg] == [v.name for v in gpu_check.VGG_VARIANTS]
    assert [r["variant"] for r in vgg if "skipped" in r] == ["16-mixed"]  # Lightning refuses it on a CPU
    measured = [r for r in vgg + resnet if "skipped" not in r]
    assert len(measured) == 5 and any(r["compile"] for r in measured)
    for row in measured:
        assert row["plain_img_s"] > 0 and row["lightning_img_s"] > 0 and row["ratio"] > 0
        assert row["plain_warmup_s"] > 0 and row["lightning_warmup_s"] > 0

    latency = parts["latency"]["rows"]
    timed = [r for r in latency if "skipped" not in r]
    assert {(r["variant"], r["batch"]) for r in timed} == {
        (v, b) for v in ("eager", "channels_last", "bf16") for b in (1, 2)
    }
    assert all(r["device"] == "cpu" and r["mean_ms"] > 0 and r["img_s"] > 0 and r["agrees"] for r in timed)
    assert [(r["variant"], r["device"]) for r in latency if "skipped" in r] == [("fp16", "cpu")]

    lenet = parts["lenet"]["rows"]
    assert [r["run"] for r in lenet] == ["trainer=cpu", "trainer=ddp, 1 CPU process", "plain loop (32-true)"]
    assert all(0 < r["test_acc"] <= 1 and r["seconds"] > 0 for r in lenet)
    assert lenet[1]["command"].startswith(
        "python -m lightning_labs.train trainer=ddp trainer.accelerator=cpu"
    )

    table = (tmp_path / "gpu_cpu-dry-run.md").read_text()
    assert "| vgg11 3x16x16, tiny | bf16-mixed + channels_last + compile | 8 |" in table
    assert "| resnet18 3x32x32 | bf16-mixed + channels_last | 2 |" in table
    assert "| eager | 1 |" in table and "| trainer=ddp, 1 CPU process |" in table
    for part in gpu_check.PARTS:
        assert f"| {part} | ok |" in table
    assert not list(gpu_check.RESULTS_DIR.glob("gpu_cpu-dry-run*"))  # a dry run never writes the results


def test_a_part_past_its_budget_is_stopped_and_earlier_figures_are_kept(tmp_path: Path) -> None:
    results = gpu_check.Results(tmp_path, "cpu dry run")
    earlier = {"run": "trainer=cpu", "test_acc": 0.99, "epochs": 15, "seconds": 20.0, "command_s": 30.0}
    results.update("lenet", rows=[earlier], status="ok", seconds=31.0, budget_s=105)
    started = time.perf_counter()
    # vgg11's 150 s budget x 0.02 = 3 s: its own process is still importing when it is stopped
    code = gpu_check.main(["--dry-run", "--only", "vgg11", "--budget-scale", "0.02", "--out", str(tmp_path)])
    assert code == 1
    assert time.perf_counter() - started < 60
    parts = json.loads((tmp_path / "gpu_cpu-dry-run.json").read_text())["parts"]
    assert parts["vgg11"]["status"] == "timed out after 3 s (figures measured before are kept)"
    assert parts["lenet"]["rows"] == [earlier] and parts["lenet"]["status"] == "ok"
    table = (tmp_path / "gpu_cpu-dry-run.md").read_text()
    assert "| vgg11 | timed out after 3 s" in table and "| trainer=cpu | 0.9900 | 15 |" in table


def test_the_device_names_the_files() -> None:
    assert gpu_check.device_slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    results = gpu_check.Results(Path("/x"), "NVIDIA H200")
    assert results.json == Path("/x/gpu_nvidia-h200.json") and results.md == Path("/x/gpu_nvidia-h200.md")


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
def test_the_plain_loop_trains_with_each_precision(make_cfg, precision: str) -> None:
    """16-mixed (float16 autocast and a GradScaler) runs on a CPU too in the plain loop, so its code
    is checked here although Lightning refuses 16-mixed without a GPU."""
    cfg = make_cfg(
        "data=synthetic", "data.input_shape=[3,16,16]", "model=vgg11", "model.net.layers=[8,M,8,M]"
    )
    with open_dict(cfg):
        cfg.data.train_size = 64
    result = plain_train(
        cfg, "cpu", steps=3, warmup=1, precision=precision, channels_last=True, evaluate=True
    )
    assert result.images_per_s > 0 and result.warmup_s > 0 and 0 <= result.test_acc <= 1
    assert result.peak_memory_gib is None  # CUDA only
