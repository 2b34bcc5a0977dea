"""Checkpoint files written whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary file beside the target, flushed to disk, then renamed.

    A rename within one folder replaces the old file in one step, so a crash, a kill or a full
    disk during the save leaves the previous checkpoint as it was. (Lightning's own save stages
    the file in the system's temporary folder, and moving it from another disk is a copy that
    can be cut short.) A failed save says which file is intact and why it failed.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        target = Path(path)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except OSError as err:
            temporary.unlink(missing_ok=True)
            kept = f"the previous {target} is unchanged" if target.exists() else f"{target} was not written"
            raise OSError(
                err.errno, f"Could not save the checkpoint {target} ({err.strerror or err}): {kept}"
            ) from None
