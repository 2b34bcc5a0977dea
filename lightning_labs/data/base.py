"""What every DataModule of the package shares: the facts a network needs, loaders, one-image transform."""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.seed import pl_worker_init_function
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from lightning_labs.data.shuffle import EpochShuffle
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)


def fingerprint(*parts: bytes) -> str:
    """A short digest of a split's contents: cheap, and different when its images or labels differ."""
    digest = hashlib.sha1()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()[:12]


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask where the OS has one (Linux, and the
    cores a batch scheduler or ``taskset`` grants), else every core of the machine."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def class_difference(trained: Sequence[str], found: Sequence[str], where: str) -> str:
    """Why data whose classes are not a checkpoint's cannot be used with it, and what to do."""
    missing = [name for name in trained if name not in found]
    new = [name for name in found if name not in trained]
    change = (
        f"missing {missing or 'none'}, new {new or 'none'}" if missing or new else "same names, other order"
    )
    return (
        f"The classes of {where} differ from the {len(trained)} classes the checkpoint was trained on "
        f"({change}): its label numbers would name other classes. Use the data it was trained on "
        "(put the class folders or files back as they were), or start a new run."
    )


def class_labels(datamodule: Any, num_classes: int) -> list[str]:
    """The data's class names, or the class indices where it recorded none (or another count)."""
    names = [str(name) for name in getattr(datamodule, "class_names", None) or []]
    return names if len(names) == num_classes else [str(i) for i in range(num_classes)]


class WorkerStart:
    """A DataLoader worker's first act: ignore SIGINT and SIGTERM, then Lightning's worker seeding.

    Ctrl-C in a terminal and SLURM's ``scancel`` signal the whole process group. A worker that
    died of it would end the run with "DataLoader worker killed" before the main process reached
    the step boundary where it saves (``CheckpointOnInterrupt``); the main process stops its
    workers itself when it ends. (Setting a ``worker_init_fn`` keeps Lightning from adding its
    seeding one, so it is called here.)
    """

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def __call__(self, worker_id: int) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if int(os.environ.get("PL_SEED_WORKERS", 0)):
            pl_worker_init_function(worker_id, rank=self.rank)


class ClassificationData(L.LightningDataModule):
    """Base of the image-classification DataModules.

    Constructing one touches no file, so a config can be checked, a network sized and a
    checkpoint's data rebuilt for prediction anywhere; files are found and read in ``setup``,
    which fails with a message naming the path and the fix when they are missing.

    Args:
        batch_size: images per training (and evaluation) step.
        num_workers: DataLoader worker processes.
        pin_memory: page-locked host memory, so that copies to a GPU run beside the step;
            ``auto``: when training on a CUDA device.
        mean, std: per-channel normalisation constants of the dataset.
    """

    name: str
    input_shape: tuple[int, int, int]
    root: Path | None = None  # the folder the files are read from (None: made in memory)

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool | str = "auto",
        mean: Sequence[float] = (0.5,),
        std: Sequence[float] = (0.5,),
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be at least 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be 0 or more, got {num_workers}")
        if pin_memory not in (True, False, "auto"):
            raise ValueError(f"data.pin_memory must be true, false or auto, got {pin_memory!r}")
        if any(not value > 0 for value in std):
            raise ValueError(
                f"data.std={list(std)}: every standard deviation must be above 0 (images are divided by it)"
            )
        if len(mean) != len(std):
            raise ValueError(
                f"data.mean={list(mean)} and data.std={list(std)} must have one value per channel"
            )
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.class_names: list[str] = []
        self.shuffle_seed: int | None = None  # drawn from the run's seed when training starts
        self._resume_position: dict[str, int] | None = None
        self.trained_identity: dict[str, Any] | None = None  # identity() of the data a checkpoint saw

    @property
    def num_classes(self) -> int:
        raise NotImplementedError

    @property
    def facts(self) -> dict[str, Any]:
        """What a network must know about this data to be built for it."""
        return {
            "in_channels": self.input_shape[0],
            "num_classes": self.num_classes,
            "image_size": list(self.input_shape[1:]),
        }

    @property
    def training_device(self) -> torch.device:
        """The device the attached trainer runs on (the CPU without one)."""
        return self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")

    def pins_memory(self, dataset: Dataset) -> bool:
        """``pin_memory`` for a DataLoader of ``dataset``: ``auto`` pins when training on a CUDA device
        and the data is still in host memory (a split kept on the GPU has nothing to copy)."""
        if self.pin_memory != "auto":
            return bool(self.pin_memory)
        on_host = getattr(dataset, "device", torch.device("cpu")).type == "cpu"
        return on_host and self.training_device.type == "cuda"

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Cast the batch to the trainer's precision (``64-true``, ``bf16-true``, ...).

        Lightning casts a batch before this hook; the batched pipeline makes its float images
        only here, and the example input of the TensorBoard graph passes only through here.
        """
        return self.trainer.precision_plugin.convert_input(batch) if self.trainer else batch

    def eval_transform(self, image: Image.Image) -> torch.Tensor:
        """One image file's picture as the network sees it at evaluation (C x H x W, normalised)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        # Saved in every checkpoint by Lightning: predictions can name classes without the data,
        # and a resumed run continues the interrupted epoch in the same order.
        return {
            "class_names": list(self.class_names),
            "shuffle_seed": self.shuffle_seed,
            "train_position": self._train_position(),
            "identity": self.identity(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = [str(name) for name in state_dict.get("class_names") or []]
        if saved and self.class_names and saved != self.class_names:
            # Set up before the checkpoint was read: a resumed run, which would train on its own numbering.
            raise ValueError(class_difference(saved, self.class_names, f"the {self.name} data"))
        self.class_names = saved or self.class_names
        self.shuffle_seed = state_dict.get("shuffle_seed", self.shuffle_seed)
        self._resume_position = state_dict.get("train_position")
        self.trained_identity = state_dict.get("identity")

    def split_fingerprints(self) -> dict[str, tuple[int, str]]:
        """Image count and fingerprint of each split set up so far (``train``, ``val``, ``test``)."""
        return {}

    def identity(self) -> dict[str, Any]:
        """Which data this is: the folder it was read from (absolute) and each split's image count
        and fingerprint. Saved in checkpoints, so that eval reads the data training read, wherever
        it is started from, and says when a split differs from training's."""
        return {
            "root": str(self.root.resolve()) if self.root else None,
            "splits": {
                split: {"images": count, "fingerprint": digest}
                for split, (count, digest) in self.split_fingerprints().items()
            },
        }

    def differences_from_training(self) -> list[str]:
        """How the splits set up now differ from those of the checkpoint's run (empty: the same data)."""
        trained = (self.trained_identity or {}).get("splits") or {}
        differences = []
        for split, (count, digest) in self.split_fingerprints().items():
            before = trained.get(split)
            if before and (before["images"], before["fingerprint"]) != (count, digest):
                differences.append(
                    f"the {split} split has {count} images (fingerprint {digest}) where the checkpoint's "
                    f"run had {before['images']} ({before['fingerprint']}) in {self.trained_identity['root']}"
                )
        return differences

    def set_class_names(self, names: Sequence[Any], source: str) -> None:
        """Take the class names the data files give, refusing names unlike those already known.

        Known names come from a checkpoint (eval, predict): label number i means the class the
        network learnt as number i, so data with other classes would be scored against the wrong ones.
        """
        names = [str(name) for name in names]
        if self.class_names and names != self.class_names:
            raise ValueError(class_difference(self.class_names, names, source))
        self.class_names = names

    def _train_position(self) -> dict[str, int] | None:
        """Where training resumes from a checkpoint saved now: epoch, and batches of it done."""
        trainer = self.trainer
        if trainer is None or trainer.state.fn != "fit":
            return None
        done = trainer.fit_loop.epoch_loop.batch_progress.current.ready
        if done >= trainer.num_training_batches:  # saved at the end of an epoch: the next one starts
            return {"epoch": trainer.current_epoch + 1, "batches": 0}
        return {"epoch": trainer.current_epoch, "batches": done}

    def _train_sampler(self, dataset: Dataset) -> Sampler[int] | None:
        """A single process's training order, resumable mid-epoch (see :class:`EpochShuffle`).

        Under DDP Lightning puts its DistributedSampler in (seeded, one order per epoch), which
        resumes exactly from the end-of-epoch checkpoints.
        """
        if self.trainer is not None and self.trainer.world_size > 1:
            if self._resume_position and self._resume_position["batches"]:
                log.warning(
                    "Resuming mid-epoch under DDP: epoch %d starts its order again (the distributed "
                    "sampler cannot start part-way), so its first batches are trained twice and its "
                    "last ones not at all. End-of-epoch checkpoints resume exactly.",
                    self._resume_position["epoch"],
                )
            return None
        if self.shuffle_seed is None:
            self.shuffle_seed = torch.initial_seed() % 2**32  # the run's seed (seed=N), else random
        sampler = EpochShuffle(len(dataset), self.shuffle_seed)  # type: ignore[arg-type]
        if self._resume_position:
            position, self._resume_position = self._resume_position, None
            sampler.resume_at(position["epoch"], position["batches"] * self.batch_size)
        return sampler

    def _eval_sampler(self, dataset: Dataset) -> Sampler[int] | None:
        """Under DDP, each evaluation image on exactly one rank.

        Lightning's default distributed sampler repeats images to even out the ranks' shares,
        which would count them twice in val/test metrics; this one leaves the shares off by at
        most one image, so the synced metrics equal those of a single process.
        """
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1:
            return None
        return UnrepeatedDistributedSampler(
            dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
        )

    def _loader(
        self, dataset: Dataset | None, train: bool, collate_fn: Callable[[Any], Any] | None = None
    ) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{self.name}: call setup() before asking for a DataLoader")
        sampler = self._train_sampler(dataset) if train else self._eval_sampler(dataset)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            drop_last=train and len(dataset) > self.batch_size,  # a lone last image breaks BatchNorm
            num_workers=self.num_workers,
            pin_memory=self.pins_memory(dataset),
            persistent_workers=self.num_workers > 0,
            collate_fn=collate_fn,
            worker_init_fn=WorkerStart(self.trainer.global_rank if self.trainer else 0),
            # Its own generator: starting an iterator then draws no number from the global one,
            # which training (dropout, augmentation) uses and a checkpoint restores.
            generator=torch.Generator().manual_seed(torch.initial_seed() % 2**32),
        )
