"""A sweep job under submitit (``hydra/launcher=submitit_slurm`` or ``submitit_local``) that its
scheduler stops early saves, is requeued, and resumes from its own checkpoint.

Before a job's time limit, or when a job is pre-empted, submitit's launch sends it USR2 (on SLURM
``signal_delay_s`` before the end, through ``sbatch --signal``). Submitit's own handler requeues
at once, in the middle of a step. Here the signal first stops training the way SIGTERM does
(:class:`~lightning_labs.callbacks.interrupt.CheckpointOnInterrupt`: at the next batch boundary,
saving ``checkpoints/last.ckpt``), and only then hands over to submitit's handler, which requeues
the job with the same arguments. The requeued job gets the same run directory (Hydra keeps the
sweep's resolved folder name in the pickled config), finds its ``last.ckpt`` there and resumes
from it: a fresh job's folder is new, so it never holds one. A job that SLURM itself requeues after
a SIGTERM (pre-emption with ``PreemptMode=REQUEUE``) resumes the same way.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from lightning_labs.runtime.logs import get_logger

log = get_logger(__name__)
LAST = Path("checkpoints") / "last.ckpt"


def under_submitit() -> bool:
    """Whether this process is a job that submitit started (it sets ``SUBMITIT_EXECUTOR``)."""
    return bool(os.environ.get("SUBMITIT_EXECUTOR"))


def requeued_checkpoint(output_dir: Path) -> Path | None:
    """This submitit job's own ``last.ckpt`` when it was requeued (None for a fresh job)."""
    path = output_dir / LAST
    return path if under_submitit() and path.is_file() else None


def _preempt_signal() -> signal.Signals:
    """The signal submitit sends before a time-out or pre-emption (USR2, or $SUBMITIT_PREEMPT_SIGNAL)."""
    return signal.Signals[
        f"SIG{os.environ.get('SUBMITIT_PREEMPT_SIGNAL', 'USR2').upper().removeprefix('SIG')}"
    ]


@contextmanager
def save_then_requeue() -> Iterator[None]:
    """Around training in a submitit job: on the pre-emption signal, stop at the next batch
    boundary (saving ``last.ckpt``), then let submitit requeue the job. Elsewhere, nothing."""
    if not under_submitit():
        yield
        return
    sig = _preempt_signal()
    submitit_handler: Any = signal.getsignal(sig)
    warned: list[bool] = []

    def stop_for_requeue(signum: int, frame: FrameType | None) -> None:
        warned.append(True)
        name = signal.Signals(signum).name
        log.warning(
            "%s: time limit near, or pre-empted: saving at the next batch boundary, then requeueing", name
        )
        os.kill(os.getpid(), signal.SIGTERM)  # Lightning stops between batches; the checkpoint is saved

    signal.signal(sig, stop_for_requeue)
    try:
        yield
    except SystemExit:
        if warned and callable(submitit_handler):
            log.warning("Requeueing this job: it will resume from its checkpoints/last.ckpt")
            submitit_handler(sig, None)  # submitit: requeue with the same arguments, then exit
        raise
    finally:
        signal.signal(sig, submitit_handler)
