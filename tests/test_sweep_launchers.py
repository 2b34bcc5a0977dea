"""Sweeps beyond one job at a time: the parallel launcher (own cores or GPUs per job), submitit
(a requeued job resumes from its own checkpoint), an Optuna search, and DDP jobs on SLURM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from lightning_labs.runtime.launch_checks import check_slurm_ranks

sys.path.insert(0, str(Path(__file__).parent / "reliability"))
from cli import QUICK, run_tool  # tests/reliability/cli.py: run a command as a user does

from hydra_plugins.lightning_labs_launcher.parallel import plan_jobs

SHORT = [*QUICK, "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"]


def job_dirs(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def test_parallel_jobs_share_the_cores_and_keep_their_dataloader_workers(
    data_root: Path, tmp_path: Path
) -> None:
    """Two jobs at once, each with 2 DataLoader worker processes (loky workers break the default
    start method unless it is put back), each on its own half of the cores with as many threads."""
    sweep = tmp_path / "sweep"
    result = run_tool(
        "train",
        "-m",
        "hydra/launcher=parallel",
        "model.act=relu,sigmoid",
        "data.pipeline=per_sample",
        "data.num_workers=2",
        *SHORT,
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=3",
        f"paths.data_dir={data_root}",
        f"hydra.sweep.dir={sweep}",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Traceback" not in output
    cores = sorted(os.sched_getaffinity(0))
    share = len(cores) // 2
    given = []
    for job, act in zip(job_dirs(sweep), ("relu", "sigmoid"), strict=True):
        assert (job / "metrics.json").is_file()
        # the job's own output is in its console.log, and the console has one line as it starts and ends
        assert "CONFIG" in (job / "console.log").read_text()
        assert f"#{job.name} model.act={act}: started" in output
        assert f"#{job.name} model.act={act}: done in" in output
        environment = json.loads((job / "environment.json").read_text())
        assert environment["torch_threads"] == share
        given.append(set(environment["cpu_affinity"]))
    assert given[0].isdisjoint(given[1]) and len(given[0]) == len(given[1]) == share
    assert "Sweep: 2 done, 0 failed" in result.stdout


def test_the_plan_gives_each_job_its_own_gpus_or_cores_and_refuses_to_share_a_gpu() -> None:
    four = ["0", "1", "2", "3"]
    plan = plan_jobs(jobs=8, gpus=four, cpus=list(range(16)), n_jobs=None, gpus_per_job=1)
    assert plan.n_jobs == 4 and plan.gpu_slots == [["0"], ["1"], ["2"], ["3"]]
    assert plan.cpu_slots == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]
    pairs = plan_jobs(jobs=8, gpus=four, cpus=list(range(16)), n_jobs=None, gpus_per_job=2)
    assert pairs.n_jobs == 2 and pairs.gpu_slots == [["0", "1"], ["2", "3"]]
    assert plan_jobs(jobs=3, gpus=four, cpus=list(range(16)), n_jobs=1, gpus_per_job=1).gpu_slots == [["0"]]
    with pytest.raises(ValueError, match=r"two jobs would share a GPU\. Use n_jobs<=2"):
        plan_jobs(jobs=8, gpus=four, cpus=list(range(16)), n_jobs=3, gpus_per_job=2)
    with pytest.raises(ValueError, match="gpus_per_job=5, but 4 GPU"):
        plan_jobs(jobs=8, gpus=four, cpus=list(range(16)), n_jobs=None, gpus_per_job=5)
    cpu = plan_jobs(jobs=4, gpus=[], cpus=[0, 1], n_jobs=None, gpus_per_job=1)
    assert cpu.n_jobs == 2 and cpu.gpu_slots == [] and cpu.cpu_slots == [[0], [1]]
    crowded = plan_jobs(jobs=4, gpus=[], cpus=[0, 1], n_jobs=4, gpus_per_job=1)
    assert crowded.n_jobs == 4 and crowded.cpu_slots == []  # more jobs than cores: the OS shares them


CLAIM = """
import json, os, sys, time
from lightning_labs.runtime.parallel_job import Plan, claim_slot
plan = Plan(n_jobs=2, gpu_slots=[["0"], ["1"]], cpu_slots=[], lock_dir=sys.argv[1])
print(claim_slot(plan), os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_each_worker_claims_its_own_gpu_slot_and_a_third_finds_none(tmp_path: Path) -> None:
    holders = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM, str(tmp_path), "20"], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        claimed = sorted(holder.stdout.readline().split() for holder in holders)  # type: ignore[union-attr]
        assert claimed == [["0", "0"], ["1", "1"]]  # slot number, and the only GPU the process sees
        third = subprocess.run(
            [sys.executable, "-c", CLAIM, str(tmp_path), "0"], capture_output=True, text=True
        )
        assert third.returncode != 0
        assert "Every device slot of this sweep is taken (2" in third.stderr
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
    time.sleep(0.1)  # the locks went with the processes: a new one gets a slot at once
    again = subprocess.run([sys.executable, "-c", CLAIM, str(tmp_path), "0"], capture_output=True, text=True)
    assert again.stdout.split() == ["0", "0"], again.stderr


def test_a_submitit_job_stopped_by_its_scheduler_is_requeued_and_resumes_from_its_own_checkpoint(
    data_root: Path, tmp_path: Path
) -> None:
    """USR2 (what submitit's SLURM launch sends before the time limit, and on pre-emption) at step
    8 of 12: the job saves at that batch, is requeued, resumes from its own last.ckpt, and ends
    with the weights and metrics of a run that was never stopped."""
    settings = [*SHORT, "trainer.max_epochs=2", "trainer.limit_train_batches=6", "seed=5"]
    settings += [f"paths.data_dir={data_root}"]
    sweep = tmp_path / "sweep"
    stopped = run_tool(
        "train",
        "-m",
        "hydra/launcher=submitit_local",
        *settings,
        "+callbacks.fault._target_=fault_probes.SignalAtStep",
        "+callbacks.fault.step=8",
        "+callbacks.fault.signal=SIGUSR2",
        f"hydra.sweep.dir={sweep}",
    )
    output = stopped.stdout + stopped.stderr
    assert stopped.returncode == 0, output[-3000:]
    job = sweep / "0"
    log = (job / "train.log").read_text()
    assert "SIGUSR2: time limit near, or pre-empted: saving at the next batch boundary" in log
    assert f"saved {job / 'checkpoints' / 'last.ckpt'} at step 8" in log
    assert f"Requeued job: resuming from its own {job / 'checkpoints' / 'last.ckpt'}" in log
    assert "Sweep: 1 done, 0 failed" in stopped.stdout

    straight = run_tool("train", *settings, f"hydra.run.dir={tmp_path / 'straight'}")
    assert straight.returncode == 0, straight.stderr[-3000:]
    resumed = torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)
    reference = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["global_step"] == reference["global_step"] == 12
    for name, tensor in reference["state_dict"].items():
        assert torch.equal(resumed["state_dict"][name], tensor), name
    final = json.loads((job / "metrics.json").read_text())["metrics"]
    assert (
        final["test/acc"]
        == json.loads((tmp_path / "straight" / "metrics.json").read_text())["metrics"]["test/acc"]
    )


def test_an_optuna_search_runs_its_trials_in_parallel_and_writes_the_best(
    data_root: Path, tmp_path: Path
) -> None:
    sweep = tmp_path / "search"
    result = run_tool(
        "train",
        "-m",
        "hparams_search=lenet5_optuna",
        "hydra.sweeper.n_trials=3",
        "hydra/launcher=parallel",
        *SHORT,
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=4",
        f"paths.data_dir={data_root}",
        f"hydra.sweep.dir={sweep}",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    trials = job_dirs(sweep)
    assert len(trials) == 3
    values = {}
    for trial in trials:
        metrics = json.loads((trial / "metrics.json").read_text())
        values[trial.name] = (metrics["metrics"]["val/acc_best"], metrics["overrides"])
        assert f"#{trial.name} optimizer.lr=" in output  # a line per trial, its parameters short
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    value, overrides = max(values.values(), key=lambda item: item[0])
    assert best["best_value"] == pytest.approx(value)
    searched = {o.split("=")[0]: o.split("=")[1] for o in overrides if "=" in o}
    for key, chosen in best["best_params"].items():
        assert key in ("optimizer.lr", "optimizer.weight_decay", "model.width", "model.act", "model.pool")
        assert str(chosen) == searched[key]
    assert f"Optuna best: value {value:.4g} with optimizer.lr=" in result.stdout
    assert f"Compare them: python -m lightning_labs.compare {sweep} --metric val/acc_best" in result.stdout


def test_a_ddp_sweep_on_slurm_must_give_one_task_per_device() -> None:
    trainer = OmegaConf.create({"accelerator": "gpu", "devices": 2, "num_nodes": 1, "strategy": "ddp"})
    launcher = OmegaConf.create({"tasks_per_node": 2, "nodes": 1, "gpus_per_node": 2})
    check_slurm_ranks(trainer, launcher)  # matches: no error
    for wrong in ({"tasks_per_node": 1}, {"gpus_per_node": 1}, {"nodes": 2}):
        with pytest.raises(RuntimeError, match="one rank per task") as refused:
            check_slurm_ranks(trainer, OmegaConf.merge(launcher, wrong))
        assert "trainer.devices=2 hydra.launcher.tasks_per_node=2" in str(refused.value)
    auto = OmegaConf.merge(trainer, {"devices": "auto"})
    with pytest.raises(RuntimeError, match=r"trainer\.devices=auto"):
        check_slurm_ranks(auto, launcher)


def test_a_mismatched_ddp_sweep_on_slurm_is_refused_before_anything_is_submitted(tmp_path: Path) -> None:
    result = run_tool(
        "train",
        "-m",
        "hydra/launcher=submitit_slurm",
        "trainer=ddp_cpu",
        "model.pool=max,avg",
        f"paths.log_dir={tmp_path}",
    )
    assert result.returncode == 1
    assert result.stderr.startswith("RuntimeError: A DDP sweep on SLURM runs one rank per task"), (
        result.stderr
    )
    assert not list(tmp_path.iterdir())  # nothing submitted, no sweep folder
