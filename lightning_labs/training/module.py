"""The one LightningModule: trains, validates and tests any image classifier."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import MaxMetric, MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from lightning_labs.checkpoints.rng import rng_states, set_rng_states
from lightning_labs.checkpoints.safe_load import torch_load
from lightning_labs.models import build_net, check_net_fits_data, count_parameters
from lightning_labs.models import freeze as freeze_layers
from lightning_labs.runtime.config import instantiate
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)

# Scheduler arguments that mean "the length of training"; left null in a config, they are filled
# with the run's number of optimizer steps (interval: step) or epochs (interval: epoch).
LENGTH_ARGS = ("total_steps", "T_max")

Batch = tuple[torch.Tensor, torch.Tensor]
NONFINITE_POLICIES = ("stop", "skip", "ignore")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite: the weights are not worth training further."""


def _metrics(num_classes: int, stage: str) -> MetricCollection:
    # validate_args=False: the logits and labels come from this module, and checking them on every
    # step costs a small network a noticeable share of its speed.
    metrics: dict[str, Any] = {"acc": MulticlassAccuracy(num_classes, average="micro", validate_args=False)}
    # Top-5 for evaluation only: on every training step its top-k costs more than the
    # forward pass of a small network (see benchmarks/train_overhead.py).
    if num_classes > 5 and stage != "train":
        metrics["acc_top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro", validate_args=False)
    return MetricCollection(metrics, prefix=f"{stage}/")


class ClassifierModule(L.LightningModule):
    """Cross-entropy training of the network described by ``net``.

    Every argument is a plain value (the network, optimizer and scheduler as ``_target_``
    configs), so the hyperparameters stored in a checkpoint rebuild the model without the
    original command line and load with ``torch.load(weights_only=True)``.

    Args:
        net: config of the network (``_target_`` and its arguments).
        num_classes: number of classes of the data.
        input_shape: channels, height and width of one input image; the network is checked
            against it when built, and it sizes the example input of summaries and exports.
        optimizer: partial config of a ``torch.optim`` optimizer; ``params`` come from here.
        scheduler: partial config of a learning-rate scheduler plus ``interval`` (``step`` or
            ``epoch``), or null for a constant learning rate.
        label_smoothing: label smoothing of the training loss (``train/loss``); ``val/loss`` and
            ``test/loss`` are the plain cross-entropy, comparable with any other evaluation.
        edits: model surgery applied to the network (see ``models.surgery``).
        weights: pretrained weights: a file, or a torchvision weights name (``DEFAULT``).
        strict: whether every tensor of ``weights`` must fit the network.
        freeze: layer names or globs whose parameters do not train (see ``models.freeze``).
        on_nonfinite_loss: what a NaN or infinite training loss does: ``stop`` the run (naming
            the step and the last checkpoint), ``skip`` the batch, or ``ignore`` it (no check:
            saves the per-step GPU synchronisation the check costs).
        max_skipped_fraction: with ``skip``, the share of an epoch's batches that may be skipped;
            more stops the run (a run skipping most batches reports metrics of almost no training).
    """

    def __init__(
        self,
        net: Mapping[str, Any],
        num_classes: int,
        input_shape: Sequence[int],
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        label_smoothing: float = 0.0,
        edits: Sequence[Mapping[str, Any]] = (),
        weights: str | None = None,
        strict: bool = True,
        freeze: Sequence[str] = (),
        on_nonfinite_loss: str = "stop",
        max_skipped_fraction: float = 0.1,
    ) -> None:
        super().__init__()
        if not 0 <= max_skipped_fraction <= 1:
            raise ValueError(f"module.max_skipped_fraction={max_skipped_fraction}: give a share from 0 to 1")
        if on_nonfinite_loss not in NONFINITE_POLICIES:
            raise ValueError(
                f"module.on_nonfinite_loss={on_nonfinite_loss!r}: choose {' | '.join(NONFINITE_POLICIES)}"
            )
        self.save_hyperparameters()
        self.net = build_net(net, edits, weights, strict)
        check_net_fits_data(self.net, input_shape, num_classes)
        self.frozen_norms = freeze_layers(self.net, freeze)
        self.train(self.training)  # frozen normalisation layers go to eval mode now
        if freeze:
            trainable, frozen = count_parameters(self.net)
            log.info(
                "Frozen %s: %s parameters train, %s are frozen", list(freeze), f"{trainable:,}", f"{frozen:,}"
            )
        self.example_input_array = torch.zeros(1, *input_shape)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)  # training only
        self.train_metrics = _metrics(num_classes, "train")
        self.train_metrics.persistent(True)  # a run resumed mid-epoch continues the epoch's counts
        self.train_loss_sum = torch.zeros(())
        self.train_count = 0
        self.skipped = 0  # batches of this epoch skipped for a non-finite loss
        self.last_loss = torch.full((), math.nan)  # saved in checkpoints: was the run sound then?
        self.val_metrics = _metrics(num_classes, "val")
        self.test_metrics = _metrics(num_classes, "test")
        # Evaluation losses as metrics (sum and count synced across DDP ranks), so that a
        # distributed val/loss is the mean over all images, as in one process.
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # saved in checkpoints, so a resumed run keeps its best
        # The whole run's config, set by the train command and saved in every checkpoint, so that
        # eval, export and benchmark rebuild the data as it was without the original command line.
        self.run_config: dict[str, Any] | None = None
        self.resumed_schedulers: list[dict[str, Any]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def train(self, mode: bool = True) -> ClassifierModule:
        # Frozen normalisation layers keep their running statistics: they stay in eval mode
        # whenever Lightning switches the model to training.
        super().train(mode)
        for norm in self.frozen_norms:
            norm.eval()
        return self

    def unfreeze(self) -> list[torch.nn.Parameter]:
        """Make every frozen parameter trainable again; returns those that were frozen."""
        thawed = [p for p in self.parameters() if not p.requires_grad]
        for param in thawed:
            param.requires_grad_(True)
        self.frozen_norms = []
        self.train(self.training)
        return thawed

    def _eval_step(self, batch: Batch, stage: str) -> torch.Tensor:
        """Update the stage's metrics; the logits go to callbacks that draw predictions.

        The loss is the plain cross-entropy, without the training loss's label smoothing, so that
        ``val/loss`` and ``test/loss`` mean what they say (as in timm's and torchvision's references).
        """
        images, labels = batch
        logits = self(images)
        loss = nn.functional.cross_entropy(logits, labels)
        metrics: MetricCollection = getattr(self, f"{stage}_metrics")
        metrics.update(logits, labels)
        loss_metric: MeanMetric = getattr(self, f"{stage}_loss")
        loss_metric.update(loss.detach(), weight=len(labels))
        self.log(f"{stage}/loss", loss_metric, on_step=False, on_epoch=True, prog_bar=True)
        for name, metric in metrics.items():
            self.log(name, metric, on_step=False, on_epoch=True, prog_bar=name == "val/acc")
        return logits

    def on_train_start(self) -> None:
        # The sanity check ran validation on an untrained model: keep it out of the best value
        # (unless this run resumes, when the restored best is real).
        if self.trainer.global_step == 0:
            self.val_acc_best.reset()
        if self.hparams.on_nonfinite_loss == "skip" and self.trainer.world_size > 1:
            raise ValueError(
                "module.on_nonfinite_loss=skip cannot run under DDP (a rank skipping a step while "
                "the others wait for its gradients would hang the job): use stop."
            )
        self.train_loss_sum = self.train_loss_sum.to(self.device)  # restored on the CPU when resuming

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        # Each self.log call costs about a millisecond of Lightning bookkeeping, as much as a
        # whole LeNet-5 step at batch 16: training values are summed here and logged only on
        # the steps the loggers write (trainer.log_every_n_steps) and at the end of the epoch.
        images, labels = batch
        logits = self(images)
        loss = self.criterion(logits, labels)
        if self.hparams.on_nonfinite_loss != "ignore" and not torch.isfinite(loss):
            return self._nonfinite_loss(loss, batch_idx)
        self.train_metrics.update(logits, labels)
        self.last_loss = loss.detach()
        self.train_loss_sum += loss.detach() * len(labels)
        self.train_count += len(labels)
        if (self.trainer.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss_step", loss, prog_bar=True)
        return loss

    def _nonfinite_loss(self, loss: torch.Tensor, batch_idx: int) -> None:
        """Skip the batch (returning None makes Lightning skip the step) or stop the run."""
        batches = self.trainer.num_training_batches
        where = f"step {self.trainer.global_step} (epoch {self.current_epoch + 1}, batch {batch_idx + 1})"
        if self.hparams.on_nonfinite_loss == "skip":
            log.warning("The training loss is %s at %s: batch skipped", loss.item(), where)
            self.skipped += 1
            allowed = self.hparams.max_skipped_fraction
            if self.skipped > allowed * batches:
                raise NonFiniteLossError(
                    f"{self.skipped} of this epoch's {batches} batches had a non-finite loss and were "
                    f"skipped, more than module.max_skipped_fraction={allowed}: the run is not training "
                    "on its data. Lower optimizer.lr or check the data."
                )
            return None
        raise NonFiniteLossError(
            f"The training loss is {loss.item()} at {where}: stopped rather than train on it. "
            f"{self._last_good_checkpoint()} Lower optimizer.lr, check the data, or pass "
            "module.on_nonfinite_loss=skip to skip such batches."
        )

    def _last_good_checkpoint(self) -> str:
        """The newest checkpoint saved while training was sound, or why none is.

        Sound means finite weights, and a training loss at the save below three times the loss of
        guessing uniformly (3 ln C): a run that diverged first (weights growing to 1e10, say)
        saved checkpoints that fail again at the same step when resumed.
        """
        limit = 3 * math.log(self.hparams.num_classes)
        paths = {Path(c.best_model_path) for c in self.trainer.checkpoint_callbacks if c.best_model_path}
        diverged = []
        for path in sorted((p for p in paths if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True):
            saved = torch_load(path)
            loss = saved.get("train_loss_at_save", math.nan)
            net = [t for k, t in saved["state_dict"].items() if k.startswith("net.")]
            finite = all(t.isfinite().all() for t in net if t.is_floating_point())
            facts = f"step {saved['global_step']}, training loss {loss:.4g}"
            if finite and loss <= limit:
                return f"Last good checkpoint: {path} ({facts})."
            diverged.append(f"{path.name} ({facts})")
        if not diverged:
            return "No checkpoint was saved yet."
        return (
            f"No checkpoint was saved while training was sound (training loss below 3 ln(classes) = "
            f"{limit:.3g}, finite weights): {', '.join(diverged)} had diverged already; start again."
        )

    def on_train_epoch_start(self) -> None:
        self.train_loss_sum = torch.zeros((), device=self.device)
        self.train_count = 0
        self.skipped = 0

    def on_train_epoch_end(self) -> None:
        # Under DDP every rank has the same number of training batches (the distributed sampler
        # pads), so the mean of the ranks' means is the mean over all images. The accuracies are
        # synced by torchmetrics already; sync_dist on them only says so to Lightning.
        if self.train_count:
            mean = self.train_loss_sum / self.train_count
            self.log("train/loss", mean, prog_bar=True, sync_dist=True)
        for name, metric in self.train_metrics.items():
            self.log(name, metric.compute(), sync_dist=True)
        self.train_metrics.reset()

    def validation_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self.val_acc_best(self.val_metrics["acc"].compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def test_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._eval_step(batch, "test")

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self(batch[0]).softmax(dim=1)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint["run_config"] = self.run_config
        # What a run resumed from this checkpoint needs to continue exactly as this one would.
        checkpoint["rng_states"] = rng_states()
        checkpoint["train_loss_sum"] = [self.train_loss_sum.detach().cpu(), self.train_count]
        checkpoint["train_loss_at_save"] = float(self.last_loss)  # named by the NaN stop if sound

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A resumed run records its own config (set by the train command) in the checkpoints it
        # writes; a model rebuilt from a checkpoint alone takes the saved one.
        if self.run_config is None:
            self.run_config = checkpoint.get("run_config")
        # The saved schedules, checked against the resumed run's length in configure_optimizers.
        self.resumed_schedulers = checkpoint.get("lr_schedulers") or []
        if "rng_states" in checkpoint:
            set_rng_states(checkpoint["rng_states"])
        self.train_loss_sum, self.train_count = checkpoint.get("train_loss_sum", [torch.zeros(()), 0])

    def configure_optimizers(self) -> Any:
        trainable = [p for p in self.parameters() if p.requires_grad]
        group: dict[str, Any] = {"params": trainable}
        if len(trainable) < len(list(self.parameters())):
            # Named, so the learning-rate cards read lr-SGD/trainable beside the lr-SGD/unfrozen of
            # callbacks.UnfreezeAtEpoch rather than pg1 and pg2 (LearningRateMonitor uses "name").
            group["name"] = "trainable"
        optimizer = instantiate(dict(self.hparams.optimizer))(params=[group])
        if not self.hparams.scheduler:
            return optimizer
        config = dict(self.hparams.scheduler)
        interval = config.pop("interval", "epoch")
        factory = instantiate(config)
        length = self.trainer.estimated_stepping_batches if interval == "step" else self.trainer.max_epochs
        unset = [k for k in LENGTH_ARGS if k in factory.keywords and factory.keywords[k] is None]
        filled = dict.fromkeys(unset, int(length))
        self._check_resumed_length(factory.func.__name__, filled, interval)
        scheduler = factory(optimizer, **filled)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}

    def _check_resumed_length(self, name: str, filled: dict[str, int], interval: str) -> None:
        """Refuse to resume a schedule fitted to the saved run's length into a run of another length.

        Lightning loads the saved schedule over the new one, its length included: a longer
        OneCycleLR run would fail with torch's "Tried to step N times" once past the old end, and
        a cosine's learning rate would climb back up. A schedule fitted to a whole run cannot
        honestly be stretched part-way through (the steps taken followed the old one), so this
        stops before training. Schedules of a fixed length (StepLR, or total_steps/T_max set)
        continue.
        """
        saved = self.resumed_schedulers[0] if self.trainer.ckpt_path and self.resumed_schedulers else {}
        changed = [key for key, value in filled.items() if saved.get(key, value) != value]
        if changed:
            key, unit = changed[0], "optimizer steps" if interval == "step" else "epochs"
            raise ValueError(
                f"Cannot resume {self.trainer.ckpt_path} with this run's length: its {name} schedule "
                f"has {key}={saved[key]}, the length of the run that saved it in {unit}, and this "
                f"run is {filled[key]} {unit} long. A schedule fitted to a whole run cannot be "
                "stretched part-way through. Resume with the length it was saved with "
                "(trainer.max_epochs, trainer.limit_train_batches, data.batch_size and the number of "
                "devices as they were), or start a new run from these weights with "
                f"model.weights={self.trainer.ckpt_path} (and no ckpt_path)."
            )
