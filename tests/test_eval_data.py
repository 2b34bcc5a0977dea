"""eval, export and benchmark start from the checkpoint's data config and change only what is given.

One image-folder run trained at 32 px (the recipe's default is 224) is evaluated, exported and
benchmarked with ``data=``/``data.*`` as typed on a command line.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import FAST
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from lightning_labs.checkpoints.data_config import build_data, merged_data_config
from lightning_labs.checkpoints.restore import data_from_checkpoint, load_checkpoint
from lightning_labs.inference.benchmark import network_to_time
from lightning_labs.inference.evaluate import evaluate
from lightning_labs.inference.export import export
from lightning_labs.runtime.config import config_path
from lightning_labs.training.run import train

SMALL = ["data.image_size=32", "data.resize_size=36"]
QUICK_EVAL = ["trainer=cpu", "trainer.enable_progress_bar=false", "trainer.limit_test_batches=null"]


@contextmanager
def command_line(config_name: str, *overrides: str) -> Iterator[DictConfig]:
    """The config of ``python -m lightning_labs.<config_name> <overrides>``, inside its Hydra job.

    As on a command line, the job knows which overrides were typed (``HydraConfig``), which is
    how a typed ``data.root`` is told from a dataset file's defaults.
    """
    with initialize_config_dir(config_path(), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    try:
        yield cfg
    finally:
        HydraConfig.instance().cfg = None


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> dict[str, Path]:
    """best.ckpt of a CNN (global pooling: any image size runs) trained on image folders at 32 px."""
    run = tmp_path_factory.mktemp("folder_run")
    root = data_root / "imagenet"
    with initialize_config_dir(config_path(), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"paths.output_dir={run}",
                f"paths.data_dir={data_root}",
                *FAST,
                "data=folder",
                f"data.root={root}",
                *SMALL,
                "data.num_workers=0",
                "data.batch_size=16",
                "model=cnn",
                "model.net.global_pool=true",
                "test=false",
                "logger=none",
            ],
        )
    train(cfg)
    return {"ckpt": run / "checkpoints" / "best.ckpt", "root": root, "data_dir": data_root}


def eval_overrides(folder_run: dict[str, Path], out: Path, *data: str) -> list[str]:
    return [
        f"ckpt_path={folder_run['ckpt']}",
        f"paths.data_dir={folder_run['data_dir']}",
        f"paths.output_dir={out}",
        *QUICK_EVAL,
        *data,
    ]


@pytest.fixture(scope="module")
def plain_eval(folder_run: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """The test metrics with the checkpoint's own data config, nothing given."""
    with command_line("eval", *eval_overrides(folder_run, tmp_path_factory.mktemp("plain"))) as cfg:
        return evaluate(cfg)


def test_data_root_alone_changes_only_the_root(folder_run, plain_eval, tmp_path: Path, caplog) -> None:
    overrides = eval_overrides(folder_run, tmp_path, f"data.root={folder_run['root']}", "data.batch_size=5")
    with command_line("eval", *overrides) as cfg, caplog.at_level(logging.INFO):
        assert dict(cfg.data) == {"root": str(folder_run["root"]), "batch_size": 5}  # Hydra accepts data.*
        assert evaluate(cfg) == pytest.approx(plain_eval, abs=1e-6)
    assert "prepared otherwise" not in caplog.text


def test_naming_the_checkpoints_own_dataset_keeps_its_image_size(
    folder_run, plain_eval, tmp_path: Path, caplog
) -> None:
    overrides = eval_overrides(folder_run, tmp_path, "data=folder", f"data.root={folder_run['root']}")
    with command_line("eval", *overrides) as cfg, caplog.at_level(logging.INFO):
        assert cfg.data.image_size == 224  # the file's default, which the network never saw
        assert evaluate(cfg) == pytest.approx(plain_eval, abs=1e-6)
        datamodule = data_from_checkpoint(load_checkpoint(folder_run["ckpt"]), dict(cfg.data), {"root"})
    assert datamodule.input_shape == (3, 32, 32)
    assert [list(t.size) for t in datamodule.test_transform.transforms[:2]] == [[36], [32, 32]]
    assert "prepared otherwise" not in caplog.text


def test_another_dataset_keeps_the_trained_preprocessing_and_says_so(
    folder_run, plain_eval, tmp_path: Path, caplog
) -> None:
    # data=imagenet is another dataset (name) at ${paths.data_dir}/imagenet: the same files here.
    overrides = eval_overrides(folder_run, tmp_path, "data=imagenet", "data.num_workers=0")
    with command_line("eval", *overrides) as cfg, caplog.at_level(logging.INFO):
        assert evaluate(cfg) == pytest.approx(plain_eval, abs=1e-6)
    assert (
        "data: lightning_labs.data.FolderData imagenet is another dataset than the checkpoint's "
        "(lightning_labs.data.FolderData folder); keeping the preprocessing the network was trained "
        "with: data.image_size=32, data.resize_size=36"
    ) in caplog.text


def test_a_size_unlike_training_is_used_as_asked_and_logged(folder_run, caplog) -> None:
    checkpoint = load_checkpoint(folder_run["ckpt"])
    with caplog.at_level(logging.WARNING):
        datamodule = data_from_checkpoint(checkpoint, {"image_size": 48, "resize_size": 56}, None)
    assert datamodule.input_shape == (3, 48, 48)
    assert (
        "Images are prepared otherwise than in training: data.image_size 32 -> 48; "
        "data.resize_size 36 -> 56; input 3x32x32 -> 3x48x48."
    ) in caplog.text


def test_export_and_benchmark_take_the_input_of_the_changed_data(folder_run, tmp_path: Path, caplog) -> None:
    base = [f"ckpt_path={folder_run['ckpt']}", f"paths.output_dir={tmp_path}"]
    larger = ["format=state_dict", "data.image_size=48", "data.resize_size=56"]
    with command_line("export", *base, *larger) as cfg, caplog.at_level(logging.WARNING):
        summary = export(cfg)
    assert summary["inputs"] == {"images": ["batch", 3, 48, 48]}
    assert "input 3x32x32 -> 3x48x48" in caplog.text
    with command_line("export", *base, "format=state_dict") as cfg:
        assert export(cfg)["inputs"] == {"images": ["batch", 3, 32, 32]}

    # benchmark's data default (MNIST) is for networks built from a config, not the checkpoint's.
    with command_line("benchmark", *base) as cfg:
        assert network_to_time(cfg)[1] == [3, 32, 32]
    with command_line("benchmark", *base, "data.image_size=64", "data.resize_size=64") as cfg:
        assert network_to_time(cfg)[1] == [3, 64, 64]


def test_changes_to_a_checkpoint_without_its_data_name_the_way_out() -> None:
    with pytest.raises(ValueError, match=r"does not record its data: name it with data=<name>"):
        merged_data_config(None, {"root": "/data/flowers"}, {"root"})


def test_command_line_eval_with_data_folder_uses_the_trained_size(
    folder_run, plain_eval, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "lightning_labs.eval",
        f"ckpt_path={folder_run['ckpt']}",
        "data=folder",
        f"data.root={folder_run['root']}",
        *QUICK_EVAL,
        f"hydra.run.dir={tmp_path / 'cli'}",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=180, env=os.environ, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    written = json.loads((tmp_path / "cli" / "eval.json").read_text())
    assert written["metrics"] == pytest.approx(plain_eval, abs=1e-6)
    assert "prepared otherwise" not in (tmp_path / "cli" / "eval.log").read_text()


def test_a_mistyped_data_setting_is_named_with_the_settings_there_are() -> None:
    config = {"_target_": "lightning_labs.data.SyntheticData", "num_classes": 3, "imagesize": 3}
    expected = r"data\.imagesize is not a setting of .*SyntheticData.*: num_classes\.$"
    with pytest.raises(ValueError, match=expected):
        build_data(config)
