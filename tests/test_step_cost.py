"""The training step's own cost: no device synchronisation per step, and the deferred NaN check
still names the first bad step and saves nothing trained after it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch import callbacks

from lightning_labs.callbacks import ModelCheckpoint, SkipIdleBatchHooks
from lightning_labs.training.module import ClassifierModule, NonFiniteLossError, _metrics
from lightning_labs.training.run import build, train

# Tensor methods that read a value back to the host: on a GPU, each waits for the queued kernels.
SYNCS = ("item", "tolist", "nonzero", "__bool__", "__float__", "__int__")


class NaNAtStep(L.Callback):
    """Turn the images of the batch at optimizer step ``step`` into NaN."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: object, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            batch[0].fill_(float("nan"))


def short_run(make_cfg, *extra: str):
    return make_cfg(
        "trainer.limit_train_batches=12",
        "trainer.limit_val_batches=0",
        "test=false",
        "logger=none",
        *extra,
    )


def count_syncs_per_step(monkeypatch: pytest.MonkeyPatch) -> Counter[int]:
    """Count the host reads made inside ``training_step``, by the optimizer step they happen in."""
    reads: Counter[int] = Counter()
    inside: list[int] = []
    step_fn = ClassifierModule.training_step

    def training_step(self, batch, batch_idx):
        inside.append(self.trainer.global_step)
        try:
            return step_fn(self, batch, batch_idx)
        finally:
            inside.pop()

    def counted(name: str):
        original = getattr(torch.Tensor, name)

        def read(tensor, *args, **kwargs):
            if inside:
                reads[inside[-1]] += 1
            return original(tensor, *args, **kwargs)

        return read

    monkeypatch.setattr(ClassifierModule, "training_step", training_step)
    for name in SYNCS:
        monkeypatch.setattr(torch.Tensor, name, counted(name))
    return reads


def test_training_steps_read_nothing_back_between_logging_steps(make_cfg, monkeypatch) -> None:
    reads = count_syncs_per_step(monkeypatch)
    train(short_run(make_cfg, "trainer.log_every_n_steps=5"))
    # Steps 4 and 9 are logging steps ((step + 1) % 5 == 0): the deferred NaN check reads there.
    assert set(reads) == {4, 9}, reads


def test_ignore_reads_nothing_back_at_all(make_cfg, monkeypatch) -> None:
    reads = count_syncs_per_step(monkeypatch)
    train(short_run(make_cfg, "trainer.log_every_n_steps=5", "module.on_nonfinite_loss=ignore"))
    assert not reads


def test_the_deferred_check_names_the_bad_step_and_saves_nothing_after_it(make_cfg, tmp_path: Path) -> None:
    cfg = short_run(
        make_cfg,
        "trainer.log_every_n_steps=50",  # lowered to the epoch's 12 steps: no logging step before 11
        "callbacks.step_checkpoint.every_n_train_steps=4",
        f"+callbacks.fault._target_={__name__}.NaNAtStep",
        "+callbacks.fault.step=6",
    )
    with pytest.raises(NonFiniteLossError) as raised:
        train(cfg)
    message = str(raised.value)
    # Noticed before the step-8 checkpoint was written, it names step 6 and the step-4 checkpoint.
    assert message.startswith("The training loss is nan at step 6 (epoch 1, batch 7)")
    assert "noticed at step 8" in message
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert f"Last good checkpoint: {last} (step 4, training loss " in message
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] == 4
    assert all(t.isfinite().all() for k, t in saved["state_dict"].items() if k.startswith("net."))


def test_the_counted_training_accuracy_is_what_torchmetrics_would_count(make_cfg) -> None:
    model = build(make_cfg())["model"]
    logits, labels = torch.randn(64, 10), torch.randint(0, 10, (64,))
    model.unfolded[:] = [(logits.argmax(1) == labels).sum(), len(labels)]
    model._update_train_accuracy()
    reference = _metrics(10, "train")
    reference.update(logits, labels)
    counted = model.train_metrics["acc"]
    for state in ("tp", "fp", "tn", "fn"):
        assert torch.equal(getattr(counted, state), getattr(reference["acc"], state)), state
    assert counted.compute() == reference["acc"].compute()
    assert model.unfolded[1] == 0


def test_idle_batch_hooks_are_off_during_the_run_and_back_after_it() -> None:
    class Probe(L.Callback):
        def on_train_batch_end(self, *args: object) -> None: ...

    probe, checkpoint, skipper = Probe(), ModelCheckpoint(monitor="val/acc", mode="max"), SkipIdleBatchHooks()
    trainer = SimpleNamespace(callbacks=[probe, checkpoint, skipper])
    skipper.setup(trainer, None, "fit")  # type: ignore[arg-type]
    assert probe.on_train_batch_start is None and probe.on_before_backward is None
    assert callable(probe.on_train_batch_end)  # implemented: still called
    assert checkpoint.on_after_backward is None and callable(checkpoint.on_validation_end)
    skipper.teardown(trainer, None, "fit")  # type: ignore[arg-type]
    assert callable(probe.on_train_batch_start) and callable(checkpoint.on_after_backward)


def test_the_checkpoint_callback_keeps_lightnings_state_key() -> None:
    settings = {"monitor": "val/acc", "mode": "max", "every_n_train_steps": 0}
    ours, lightnings = ModelCheckpoint(**settings), callbacks.ModelCheckpoint(**settings)
    assert ours.state_key == lightnings.state_key  # saved best scores restore across the two
