"""Config composition: every model x data x trainer, and every optimizer x scheduler."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import hydra
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lightning_labs.models import check_net_fits_data, complete_net_config
from lightning_labs.runtime.config import CONFIG_DIR, config_path, to_plain
from lightning_labs.runtime.launch import run_stamp
from lightning_labs.training.lr_scaling import optimizer_arguments
from lightning_labs.training.module import ClassifierModule


def names(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


# custom (a network or Dataset of the user's) needs a class to build: tests/test_own_networks.py and
# tests/test_custom_data.py try those with classes of their own.
MODELS = [m for m in names("model") if m != "custom"]
DATA = [d for d in names("data") if d != "custom"]
TRAINERS = names("trainer")


def test_the_groups_hold_what_the_docs_promise() -> None:
    assert {"lenet5", "vgg11", "cnn", "custom"} <= set(names("model"))
    assert {"mnist", "cifar10", "cifar100", "synthetic", "imagenet", "folder", "custom"} <= set(names("data"))
    assert {"cpu", "gpu", "default", "ddp", "ddp_cpu"} <= set(TRAINERS)
    assert {"sgd", "adam", "adamw"} <= set(names("optimizer"))
    assert {"none", "step", "cosine", "onecycle"} <= set(names("scheduler"))


# (net config, input shape, classes) already built and run: the trainer does not change the
# network, and a 3x224x224 forward pass (data=imagenet, data=folder) is worth doing once.
FITTED: set[str] = set()


# The trainer composes independently of the model and data: every model x data with the default
# trainer, and every trainer once.
COMBINATIONS = [(m, d, "default") for m, d in itertools.product(MODELS, DATA)] + [
    ("lenet5", "mnist", t) for t in TRAINERS if t != "default"
]


@pytest.mark.parametrize("model, data, trainer", COMBINATIONS)
def test_every_model_data_trainer_combination_composes_and_fits(
    make_cfg, data_root: Path, model, data, trainer
) -> None:
    root = [f"data.root={data_root / 'imagenet'}"] if data == "folder" else []  # it has root: ???
    cfg = make_cfg(f"model={model}", f"data={data}", f"trainer={trainer}", *root, fast=False)
    plain = to_plain(cfg)  # every interpolation resolves
    assert plain["model"]["net"].get("act") == plain["model"].get("act")
    assert plain["trainer"]["default_root_dir"] == plain["paths"]["output_dir"]
    expected_accelerator = {"cpu": "cpu", "gpu": "gpu", "default": "auto", "ddp": "gpu", "ddp_cpu": "cpu"}[
        trainer
    ]
    assert plain["trainer"]["accelerator"] == expected_accelerator

    datamodule = hydra.utils.instantiate(cfg.data)
    net_cfg = complete_net_config(plain["model"]["net"], datamodule.facts)
    assert net_cfg["in_channels"] == datamodule.input_shape[0]
    assert net_cfg["num_classes"] == datamodule.num_classes
    key = repr((sorted(net_cfg.items()), datamodule.input_shape, datamodule.num_classes))
    if key not in FITTED:
        check_net_fits_data(hydra.utils.instantiate(net_cfg), datamodule.input_shape, datamodule.num_classes)
        FITTED.add(key)


@pytest.mark.parametrize("optimizer", names("optimizer"))
@pytest.mark.parametrize("scheduler", names("scheduler"))
def test_every_optimizer_scheduler_pair_builds(make_cfg, optimizer: str, scheduler: str) -> None:
    cfg = make_cfg(f"optimizer={optimizer}", f"scheduler={scheduler}")
    module = ClassifierModule(
        net={"_target_": "lightning_labs.models.LeNet5"},
        num_classes=10,
        input_shape=[1, 28, 28],
        optimizer=optimizer_arguments(cfg.optimizer),
        scheduler=to_plain(cfg.scheduler) or None,
    )
    # A fresh run's trainer, as configure_optimizers reads it (no checkpoint being resumed).
    module.trainer = SimpleNamespace(estimated_stepping_batches=100, max_epochs=10, ckpt_path=None)
    built = module.configure_optimizers()
    opt = built["optimizer"] if isinstance(built, dict) else built
    assert type(opt).__name__.lower() == optimizer
    if scheduler == "none":
        assert isinstance(built, torch.optim.Optimizer)
        return
    sched = built["lr_scheduler"]
    assert sched["interval"] == OmegaConf.select(cfg, "scheduler.interval")
    lrs = []
    for _ in range(100 if sched["interval"] == "step" else 10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched["scheduler"].step()
    peak = cfg.optimizer.lr
    if scheduler == "onecycle":  # 0 -> peak at 30% -> 0, piecewise linear
        top = lrs.index(max(lrs))
        assert top == 29 and lrs[top] == pytest.approx(peak)  # OneCycleLR peaks at step 0.3 * 100 - 1
        assert lrs[0] == pytest.approx(peak / 1e4)  # div_factor
        assert lrs[-1] == pytest.approx(peak / 1e4 / 1e4)  # then final_div_factor, at the last step
        assert lrs[15] == pytest.approx(peak * 15 / 29, rel=0.01)  # linear rise
        assert lrs[64] == pytest.approx(peak / 2, rel=0.02)  # linear fall
    elif scheduler == "cosine":
        assert lrs[0] == pytest.approx(peak) and lrs[50] == pytest.approx(peak / 2, rel=0.02)
    elif scheduler == "step":
        assert lrs[4] == pytest.approx(peak) and lrs[5] == pytest.approx(peak * 0.2)


def test_run_directories_are_named_to_the_microsecond(monkeypatch) -> None:
    """Jobs started in the same second must not share a directory."""
    for name in ("TORCHELASTIC_RUN_ID", "SLURM_NTASKS"):  # no launcher: a single-process run
        monkeypatch.delenv(name, raising=False)
    with initialize_config_dir(config_path(), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    for key in ("hydra.run.dir", "hydra.sweep.dir"):
        raw = OmegaConf.to_container(OmegaConf.select(cfg, key.rsplit(".", 1)[0]), resolve=False)
        assert raw[key.rsplit(".", 1)[1]].endswith("${run_stamp:}")
    before = datetime.now()
    stamp = run_stamp()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d\.\d{6}", stamp), stamp  # to the microsecond
    assert before <= datetime.strptime(stamp, "%Y-%m-%d/%H-%M-%S.%f") <= datetime.now()


HYDRA_COMMANDS = ("train", "eval", "predict", "export", "inspect", "benchmark")


def test_a_mistyped_command_is_refused_before_torch_and_lightning_load(tmp_path: Path) -> None:
    """What runs before a command's own code (the command modules, Hydra's callbacks and logging
    set-up, the resolvers) imports neither torch nor Lightning, which take about 5 s: a wrong
    option or value is refused in about a second."""
    modules = [f"lightning_labs.{name}" for name in HYDRA_COMMANDS]
    modules += ["lightning_labs.runtime.output_folder", "lightning_labs.runtime.logs"]
    probe = (
        f"import sys, {', '.join(modules)}; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning', 'torchvision'}))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
    command = ["-m", "lightning_labs.train", "model=resnet9", f"hydra.run.dir={tmp_path}"]
    refused = subprocess.run([sys.executable, "-X", "importtime", *command], capture_output=True, text=True)
    assert refused.returncode == 1
    assert "Could not find 'model/resnet9'" in refused.stderr
    assert not re.search(r"\|\s+(torch|lightning)\n", refused.stderr)  # -X importtime lists each module
