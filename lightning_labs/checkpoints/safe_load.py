"""``torch.load`` for files from anywhere: tensors and plain values only, unless the user trusts the file."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch


def check_integrity(path: Path) -> None:
    """Refuse a file that is not a whole, undamaged ``torch.save`` archive, naming it.

    ``torch.save`` writes a zip archive with a CRC-32 per entry, and ``torch.load`` checks none
    of them: a file with a few flipped bits loads and gives slightly wrong weights. Checking every
    CRC reads the file once (about 0.05 s per 100 MB), a small price against a silently wrong run.
    """
    if not path.is_file():
        raise FileNotFoundError(f"No file at {path}: check the path.")
    not_torch = f"Could not read {path}: it is not a complete PyTorch file (truncated or corrupt?)."
    if not zipfile.is_zipfile(path):  # a cut-off archive has no index
        raise ValueError(not_torch)
    try:
        with zipfile.ZipFile(path) as archive:
            if not any(name.endswith("/data.pkl") or name == "data.pkl" for name in archive.namelist()):
                raise ValueError(not_torch)  # a zip archive, but not one torch.save wrote
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{not_torch[:-1]} ({err})") from None
    if damaged is not None:
        raise ValueError(
            f"{path} is damaged: the checksum of its entry {damaged!r} does not match (bits changed on "
            "disk or in a copy). It was not loaded; use another copy of the file or an earlier checkpoint."
        )


TRUST_OPT_IN = "If you trust the file, pass trust_checkpoint=true."


def torch_load(path: str | Path, trusted: bool = False, opt_in: str = TRUST_OPT_IN) -> Any:
    """Load a ``torch.save`` file onto the CPU with ``weights_only=not trusted``.

    A file that needs arbitrary unpickling (a whole pickled model, say) can run code while it
    loads, so it is refused unless ``trusted``, with ``opt_in`` saying what the user can do.
    """
    path = Path(path)
    check_integrity(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path} holds Python objects beyond tensors and plain values, so it was not loaded "
            f"(weights_only=True): unpickling them could run code from the file. {opt_in} "
            f"({str(err).splitlines()[0]})"
        ) from None
    except Exception as err:
        raise ValueError(f"Could not read {path}: {err}") from None
