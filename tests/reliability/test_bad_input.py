"""Each kind of bad input ends the command with one clear message and a non-zero exit status."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from cli import QUICK, run_tool
from data_files import write_cifar10, write_image_folder
from omegaconf import OmegaConf

from lightning_labs.inference.evaluate import evaluate
from lightning_labs.runtime.errors import clear_errors
from lightning_labs.training.run import train


@pytest.fixture(scope="module")
def cifar10_checkpoint(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LeNet-5 checkpoint trained for a few steps on CIFAR-10 (10 classes)."""
    from hydra import compose, initialize_config_dir

    from lightning_labs.runtime.config import config_path

    out = tmp_path_factory.mktemp("cifar10-run")
    overrides = [
        *QUICK,
        f"paths.data_dir={data_root}",
        f"paths.output_dir={out}",
        "trainer.max_epochs=1",
        "data=cifar10",
    ]
    overrides += ["trainer.limit_train_batches=3", "trainer.limit_val_batches=1", "test=false"]
    with initialize_config_dir(config_path(), version_base="1.3"):
        train(compose("train", overrides=overrides))
    return out / "checkpoints" / "best.ckpt"


def copy_mnist(data_root: Path, to: Path, keep: Callable[[str], bool] = lambda name: True) -> Path:
    (to / "MNIST" / "raw").mkdir(parents=True)
    for file in (data_root / "MNIST" / "raw").iterdir():
        if keep(file.name):
            shutil.copy(file, to / "MNIST" / "raw" / file.name)
    return to


def truncated_mnist(data_root: Path, tmp: Path) -> list[str]:
    root = copy_mnist(data_root, tmp / "cut")
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])
    return [f"data.root={root}"]


def corrupt_cifar(data_root: Path, tmp: Path) -> list[str]:
    write_cifar10(tmp)
    (tmp / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"\x80\x04 not a pickle")
    return ["data=cifar10", f"data.root={tmp}"]


def corrupt_jpeg(data_root: Path, tmp: Path) -> list[str]:
    classes = write_image_folder(tmp / "folder", classes=2, per_class=4, size=32)
    bad = sorted((tmp / "folder" / "train" / classes[0]).iterdir())[0]
    bad.write_bytes(bad.read_bytes()[:200])  # a download cut short
    return [
        "data=folder",
        f"data.root={tmp / 'folder'}",
        "data.image_size=32",
        "data.resize_size=32",
        "data.num_workers=0",
        "data.batch_size=4",
        "model=cnn",
    ]


def unwritable_output(data_root: Path, tmp: Path) -> list[str]:
    (tmp / "a-file").write_text("not a folder")
    return [f"hydra.run.dir={tmp / 'a-file' / 'run'}"]


Make = list[str] | Callable[[Path, Path], list[str]]

# (case, tool, overrides or a function making the bad input in a temporary folder, message).
# From the command line: what Hydra and the config checks refuse before torch loads (about a
# second each), and one case found in the files, for the whole path to one message and exit 1.
CLI_CASES: list[tuple[str, str, Make, str]] = [
    ("unknown model", "train", ["model=resnet9"], "Could not find 'model/resnet9'"),
    ("unknown trainer", "train", ["trainer=tpu"], "Could not find 'trainer/tpu'"),
    (
        "negative batch size",
        "train",
        ["data.batch_size=-8"],
        "data.batch_size=-8 (must be a whole number, at least 1)",
    ),
    (
        "batch size of the wrong type",
        "train",
        ["data.batch_size=big"],
        "data.batch_size='big' (must be a whole number",
    ),
    ("learning rate 0", "train", ["optimizer.lr=0"], "optimizer.lr=0 (must be a number above 0)"),
    ("zero epochs", "train", ["trainer.max_epochs=0"], "trainer.max_epochs=0 (must be at least 1)"),
    ("output folder that cannot be made", "train", unwritable_output, "a-file"),
    ("missing data folder", "train", lambda d, t: [f"data.root={t / 'nowhere'}"], "No MNIST found at"),
    (
        "unreadable checkpoint",
        "eval",
        lambda d, t: (t / "x.ckpt").write_bytes(b"junk") and [f"ckpt_path={t / 'x.ckpt'}"],
        "not a complete PyTorch file",
    ),
]

# In-process (the same library code, without paying torch's import per case): bad files and
# networks that do not fit, found when the data or the model is built.
IN_PROCESS_CASES: list[tuple[str, str, Make, str]] = [
    ("empty data folder", "train", lambda d, t: [f"data.root={t}"], "No MNIST found at"),
    (
        "partly downloaded data",
        "train",
        lambda d, t: [f"data.root={copy_mnist(d, t, lambda name: name.startswith('train'))}"],
        "t10k-images-idx3-ubyte",
    ),
    ("truncated IDX file", "train", truncated_mnist, "truncated or corrupt"),
    ("corrupt CIFAR pickle", "train", corrupt_cifar, "data_batch_2"),
    ("corrupt JPEG", "train", corrupt_jpeg, "Could not read the image"),
    (
        "image channels the model cannot take",
        "train",
        ["model=vgg11", "+model.net.in_channels=3"],
        "expecting 3 input channels",
    ),
    ("missing checkpoint", "eval", lambda d, t: [f"ckpt_path={t / 'gone.ckpt'}"], "No file at"),
    (
        "every layer frozen",
        "train",
        ["model.freeze=[*]"],
        "model.freeze=['*'] freezes every parameter of the network: nothing is left to train. Freeze "
        "fewer layers (leave out at least the last one, classifier.2); to train the frozen layers too "
        "after a few epochs, add model.unfreeze_at_epoch=N.",
    ),
]


@pytest.mark.parametrize("case, tool, make, message", CLI_CASES, ids=[case[0] for case in CLI_CASES])
def test_bad_input_gets_one_clear_message(
    case: str, tool: str, make: Make, message: str, data_root: Path, tmp_path: Path
) -> None:
    overrides = make(data_root, tmp_path) if callable(make) else make
    paths = [f"paths.data_dir={data_root}", f"paths.log_dir={tmp_path / 'outputs'}"]
    quick = [*QUICK, "trainer.max_epochs=1", "trainer.limit_train_batches=2"] if tool == "train" else []
    result = run_tool(tool, "trainer=cpu", *paths, *quick, *overrides)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    output = " ".join((result.stdout + result.stderr).split())  # as one line: rich wraps long messages
    assert message in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert not list((tmp_path / "outputs").rglob("*.ckpt"))  # refused before training


@pytest.mark.parametrize("case, tool, make, message", IN_PROCESS_CASES, ids=[c[0] for c in IN_PROCESS_CASES])
def test_bad_files_are_refused_before_training_naming_them(
    case: str, tool: str, make: Make, message: str, data_root: Path, tmp_path: Path, make_cfg
) -> None:
    overrides = make(data_root, tmp_path) if callable(make) else make
    if tool == "train":
        with pytest.raises(Exception) as refused:  # each case its own type: the message counts
            train(make_cfg(*overrides))
    else:
        with pytest.raises(Exception) as refused:
            evaluate(make_cfg(*overrides, config_name="eval"))
    assert message in str(refused.value)
    assert not list(tmp_path.rglob("*.ckpt"))  # refused before training


def test_a_checkpoint_for_other_data_names_both_class_counts(
    cifar10_checkpoint: Path, data_root: Path, tmp_path: Path
) -> None:
    result = run_tool(
        "eval",
        "trainer=cpu",
        f"paths.data_dir={data_root}",
        f"paths.log_dir={tmp_path}",
        f"ckpt_path={cifar10_checkpoint}",
        "data=cifar100",
    )
    assert result.returncode == 1
    output = " ".join((result.stdout + result.stderr).split())
    assert "outputs shape (10,) per image, but the data has 100 classes" in output, output[-2000:]
    assert "Traceback" not in output


def test_a_checkpoint_of_another_model_is_refused(
    cifar10_checkpoint: Path, data_root: Path, tmp_path: Path
) -> None:
    result = run_tool(
        "train",
        *QUICK,
        f"paths.data_dir={data_root}",
        f"paths.log_dir={tmp_path}",
        f"ckpt_path={cifar10_checkpoint}",
        "model=cnn",
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "lenet5" in (result.stderr + result.stdout).lower()


def test_an_error_message_is_plain_text(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """torch.load's weights_only refusal carries terminal bold codes: the message shows none."""
    torch.save({"function": print}, tmp_path / "pickled.pth")  # not an allowed type for weights_only
    failing = clear_errors(lambda cfg: torch.load(tmp_path / "pickled.pth", weights_only=True))
    with pytest.raises(SystemExit):
        failing(OmegaConf.create())
    message = caplog.records[0].getMessage()
    assert message.startswith("UnpicklingError: Weights only load failed.")
    assert "do those steps only if you trust the source of the checkpoint." in message
    assert "\x1b" not in message and "[1m" not in message and "[0m" not in message


def test_the_full_traceback_is_in_the_log_file_and_on_request(data_root: Path, tmp_path: Path) -> None:
    overrides = [*QUICK, f"paths.data_dir={data_root}", "optimizer.lr=-1"]
    quiet = run_tool("train", *overrides, f"hydra.run.dir={tmp_path / 'quiet'}")
    assert "Traceback" not in quiet.stdout + quiet.stderr
    assert "Traceback" in (tmp_path / "quiet" / "train.log").read_text()
    full = run_tool("train", *overrides, f"hydra.run.dir={tmp_path / 'full'}", HYDRA_FULL_ERROR="1")
    assert full.returncode == 1 and "Traceback" in full.stderr
