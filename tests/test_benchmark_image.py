"""``benchmark image=PATH``: one real image, prepared as ``predict`` does, timed stage by stage."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from conftest import FAST
from data_files import read_idx
from hydra import compose, initialize_config_dir
from PIL import Image

from lightning_labs.data.mnist import BUNDLED_SAMPLE
from lightning_labs.inference.benchmark import benchmark
from lightning_labs.inference.predict import predict
from lightning_labs.runtime.config import config_path
from lightning_labs.training.run import train

TIMED = ["devices=[cpu]", "variants=[eager]", "warmup=1", "iterations=7"]


@pytest.fixture(scope="module")
def checkpoint(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """best.ckpt of LeNet-5 after a few steps on real MNIST digits, shared by this module's tests."""
    run = tmp_path_factory.mktemp("trained")
    overrides = [f"paths.output_dir={run}", f"paths.data_dir={data_root}", *FAST, "test=false"]
    with initialize_config_dir(config_path(), version_base="1.3"):
        train(compose("train", overrides=overrides))
    return run / "checkpoints" / "best.ckpt"


@pytest.fixture(scope="module")
def digit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first test digit of the bundled MNIST sample, as a grey 28x28 PNG."""
    path = tmp_path_factory.mktemp("images") / "digit.png"
    Image.fromarray(read_idx(BUNDLED_SAMPLE / "MNIST" / "raw" / "t10k-images-idx3-ubyte")[0], mode="L").save(
        path
    )
    return path


def test_a_real_digit_is_prepared_timed_and_classified_as_predict_does(
    checkpoint: Path, digit: Path, make_cfg, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "bench"
    cfg = make_cfg(
        f"ckpt_path={checkpoint}",
        f"image={digit}",
        f"paths.output_dir={out}",
        *TIMED,
        config_name="benchmark",
    )
    [measured] = benchmark(cfg)
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps to the terminal's width
    assert (measured.device, measured.variant, measured.batch_size) == ("cpu", "eager", 1)

    saved = json.loads((out / "benchmark.json").read_text())
    image = saved["image"]
    assert (
        saved["input_shape"] == [1, 28, 28]
        and image["file"] == str(digit)
        and image["picture"] == "grey 28x28"
    )
    preprocess = image["preprocess"]
    times = torch.tensor(preprocess["times_ms"], dtype=torch.float64)
    assert preprocess["device"] == "cpu" and len(times) == 7 and times.min() > 0
    assert preprocess["stats"]["mean_ms"] == pytest.approx(float(times.mean()), rel=1e-9)
    assert preprocess["stats"]["p90_ms"] == pytest.approx(float(times.quantile(0.9)), rel=1e-9)
    assert image["copy_to_device"] == {}  # the CPU needs no copy
    [total] = image["totals_ms"]
    assert total["inference_ms"] == pytest.approx(saved["results"][0]["stats"]["mean_ms"])
    assert total["preprocess_ms"] == pytest.approx(preprocess["stats"]["mean_ms"]) and total["copy_ms"] == 0
    assert total["total_ms"] == pytest.approx(total["preprocess_ms"] + total["inference_ms"])

    # The timed image is the one predict classifies: same class, same probability.
    predict_cfg = make_cfg(
        f"ckpt_path={checkpoint}",
        f"image={digit}",
        f"paths.output_dir={tmp_path / 'p'}",
        config_name="predict",
    )
    top = predict(predict_cfg)[0]["top"][0]
    predicted = image["predicted"]
    assert (predicted["class"], predicted["index"]) == (top["class"], top["index"])
    assert predicted["probability"] == pytest.approx(top["probability"], rel=1e-6)
    assert f"{top['class']} (index {top['index']}, probability {top['probability']:.4f})" in printed
    assert "Predicted class of" in printed
    assert f"read + transform │ cpu │ {preprocess['stats']['mean_ms']:.3f}" in printed
    assert f"{total['inference_ms']:.3f} │ {total['total_ms']:.3f}" in printed


def test_without_a_checkpoint_the_data_config_prepares_the_image(
    digit: Path, make_cfg, tmp_path: Path, caplog
) -> None:
    cfg = make_cfg(
        f"image={digit}", "data=cifar10", f"paths.output_dir={tmp_path}", *TIMED, config_name="benchmark"
    )
    with caplog.at_level(logging.WARNING):
        benchmark(cfg)
    saved = json.loads((tmp_path / "benchmark.json").read_text())
    assert saved["input_shape"] == [3, 32, 32]  # CIFAR-10's evaluation transform, not the digit's size
    said = [r.getMessage() for r in caplog.records if "Converted" in r.getMessage()]
    assert said == ["Converted 1 image(s) from grey 28x28 to RGB 32x32 to match training (3x32x32)"]
    predicted = saved["image"]["predicted"]  # random weights; class names come with CIFAR's files
    assert predicted["class"] == str(predicted["index"]) and 0 <= predicted["index"] < 10


def test_a_folder_a_missing_file_or_input_shape_next_to_image_is_refused(digit: Path, make_cfg) -> None:
    with pytest.raises(ValueError, match=r"image= takes one image file, and .*images\d* is a folder"):
        benchmark(make_cfg(f"image={digit.parent}", config_name="benchmark"))
    with pytest.raises(FileNotFoundError, match=r"No image file or folder at .*nowhere\.png"):
        benchmark(make_cfg(f"image={digit.parent / 'nowhere.png'}", config_name="benchmark"))
    with pytest.raises(ValueError, match=r"image= and input_shape= both set the input.*drop input_shape="):
        benchmark(make_cfg(f"image={digit}", "input_shape=[1,32,32]", config_name="benchmark"))
