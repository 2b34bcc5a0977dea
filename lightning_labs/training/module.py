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


def check_compile_backend(backend: str) -> None:
    """Refuse a ``model.compile_backend`` that ``torch.compile`` does not know, before training."""
    import torch._dynamo

    known = torch._dynamo.list_backends(exclude_tags=())
    if backend not in known:
        raise ValueError(f"model.compile_backend={backend!r} is not a torch.compile backend; choose: {known}")


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
            the first bad step and the last good checkpoint; checked on logging steps, at epoch
            ends and before each checkpoint, so no GPU synchronisation per step: see
            ``check_losses``), ``skip`` the batch (decided on every step: on a GPU that costs a
            synchronisation per step), or ``ignore`` it (no check at all).
        max_skipped_fraction: with ``skip``, the share of an epoch's batches that may be skipped;
            more stops the run (a run skipping most batches reports metrics of almost no training).
        compile: train through ``torch.compile`` of the network. ``self.net`` stays the plain
            network (checkpoints, export and surgery see the same names, no ``_orig_mod.``);
            only training steps run the compiled one, evaluation runs the network as it is.
        compile_backend: the ``torch.compile`` backend: ``inductor`` (fast code, compiles for
            a while), or ``aot_eager`` / ``eager`` (no code generation: for trying it on a CPU).
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
        compile: bool = False,
        compile_backend: str = "inductor",
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
        # Held outside the module's registered children (object.__setattr__), so state_dict keys and
        # checkpoints stay those of the plain network; compiled on the first training step.
        object.__setattr__(self, "_compiled_net", None)
        if compile:
            check_compile_backend(compile_backend)
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
        # Correct predictions and images since train_metrics was last brought up to date (see
        # _update_train_accuracy): a plain count per step instead of a torchmetrics update.
        self.unfolded: list[Any] = [torch.zeros((), dtype=torch.long), 0]
        # Training losses (with their step and batch) not yet checked for NaN/inf (see check_losses).
        self.unchecked: list[tuple[torch.Tensor, int, int]] = []
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
        if self.training and self.hparams.get("compile"):
            if self._compiled_net is None:
                backend = self.hparams.get("compile_backend", "inductor")
                object.__setattr__(self, "_compiled_net", torch.compile(self.net, backend=backend))
            return self._compiled_net(x)
        return self.net(x)

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets _current_fx_name before and after every hook call, some 40 times per
        # training step; nn.Module's __setattr__ first looks for a parameter, buffer or submodule
        # of that name (a few µs each time). It is a plain string attribute: set it directly.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

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
        self.unfolded[0] = self.unfolded[0].to(self.device)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor | None:
        # Per-step Python is the whole cost of a small network's step beyond its compute
        # (benchmarks/train_overhead.py): a self.log call costs Lightning about a millisecond, a
        # torchmetrics update about 0.1 ms, and reading a value off a GPU (bool(), .item()) waits
        # for the GPU. So the loss and the correct predictions are summed on the device, and read
        # only on the steps the loggers write (trainer.log_every_n_steps), at the end of the
        # epoch and before every checkpoint.
        images, labels = batch
        logits = self(images)
        loss = self.criterion(logits, labels)
        policy = self.hparams.on_nonfinite_loss
        if policy == "skip" and not torch.isfinite(loss):  # skip decides now: a GPU sync per step
            return self._nonfinite_loss(loss, self.trainer.global_step, batch_idx)
        detached = loss.detach()
        step = self.trainer.global_step
        if policy == "stop":
            self.unchecked.append((detached, step, batch_idx))  # checked later, see check_losses
        self.last_loss = detached
        self.train_loss_sum.add_(detached * len(labels))
        self.train_count += len(labels)
        self.unfolded[0].add_((logits.detach().argmax(dim=1) == labels).sum())
        self.unfolded[1] += len(labels)
        if (step + 1) % self.trainer.log_every_n_steps == 0:
            self.check_losses()
            self.log("train/loss_step", loss, prog_bar=True)
        return loss

    def check_losses(self) -> None:
        """With ``stop``: end the run if a training loss since the last check was NaN or infinite.

        The check is deferred, so that a step costs no GPU synchronisation: the losses are kept
        on the device and read together (one synchronisation) on logging steps, at the end of
        each epoch and before every checkpoint is written. The error names the first bad step
        exactly; the steps after it, which trained on NaN gradients, are never saved, since the
        check before a checkpoint stops the run first.
        """
        unchecked = self.unchecked
        if not unchecked:
            return
        finite = torch.isfinite(torch.stack([loss for loss, _, _ in unchecked]))
        bad = (~finite).nonzero()
        first = unchecked[int(bad[0, 0])] if len(bad) else None
        unchecked.clear()
        if first is not None:
            self._nonfinite_loss(*first)

    def _update_train_accuracy(self) -> None:
        """Add the correct predictions counted since the last call to ``train_metrics``.

        The states are those a top-1 micro accuracy's update would have summed (true and false
        positives, false and true negatives, one class per image), so torchmetrics syncs them
        across DDP ranks, computes the epoch's accuracy and saves them in checkpoints as before.
        """
        correct, count = self.unfolded
        if not count:
            return
        accuracy = self.train_metrics["acc"]
        wrong = count - correct
        accuracy.tp += correct
        accuracy.fp += wrong
        accuracy.fn += wrong
        accuracy.tn += count * self.hparams.num_classes - correct - 2 * wrong
        accuracy._update_count += 1
        accuracy._computed = None
        self.unfolded[:] = [torch.zeros_like(correct), 0]

    def _nonfinite_loss(self, loss: torch.Tensor, step: int, batch_idx: int) -> None:
        """Skip the batch (returning None makes Lightning skip the step) or stop the run."""
        batches = self.trainer.num_training_batches
        where = f"step {step} (epoch {self.current_epoch + 1}, batch {batch_idx + 1})"
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
        noticed = self.trainer.global_step
        after = f" (noticed at step {noticed}; nothing after step {step} was saved)" if noticed > step else ""
        raise NonFiniteLossError(
            f"The training loss is {loss.item()} at {where}: stopped rather than train on it{after}. "
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
        self.unfolded[:] = [torch.zeros((), dtype=torch.long, device=self.device), 0]
        self.skipped = 0

    def on_train_epoch_end(self) -> None:
        # Under DDP every rank has the same number of training batches (the distributed sampler
        # pads), so the mean of the ranks' means is the mean over all images. The accuracies are
        # synced by torchmetrics already; sync_dist on them only says so to Lightning.
        self.check_losses()
        self._update_train_accuracy()
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

    def on_train_end(self) -> None:
        self.check_losses()  # a run ending mid-epoch (trainer.max_steps)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # No checkpoint of weights trained on a NaN loss: this raises before the file is written.
        self.check_losses()
        # The epoch's training accuracy so far, in the state_dict Lightning gathered already.
        self._update_train_accuracy()
        state = checkpoint.get("state_dict") or {}
        for key, value in self.train_metrics.state_dict(prefix="train_metrics.").items():
            if key in state:
                state[key] = value
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
        self.unfolded[:] = [torch.zeros((), dtype=torch.long), 0]  # the saved counts are in train_metrics
        self.unchecked.clear()

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
