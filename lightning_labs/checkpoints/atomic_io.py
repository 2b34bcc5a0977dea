"""Checkpoint files written whole or not at all, and read only when they are intact."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, BinaryIO

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from lightning_labs.checkpoints.safe_load import check_integrity
from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)


class _WriteErrors:
    """A file wrapper that remembers the first ``OSError`` of a write.

    ``torch.save`` turns a failed write (a full disk, say) into ``RuntimeError: unexpected pos``,
    which no longer says why; the error kept here does.
    """

    def __init__(self, file: BinaryIO) -> None:
        self.file, self.error = file, None

    def write(self, data: bytes) -> int:
        try:
            return self.file.write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def flush(self) -> None:
        self.file.flush()


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files that killed runs left in ``folder``; returns them.

    A run killed during a save leaves its ``.<name>.<pid>.tmp`` behind; on a nearly full disk
    that file alone can make the next save fail. Files of processes still alive on this host
    are left alone (they may be writing now).
    """
    removed = []
    for path in folder.glob(".*.tmp") if folder.is_dir() else ():
        pid = path.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.info("Removed %d temporary file(s) of an interrupted save: %s", len(removed), removed)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours from an earlier, failed save of this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary file beside the target, flushed to disk, then renamed.

    A rename within one folder replaces the old file in one step, so a crash, a kill or a full
    disk during the save leaves the previous checkpoint as it was. (Lightning's own save stages
    the file in the system's temporary folder, and moving it from another disk is a copy that
    can be cut short.) A failed save removes its temporary file and says which file is intact
    and why it failed. Loading checks the file's CRCs first, so a damaged file is refused.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        target = Path(path)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        writer = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(target.parent)
            with open(temporary, "wb") as file:
                writer = _WriteErrors(file)
                torch.save(checkpoint, writer)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except (OSError, RuntimeError) as err:
            temporary.unlink(missing_ok=True)
            cause = writer.error if writer and writer.error else err
            if not isinstance(cause, OSError):
                raise
            kept = f"the previous {target} is unchanged" if target.exists() else f"{target} was not written"
            reason = cause.strerror or str(cause)
            raise OSError(
                cause.errno or errno.EIO, f"Could not save the checkpoint {target} ({reason}): {kept}"
            ) from None

    def load_checkpoint(self, path: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        check_integrity(Path(path))
        return super().load_checkpoint(path, *args, **kwargs)
