"""model.compile=true: training steps through torch.compile, checkpoints of the plain network.

On the CPU the tests use ``model.compile_backend=aot_eager``: TorchDynamo captures the graphs and
AOTAutograd splits forward and backward as with inductor, without inductor's C++ code generation
(which works here too, but takes about 40 s for a first small network on 2 cores).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightning_labs.checkpoints.restore import load_checkpoint
from lightning_labs.inference.evaluate import evaluate
from lightning_labs.inference.predict import predict_split
from lightning_labs.training.run import build, train


def test_a_compiled_run_saves_the_plain_networks_checkpoint_which_eval_and_predict_load(
    make_cfg, tmp_path: Path
) -> None:
    plain = make_cfg("logger=none", "test=false", f"paths.output_dir={tmp_path / 'plain'}")
    train(plain)
    cfg = make_cfg(
        "model.compile=true",
        "model.compile_backend=aot_eager",
        "trainer.limit_test_batches=null",  # the whole test split, as eval reads it
        "logger=none",
        f"paths.output_dir={tmp_path / 'compiled'}",
    )
    metrics, objects = train(cfg)
    model = objects["model"]
    assert model._compiled_net is not None  # the training steps ran through torch.compile
    assert model._compiled_net._orig_mod is model.net
    assert all("_compiled" not in name for name, _ in model.named_modules())

    compiled = load_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt")
    reference = load_checkpoint(Path(plain.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert list(compiled["state_dict"]) == list(reference["state_dict"])
    assert not any("_orig_mod" in key for key in compiled["state_dict"])
    assert compiled["hyper_parameters"]["compile"] is True

    best = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    evaluated = evaluate(
        make_cfg(f"ckpt_path={best}", f"paths.output_dir={tmp_path / 'eval'}", config_name="eval")
    )
    assert evaluated["test/acc"] == pytest.approx(metrics["test/acc"])  # the same weights, the same test
    samples = predict_split(
        make_cfg(
            f"ckpt_path={best}",
            "split=test",
            "count=4",
            f"paths.output_dir={tmp_path / 'predict'}",
            config_name="predict",
        )
    )
    assert len(samples.samples) == 4


def test_an_unknown_compile_backend_is_refused_before_training(make_cfg) -> None:
    with pytest.raises(ValueError, match=r"model.compile_backend='nope' is not a torch.compile backend"):
        build(make_cfg("model.compile=true", "model.compile_backend=nope"))


def test_model_compile_must_be_true_or_false(make_cfg) -> None:
    with pytest.raises(ValueError, match=r"model.compile='yes' \(must be true or false\)"):
        build(make_cfg("model.compile=yes"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_training_on_a_gpu_learns(make_cfg) -> None:
    cfg = make_cfg(
        "trainer=gpu",
        "trainer.precision=bf16-mixed",
        "model.compile=true",  # inductor, the default backend
        "trainer.limit_train_batches=15",
        "trainer.max_epochs=2",
        "trainer.limit_test_batches=null",
    )
    metrics, objects = train(cfg)
    assert objects["model"]._compiled_net is not None
    assert metrics["test/acc"] > 0.6
