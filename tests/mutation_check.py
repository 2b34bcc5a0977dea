"""Mutation check: each realistic bug below, put into the library, must make the tests named for it fail.

    .venv/bin/python tests/mutation_check.py                 # every mutation (about 10 minutes here)
    .venv/bin/python tests/mutation_check.py --only resume   # those whose name contains "resume"

A test that still passes with the bug in place proves nothing about that bug. Each mutation
replaces one exact snippet of one library file (found exactly once, or the script stops: the
list must follow the code), runs only the tests that should catch it, and puts the file back
whatever happens. The script prints a Markdown table (the one in the README's Tests section) and
exits 1 if any mutation survived. It is not part of `make test`: it runs the tests many times.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# In one process (-n 0): with pytest-xdist's workers, stopping at the first failure (-x) exits 2,
# which would read as an error rather than a caught mutation (exit 1).
PYTEST = [sys.executable, "-m", "pytest", "-q", "-x", "-n", "0", "-p", "no:cacheprovider"]


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation(
        "weights: BatchNorm statistics dropped on load (parameters only)",
        "lightning_labs/models/weights.py",
        "net.load_state_dict(fit.loaded, strict=False)",
        "net.load_state_dict({k: v for k, v in fit.loaded.items() if k in dict(net.named_parameters())}, "
        "strict=False)",
        ("tests/test_weights.py",),
    ),
    Mutation(
        "weights: edited layers take same-shaped tensors from the file",
        "lightning_labs/models/weights.py",
        "return [name for name, edit in edited.items() if _plain(edit) not in saved]",
        "return []",
        ("tests/test_weights.py",),
    ),
    Mutation(
        "surgery: inserted block registered inside its Sequential (runs twice)",
        "lightning_labs/models/surgery.py",
        "while path and isinstance(net.get_submodule(path), CONTAINERS):",
        "while False:",
        ("tests/test_surgery.py",),
    ),
    Mutation(
        "export: network not put in eval mode",
        "lightning_labs/inference/export.py",
        "net = model.net.cpu().eval()",
        "net = model.net.cpu()",
        ("tests/test_export_eval_mode.py",),
    ),
    Mutation(
        "predict: network not put in eval mode",
        "lightning_labs/inference/predict.py",
        "net = model.net.cpu().eval()",
        "net = model.net.cpu()",
        ("tests/test_export_eval_mode.py",),
    ),
    Mutation(
        "resume: shuffle position forgotten (epoch restarts)",
        "lightning_labs/data/base.py",
        'sampler.resume_at(position["epoch"], position["batches"] * self.batch_size)',
        'sampler.resume_at(position["epoch"], 0)',
        ("tests/reliability/test_resume.py::test_kill_9_mid_epoch_then_resume_ends_as_if_never_killed",),
    ),
    Mutation(
        "resume: best checkpoint not carried into a new run directory",
        "lightning_labs/training/run.py",
        "callbacks.append(KeepBestAcrossResume())",
        "callbacks.extend([])",
        ("tests/test_resume_policies.py",),
    ),
    Mutation(
        "resume: a one-cycle schedule stretched to another length",
        "lightning_labs/training/module.py",
        "self._check_resumed_length(factory.func.__name__, filled, interval)",
        "filled.clear()",
        ("tests/test_resume_policies.py",),
    ),
    Mutation(
        "resume: ckpt_path=last takes the newest run of any model",
        "lightning_labs/checkpoints/resume.py",
        "matching = [path for path in found if not differences[path]]",
        "matching = found",
        ("tests/test_resume_policies.py",),
    ),
    Mutation(
        "resume: renamed class folders accepted (labels shift)",
        "lightning_labs/data/base.py",
        "if saved and self.class_names and saved != self.class_names:",
        "if False:",
        ("tests/reliability/test_data_checks.py",),
    ),
    Mutation(
        "eval: data read relative to where eval starts",
        "lightning_labs/checkpoints/restore.py",
        "config = pinned_to_trained_folder(config, trained, identity, data_config, typed)",
        "config = dict(config)",
        ("tests/reliability/test_data_checks.py",),
    ),
    Mutation(
        "eval: data=<same dataset> restarts from the file's defaults",
        "lightning_labs/checkpoints/data_config.py",
        "return {**trained, **{key: given[key] for key in changed}}",
        "return given",
        ("tests/test_eval_data.py",),
    ),
    Mutation(
        "metrics: evaluation loss includes label smoothing",
        "lightning_labs/training/module.py",
        "loss = nn.functional.cross_entropy(logits, labels)",
        "loss = self.criterion(logits, labels)",
        ("tests/test_train.py::test_evaluation_losses_are_the_plain_cross_entropy",),
    ),
    Mutation(
        "compare: sorted the wrong way",
        "lightning_labs/runs/compare.py",
        "return any(word in metric for word in LOWER_IS_BETTER)",
        "return not any(word in metric for word in LOWER_IS_BETTER)",
        ("tests/test_compare_order.py",),
    ),
    Mutation(
        "latency: fp16 tolerance ten times wider",
        "lightning_labs/inference/latency.py",
        '"fp16": 1e-2,',
        '"fp16": 1e-1,',
        ("tests/test_latency_tolerances.py",),
    ),
    Mutation(
        "checkpoints: zip CRCs not checked (flipped bits load)",
        "lightning_labs/checkpoints/safe_load.py",
        "damaged = archive.testzip()",
        "damaged = None",
        ("tests/reliability/test_storage.py",),
    ),
    Mutation(
        "signals: DataLoader workers die of the group's SIGTERM",
        "lightning_labs/data/base.py",
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)",
        "signal.signal(signal.SIGTERM, signal.SIG_DFL)",
        ("tests/reliability/test_signals.py",),
    ),
    Mutation(
        "run directory: two live runs share one",
        "lightning_labs/runtime/output_folder.py",
        "fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)",
        "fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)",
        ("tests/reliability/test_run_directory.py",),
    ),
    Mutation(
        "NaN stop: a diverged checkpoint named as good",
        "lightning_labs/training/module.py",
        "if finite and loss <= limit:",
        "if finite:",
        ("tests/reliability/test_faults.py",),
    ),
    Mutation(
        "compare: the seeds' std divides by n, not n - 1",
        "lightning_labs/runs/compare.py",
        "/ (len(values) - 1))",
        "/ len(values))",
        ("tests/test_compare_seeds.py",),
    ),
    Mutation(
        "parallel sweep: a shared lock lets two workers take one GPU slot",
        "lightning_labs/runtime/parallel_job.py",
        "fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)",
        "fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)",
        ("tests/test_sweep_launchers.py::test_each_worker_claims_its_own_gpu_slot_and_a_third_finds_none",),
    ),
    Mutation(
        "requeue: a requeued submitit job starts over (its own last.ckpt ignored)",
        "lightning_labs/runtime/requeue.py",
        "return path if under_submitit() and path.is_file() else None",
        "return None",
        (
            "tests/test_sweep_launchers.py::"
            "test_a_submitit_job_stopped_by_its_scheduler_is_requeued_and_resumes_from_its_own_checkpoint",
        ),
    ),
)


def run(mutation: Mutation) -> tuple[str, float]:
    """Apply ``mutation``, run its tests, restore the file; 'caught', 'SURVIVED' or 'error (exit N)'."""
    path = ROOT / mutation.file
    original = path.read_text()
    if original.count(mutation.old) != 1:
        raise SystemExit(f"{mutation.file} no longer holds exactly one {mutation.old!r}: update {__file__}")
    started = time.perf_counter()
    try:
        path.write_text(original.replace(mutation.old, mutation.new))
        done = subprocess.run(
            [*PYTEST, *mutation.tests],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    finally:
        path.write_text(original)
    outcome = {0: "SURVIVED", 1: "caught"}.get(done.returncode, f"error (exit {done.returncode})")
    return outcome, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the mutations whose name contains this")
    chosen = [m for m in MUTATIONS if parser.parse_args().only in m.name]
    rows = ["| mutation | file | tests run | result | seconds |", "|---|---|---|---|---:|"]
    for mutation in chosen:
        outcome, seconds = run(mutation)
        tests = ", ".join(f"`{Path(t).name}`" for t in mutation.tests)
        rows.append(f"| {mutation.name} | `{mutation.file}` | {tests} | {outcome} | {seconds:.0f} |")
        print(rows[-1], flush=True)
    print("\n".join(rows))
    return 0 if all("| caught |" in row for row in rows[2:]) else 1


if __name__ == "__main__":
    sys.exit(main())
