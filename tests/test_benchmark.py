"""Inference latency: the benchmark command, its callback, variant checks and skipped variants."""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_labs.inference.benchmark import benchmark
from lightning_labs.inference.latency import Measurement, Skipped, measure_latency, time_calls
from lightning_labs.inference.latency_report import STATS
from lightning_labs.models import LeNet5
from lightning_labs.runtime.config import config_path
from lightning_labs.training.run import train


def bench_cfg(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_path(), version_base="1.3"):
        return compose(
            "benchmark", overrides=[f"paths.output_dir={tmp_path}", "warmup=1", "iterations=5", *overrides]
        )


def test_benchmark_writes_every_statistic_for_each_batch_size_and_variant(tmp_path: Path) -> None:
    cfg = bench_cfg(
        tmp_path, "batch_sizes=[1,4]", "variants=[eager,channels_last,bf16,fp16,onnxruntime]", "devices=[cpu]"
    )
    results = benchmark(cfg)
    measured = [r for r in results if isinstance(r, Measurement)]
    assert {(r.variant, r.batch_size) for r in measured} == {
        (v, b) for v in ("eager", "channels_last", "bf16", "onnxruntime") for b in (1, 4)
    }
    assert all(r.agrees for r in measured), [(r.variant, r.max_rel_diff) for r in measured]
    skipped = [r for r in results if isinstance(r, Skipped)]
    assert [(s.variant, s.reason) for s in skipped] == [("fp16", "fp16 autocast needs a CUDA device")]

    saved = json.loads((tmp_path / "benchmark.json").read_text())
    assert saved["machine"]["cpu_cores"] == os.cpu_count() and saved["input_shape"] == [1, 28, 28]
    for result in saved["results"]:
        if "reason" not in result:
            assert set(STATS) <= set(result["stats"]) and len(result["times_ms"]) == 5
            assert result["threads"] == torch.get_num_threads()
            assert result["stats"]["min_ms"] <= result["stats"]["p50_ms"] <= result["stats"]["p99_ms"]
    rows = list(csv.DictReader((tmp_path / "benchmark.csv").read_text().splitlines()))
    assert len(rows) == 9 and rows[-1]["skipped"] == "" and any(r["skipped"] for r in rows)
    assert (tmp_path / "latency.png").stat().st_size > 10_000


def test_a_wrong_variant_is_caught_by_the_output_check(monkeypatch) -> None:
    import lightning_labs.inference.latency as latency

    real = latency.prepare

    def broken(net, variant, device, example):
        fn = real(net, "eager", device, example)
        return (lambda x: fn(x) * 1.5) if variant == "channels_last" else fn

    monkeypatch.setattr(latency, "prepare", broken)
    results = measure_latency(LeNet5(), (1, 28, 28), ["cpu"], [2], ["eager", "channels_last"], 0, 3)
    assert [r.agrees for r in results] == [True, False]


def test_unavailable_variants_are_skipped_with_a_reason(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    devices = ["cpu"] if torch.cuda.is_available() else ["cpu", "cuda"]
    results = measure_latency(LeNet5(), (1, 28, 28), devices, [1], ["eager", "onnxruntime"], 0, 3)
    reasons = {(r.device, r.variant): r.reason for r in results if isinstance(r, Skipped)}
    assert reasons[("cpu", "onnxruntime")].startswith("onnxruntime is not installed")
    if not torch.cuda.is_available():
        assert reasons[("cuda", "eager")] == "no CUDA device"
    with pytest.raises(ValueError, match="Unknown latency variant 'tensorrt'"):
        measure_latency(LeNet5(), (1, 28, 28), ["cpu"], [1], ["tensorrt"], 0, 1)


def test_a_time_budget_stops_the_timed_calls_early() -> None:
    times = time_calls(
        lambda x: time.sleep(0.02), torch.zeros(1), "cpu", warmup=0, iterations=1000, time_budget_s=0.1
    )
    assert 3 <= len(times) < 20 and min(times) >= 20


def test_latency_callback_logs_scalars_and_metrics(make_cfg) -> None:
    cfg = make_cfg(
        "callbacks=latency",
        "callbacks.rich_progress_bar=null",
        "callbacks.model_facts=null",
        "callbacks.latency.iterations=5",
        "callbacks.latency.batch_sizes=[1,8]",
        "test=false",
    )
    metrics, _ = train(cfg)
    run = Path(cfg.paths.output_dir)
    # The run's metrics are the figures of benchmark.json, whose statistics are those of its timed calls.
    saved = {
        (r["device"], r["variant"], r["batch_size"]): r
        for r in json.loads((run / "benchmark.json").read_text())["results"]
    }
    assert set(saved) == {("cpu", "eager", 1), ("cpu", "eager", 8)}
    for batch_size, result in ((1, saved["cpu", "eager", 1]), (8, saved["cpu", "eager", 8])):
        times = torch.tensor(result["times_ms"], dtype=torch.float64)
        assert len(times) == 5 and times.min() > 0
        assert result["stats"]["mean_ms"] == pytest.approx(float(times.mean()), rel=1e-9)
        assert result["stats"]["p90_ms"] == pytest.approx(float(times.quantile(0.9)), rel=1e-9)
        assert result["stats"]["images_per_s"] == pytest.approx(batch_size * 1000 / float(times.mean()))
    assert metrics["latency/cpu/eager/bs8/mean_ms"] == pytest.approx(
        saved["cpu", "eager", 8]["stats"]["mean_ms"]
    )
    written = json.loads((run / "metrics.json").read_text())["metrics"]
    assert written["latency/cpu/eager/bs1/p90_ms"] == pytest.approx(
        saved["cpu", "eager", 1]["stats"]["p90_ms"]
    )
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert "latency/cpu/eager/bs1/images_per_s" in events.Tags()["scalars"]
    assert "latency/spread" in events.Tags()["images"]
    assert (run / "benchmark.json").is_file() and (run / "latency.png").is_file()


@pytest.mark.slow
def test_compiled_variant_agrees_with_eager() -> None:
    results = measure_latency(LeNet5(), (1, 28, 28), ["cpu"], [1, 4], ["compile"], 2, 5)
    assert all(isinstance(r, Measurement) and r.agrees for r in results)
