"""``torch.load`` for files from anywhere: tensors and plain values only, unless the user trusts the file."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch


def torch_load(path: str | Path, trusted: bool = False) -> Any:
    """Load a ``torch.save`` file onto the CPU with ``weights_only=not trusted``.

    A file that needs arbitrary unpickling (a whole pickled model, say) can run code while it
    loads, so it is refused unless ``trusted``, with a message saying how to opt in.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No file at {path}: check the path.")
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; a cut-off one has no index
        raise ValueError(f"Could not read {path}: it is not a complete PyTorch file (truncated or corrupt?).")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path} holds Python objects beyond tensors and plain values, so it was not loaded "
            "(weights_only=True): unpickling them could run code from the file. If you trust the "
            f"file, pass trust_checkpoint=true. ({str(err).splitlines()[0]})"
        ) from None
    except Exception as err:
        raise ValueError(f"Could not read {path}: {err}") from None
