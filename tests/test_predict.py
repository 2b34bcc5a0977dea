"""``lightning_labs.predict``: image files in, named classes with probabilities out."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from data_files import write_mnist
from PIL import Image

from lightning_labs.checkpoints.restore import load_checkpoint
from lightning_labs.inference.predict import predict
from lightning_labs.training.run import train


def save_digit(image, path: Path) -> Path:
    """A uint8 1 x 28 x 28 digit as a grey PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image[0].numpy(), mode="L").save(path)
    return path


def test_predict_names_the_class_of_a_memorised_digit(make_cfg, tmp_path: Path) -> None:
    # 20 real digits (18 train / 2 val), no augmentation, one batch an epoch: LeNet-5 memorises them.
    root = write_mnist(tmp_path / "few", n_train=20, n_test=4)
    cfg = make_cfg(
        f"data.root={root}",
        "data.crop_padding=0",
        "data.batch_size=32",
        "trainer.max_epochs=30",
        "trainer.limit_train_batches=null",
        "trainer.limit_val_batches=null",
        "optimizer.lr=0.02",
        "logger=none",  # (the callbacks that only feed a logger are left out)
        "test=false",
        "seed=0",
    )
    metrics, objects = train(cfg)
    assert metrics["train/acc"] == 1.0  # memorised
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["global_step"] == objects["trainer"].global_step == 30  # the latest state
    train_set = objects["datamodule"].train_set
    labels = train_set.labels.tolist()
    first, other = 0, next(i for i, label in enumerate(labels) if label != labels[0])
    digit = save_digit(train_set.images[first], tmp_path / "one" / "digit.png")

    predictions = predict(
        make_cfg(
            f"ckpt_path={last}",
            f"image={digit}",
            f"paths.output_dir={tmp_path / 'predict'}",
            config_name="predict",
        )
    )
    assert len(predictions) == 1 and predictions[0]["image"] == str(digit)
    top = predictions[0]["top"]
    assert top[0]["index"] == labels[first]
    assert top[0]["class"].startswith(f"{labels[first]} - ")  # MNIST's names, e.g. "3 - three"
    assert len(top) == 5 and top[0]["probability"] > 0.5
    assert all(a["probability"] >= b["probability"] for a, b in pairwise(top))
    written = json.loads((tmp_path / "predict" / "predictions.json").read_text())
    assert written["predictions"] == predictions and written["topk"] == 5

    # A folder: every image in it, sorted by name; topk larger than the class count is capped.
    folder = tmp_path / "folder"
    save_digit(train_set.images[other], folder / "b.png")
    save_digit(train_set.images[first], folder / "a.png")
    (folder / "notes.txt").write_text("not an image, and not picked up from a folder")
    predict(
        make_cfg(
            f"ckpt_path={last}",
            f"image={folder}",
            "topk=50",
            f"paths.output_dir={tmp_path / 'predict_folder'}",
            config_name="predict",
        )
    )
    written = json.loads((tmp_path / "predict_folder" / "predictions.json").read_text())
    entries = written["predictions"]
    assert [Path(e["image"]).name for e in entries] == ["a.png", "b.png"]
    assert [e["top"][0]["index"] for e in entries] == [labels[first], labels[other]]
    assert written["topk"] == 10 and all(len(e["top"]) == 10 for e in entries)
    assert all(sum(t["probability"] for t in e["top"]) == pytest.approx(1.0, abs=1e-5) for e in entries)


@pytest.fixture
def checkpoint(make_cfg) -> Path:
    cfg = make_cfg("test=false")
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"


def test_a_file_that_is_not_an_image_or_a_missing_path_is_named(
    make_cfg, checkpoint: Path, tmp_path: Path
) -> None:
    fake = tmp_path / "scan.png"
    fake.write_text("this is text, not a PNG")
    with pytest.raises(ValueError, match=r"Could not read .*scan\.png as an image"):
        predict(make_cfg(f"ckpt_path={checkpoint}", f"image={fake}", config_name="predict"))
    cut = tmp_path / "cut.png"
    Image.effect_noise((28, 28), 64).save(cut)
    cut.write_bytes(cut.read_bytes()[:400])  # a download that stopped early
    with pytest.raises(ValueError, match=r"Could not read .*cut\.png as an image"):
        predict(make_cfg(f"ckpt_path={checkpoint}", f"image={cut}", config_name="predict"))
    with pytest.raises(FileNotFoundError, match=r"No image file or folder at .*nowhere\.png"):
        predict(
            make_cfg(f"ckpt_path={checkpoint}", f"image={tmp_path / 'nowhere.png'}", config_name="predict")
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"No image files in the folder .*empty"):
        predict(make_cfg(f"ckpt_path={checkpoint}", f"image={tmp_path / 'empty'}", config_name="predict"))


def test_pictures_unlike_the_training_images_are_converted_and_said_once(
    make_cfg, checkpoint: Path, tmp_path: Path, caplog
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.new("RGB", (40, 30), color=(200, 10, 10)).save(folder / "photo_a.png")
    Image.new("RGB", (40, 30), color=(10, 200, 10)).save(folder / "photo_b.png")
    Image.new("L", (28, 28), color=40).save(folder / "digit.png")  # as in training: not converted
    with caplog.at_level(logging.WARNING):
        predictions = predict(make_cfg(f"ckpt_path={checkpoint}", f"image={folder}", config_name="predict"))
    assert len(predictions) == 3
    said = [record.getMessage() for record in caplog.records if "Converted" in record.getMessage()]
    assert said == ["Converted 2 image(s) from RGB 40x30 (x2) to grey 28x28 to match training (1x28x28)"]


def test_command_line_predict_prints_a_table_per_image(checkpoint: Path, tmp_path: Path) -> None:
    image = tmp_path / "grey.png"
    Image.new("L", (28, 28), color=40).save(image)
    command = [
        sys.executable,
        "-m",
        "lightning_labs.predict",
        f"ckpt_path={checkpoint}",
        f"image={image}",
        "topk=3",
        f"hydra.run.dir={tmp_path / 'cli'}",
    ]
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stderr[-3000:]
    written = json.loads((tmp_path / "cli" / "predictions.json").read_text())
    top = written["predictions"][0]["top"]
    assert len(top) == 3
    # The same CSV as split=... writes: the top class, its probability, and no label to compare with.
    with (tmp_path / "cli" / "predictions.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows == [
        {
            "index": "0",
            "image": str(image),
            "predicted": top[0]["class"],
            "probability": str(top[0]["probability"]),
            "label": "",
            "correct": "",
        }
    ]
    # The image's own line (not the config's image=... or a log line), then its table, row by row.
    lines = result.stdout.splitlines()
    assert lines.count(str(image)) == 1
    table = lines[lines.index(str(image)) + 1 :]
    assert [cell.strip() for cell in table[1].strip("┃").split("┃")] == ["#", "class", "probability"]
    rows = [[cell.strip() for cell in line.strip("│").split("│")] for line in table if line.startswith("│")]
    assert rows == [
        [str(rank), entry["class"], f"{entry['probability']:.4f}"] for rank, entry in enumerate(top, start=1)
    ]
