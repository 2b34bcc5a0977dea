"""What ``eval`` and ``predict split=...`` write and print, checked against the real digits' own labels.

One LeNet-5, trained for a few batches on real MNIST digits (so it still gets some wrong), is
evaluated and sampled; every number is recomputed here from the IDX files, independently of
the package's data and metrics code.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest
import torch
from conftest import FAST
from hydra import compose, initialize_config_dir
from PIL import Image
from torchvision.datasets import MNIST

from lightning_labs.checkpoints.restore import load_checkpoint, model_from_checkpoint
from lightning_labs.inference.evaluate import print_class_scores, run_evaluation
from lightning_labs.inference.predict import draw_indices, predict, predict_split, print_split_predictions
from lightning_labs.runtime.config import config_path
from lightning_labs.training.run import train

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # conf/data/mnist.yaml, as trained


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> dict[str, Path]:
    """last.ckpt of a briefly trained LeNet-5 on the real digits of ``data_root``."""
    out = tmp_path_factory.mktemp("trained")
    with initialize_config_dir(config_path(), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"paths.output_dir={out}",
                f"paths.data_dir={data_root}",
                *FAST,
                "test=false",
                "logger=none",
            ],
        )
    train(cfg)
    return {"ckpt": out / "checkpoints" / "last.ckpt", "data_dir": data_root}


def compose_in(config_name: str, run: dict[str, Path], out: Path, *overrides: str):
    with initialize_config_dir(config_path(), version_base="1.3"):
        return compose(
            config_name,
            overrides=[
                f"ckpt_path={run['ckpt']}",
                f"paths.output_dir={out}",
                f"paths.data_dir={run['data_dir']}",
                *overrides,
            ],
        )


def reference(run: dict[str, Path]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The test digits' true labels, and the network's predictions and probabilities, computed here."""
    digits = MNIST(str(run["data_dir"]), train=False)
    net = model_from_checkpoint(load_checkpoint(run["ckpt"])).net.eval()
    inputs = (digits.data.unsqueeze(1).float() / 255 - MNIST_MEAN) / MNIST_STD
    with torch.no_grad():
        probabilities = net(inputs).softmax(dim=1)
    return digits.targets, probabilities.argmax(dim=1), probabilities.max(dim=1).values


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_eval_writes_the_accuracy_of_each_true_class_and_the_confusion_matrix(
    run: dict[str, Path], tmp_path: Path, capsys, caplog
) -> None:
    labels, predicted, _ = reference(run)
    assert len(labels) == 300  # the test split of data_root
    cfg = compose_in("eval", run, tmp_path, "trainer=cpu", "trainer.enable_progress_bar=false")
    with caplog.at_level(logging.INFO):
        evaluation = run_evaluation(cfg)

    rows = read_csv(tmp_path / "per_class_accuracy.csv")
    assert [row["class"] for row in rows] == MNIST.classes
    images = [int(row["images"]) for row in rows]
    correct = [int(row["correct"]) for row in rows]
    assert images == torch.bincount(labels, minlength=10).tolist() and sum(images) == 300
    assert correct == torch.bincount(labels[predicted == labels], minlength=10).tolist()
    assert 0 < sum(correct) < 300  # some right, some wrong: the columns can differ
    for row, n, k in zip(rows, images, correct, strict=True):
        assert float(row["accuracy"]) == pytest.approx(k / n, abs=1e-6)
    assert sum(correct) / 300 == pytest.approx(evaluation.metrics["test/acc"], abs=1e-6)
    assert [(c.images, c.correct) for c in evaluation.classes] == list(zip(images, correct, strict=True))
    with Image.open(tmp_path / "confusion_matrix.png") as picture:
        assert picture.format == "PNG" and min(picture.size) >= 400
    for name in ("eval.json", "per_class_accuracy.csv", "confusion_matrix.png"):
        assert f"Wrote {tmp_path / name}" in caplog.text  # where to find it
    assert evaluation.files == [
        tmp_path / name for name in ("eval.json", "per_class_accuracy.csv", "confusion_matrix.png")
    ]

    print_class_scores(evaluation.classes)
    printed = [
        [cell.strip() for cell in line.strip("│").split("│")] for line in capsys.readouterr().out.splitlines()
    ]
    assert ["", "all", "300", str(sum(correct)), f"{100 * sum(correct) / 300:.2f}%"] in printed
    assert [
        "3",
        "3 - three",
        str(images[3]),
        str(correct[3]),
        f"{100 * correct[3] / images[3]:.2f}%",
    ] in printed


def test_predict_draws_samples_of_the_test_split_and_compares_them_with_their_labels(
    run: dict[str, Path], tmp_path: Path, capsys
) -> None:
    labels, predicted, probability = reference(run)
    result = predict_split(compose_in("predict", run, tmp_path / "a", "count=20", "seed=3"))
    indices = [sample.index for sample in result.samples]
    assert len(set(indices)) == 20 and indices == sorted(indices) and indices[-1] < 300
    assert [s.label for s in result.samples] == labels[indices].tolist()
    assert [s.predicted for s in result.samples] == predicted[indices].tolist()
    assert [s.probability for s in result.samples] == pytest.approx(probability[indices].tolist(), abs=1e-5)

    rows = read_csv(tmp_path / "a" / "predictions.csv")
    assert [int(row["index"]) for row in rows] == indices
    assert [row["label"] for row in rows] == [MNIST.classes[i] for i in labels[indices]]
    assert [row["predicted"] for row in rows] == [MNIST.classes[i] for i in predicted[indices]]
    assert [row["correct"] for row in rows] == [str(bool(x)) for x in predicted[indices] == labels[indices]]
    with Image.open(tmp_path / "a" / "predictions.png") as picture:
        assert picture.size == (1600, 400)  # 2 rows of 10

    print_split_predictions(result)
    out = capsys.readouterr().out
    right = int((predicted[indices] == labels[indices]).sum())
    assert f"Accuracy on these 20 test samples: {right}/20 = {100 * right / 20:.2f}%" in out
    first = [
        cell.strip() for cell in next(line for line in out.splitlines() if line.startswith("│")).split("│")
    ]
    assert first[1:6] == [
        str(indices[0]),
        MNIST.classes[predicted[indices[0]]],
        f"{probability[indices[0]]:.4f}",
        MNIST.classes[labels[indices[0]]],
        "right" if predicted[indices[0]] == labels[indices[0]] else "wrong",
    ]

    assert (
        draw_indices(300, 20, seed=3, split="test") == indices != draw_indices(300, 20, seed=4, split="test")
    )


def test_a_count_beyond_the_split_predicts_all_of_it_and_says_so(
    run: dict[str, Path], tmp_path: Path, caplog
) -> None:
    with caplog.at_level(logging.INFO):
        result = predict_split(compose_in("predict", run, tmp_path, "split=val", "count=5000"))
    assert [s.index for s in result.samples] == list(range(120))  # val: 10% of the 1200 training digits
    assert "count=5000, but the val split holds 120 samples: predicting all of them" in caplog.text
    assert len(read_csv(tmp_path / "predictions.csv")) == 120


def test_image_and_split_together_are_refused(run: dict[str, Path], tmp_path: Path) -> None:
    cfg = compose_in("predict", run, tmp_path, "image=digit.png", "split=test")
    with pytest.raises(
        ValueError, match=r"image=digit.png and split=test were both given: .* Give one of them"
    ):
        predict(cfg)
    with pytest.raises(ValueError, match=r"split=train: choose test or val"):
        predict_split(compose_in("predict", run, tmp_path, "split=train"))
