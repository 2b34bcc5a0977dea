"""DDP on CPU processes (Gloo): sharding, synced metrics, one run directory, launchers, failures.

Every distributed run is a subprocess with a time limit: Lightning starts the extra ranks by
re-running the command line, and a broken job must fail the test, not hang it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from data_files import write_mnist

from lightning_labs.checkpoints.restore import load_checkpoint
from lightning_labs.inference.evaluate import evaluate
from lightning_labs.runtime.launch import run_stamp
from lightning_labs.training.run import build

PROBES = Path(__file__).parent / "probes"
TWO_CPU_PROCESSES = ("trainer=ddp_cpu", "trainer.devices=2")
QUICK = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=8",
    "trainer.log_every_n_steps=2",
    "trainer.enable_progress_bar=false",
    "callbacks.rich_progress_bar=null",
    "callbacks.model_facts=null",
    "data.batch_size=32",
]


@pytest.fixture(scope="module")
def odd_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real digits with a test split of odd size: two ranks cannot split it evenly."""
    return write_mnist(tmp_path_factory.mktemp("ddp-data"), n_train=1000, n_test=301)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(command: list[str], timeout: float = 240, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(PROBES), **env}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=environment, stdin=subprocess.DEVNULL
    )


def train_command(data: Path, outputs: Path, *overrides: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lightning_labs.train",
        f"paths.data_dir={data}",
        f"paths.log_dir={outputs}",
        *QUICK,
        *overrides,
    ]


def only_run_dir(outputs: Path) -> Path:
    """The one run directory under ``outputs`` (asserting there is exactly one)."""
    runs = [p.parent for p in outputs.rglob("metrics.json")]
    assert len(runs) == 1, runs
    assert len(list(outputs.rglob(".hydra"))) == 1
    assert len(list(outputs.rglob("train.log"))) == 1
    return runs[0]


def test_two_cpu_processes_shard_the_data_and_report_what_one_process_computes(
    odd_mnist: Path, tmp_path: Path, make_cfg
) -> None:
    shards = tmp_path / "shards"
    result = launch(
        train_command(
            odd_mnist,
            tmp_path / "outputs",
            *TWO_CPU_PROCESSES,
            "optimizer.scale_lr=linear",
            "+callbacks.shards._target_=ddp_probes.RecordShards",
            f"+callbacks.shards.out_dir={shards}",
        )
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run_dir(tmp_path / "outputs")

    # One set of outputs, written by rank 0 only.
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert len(list(run.rglob("hparams.yaml"))) == 1  # one TensorBoard run
    log = (run / "train.log").read_text()
    assert "GLOBAL_RANK: 0" in log and "GLOBAL_RANK: 1" not in log
    assert "Global batch 64 = 32 per device x 2 devices x 1 nodes x 1 accumulated" in log
    assert "scale_lr=linear: 0.003 x 64/32" in log
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["hyper_parameters"]["optimizer"]["lr"] == 0.006

    # Each rank a distinct shard: training split padded to equal shares (900 images: even),
    # evaluation splits split exactly, the odd test image counted once.
    ranks = [json.loads((shards / f"shards-rank{r}.json").read_text()) for r in (0, 1)]
    for split, size in (("train", 900), ("val", 100), ("test", 301)):
        first, second = (set(rank[split]) for rank in ranks)
        assert not first & second, split
        assert first | second == set(range(size)), split
    assert [rank["test_images"] for rank in ranks] == [151, 150]
    assert [rank["train_images"] for rank in ranks] == [8 * 32, 8 * 32]

    # The synced test metrics are those of one process testing the same checkpoint on the same data.
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    single = evaluate(
        make_cfg(
            f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}",
            "trainer=cpu",
            "trainer.enable_progress_bar=false",
            f"paths.output_dir={tmp_path / 'eval'}",
            config_name="eval",
        )
    )
    assert metrics["test/acc"] == pytest.approx(single["test/acc"], abs=1e-7)
    assert metrics["test/loss"] == pytest.approx(single["test/loss"], rel=1e-5)
    assert 0.2 < metrics["test/acc"] < 1  # it trained (chance is 0.1)


@pytest.mark.parametrize("failing_rank", [0, 1])
def test_a_rank_that_raises_ends_the_whole_job(odd_mnist: Path, tmp_path: Path, failing_rank: int) -> None:
    started = time.monotonic()
    result = launch(
        train_command(
            odd_mnist,
            tmp_path / "outputs",
            *TWO_CPU_PROCESSES,
            "+callbacks.fail._target_=ddp_probes.FailOnRank",
            f"+callbacks.fail.rank={failing_rank}",
            "+callbacks.fail.at_step=3",
        ),
        timeout=180,
    )
    assert result.returncode == 1, result.stderr[-3000:]  # clear_errors' status, not a crash or a kill
    assert time.monotonic() - started < 120  # a collective never waits out its 30-minute timeout
    assert f"RuntimeError: probe failure on rank {failing_rank} at step 3" in " ".join(
        (result.stdout + result.stderr).split()
    )


def test_two_nodes_started_by_torchrun_share_one_run_directory(odd_mnist: Path, tmp_path: Path) -> None:
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--nproc-per-node=1",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{free_port()}",
        "--rdzv-id=two-nodes",
    ]
    command = (
        torchrun
        + train_command(
            odd_mnist, tmp_path / "outputs", "trainer=ddp_cpu", "trainer.devices=1", "trainer.num_nodes=2"
        )[1:]
    )
    environment = {**os.environ, "PYTHONPATH": str(PROBES), "OMP_NUM_THREADS": "1"}
    nodes = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment
        )
        for _ in range(2)
    ]
    outputs = [node.communicate(timeout=240)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    run = only_run_dir(tmp_path / "outputs")
    assert run.name == "torchrun-two-nodes"
    assert "32 per device x 1 devices x 2 nodes" in (run / "train.log").read_text()


def test_srun_tasks_are_recognised_as_a_slurm_job(odd_mnist: Path, tmp_path: Path) -> None:
    """Two processes with the variables srun sets for a 1-node, 2-task step (Lightning's SLURM
    environment reads them), running the command of scripts/slurm/train.sbatch."""
    slurm = {
        "SLURM_JOB_ID": "4242",
        "SLURM_STEP_ID": "0",
        "SLURM_JOB_NAME": "train",
        "SLURM_NTASKS": "2",
        "SLURM_NTASKS_PER_NODE": "2",
        "SLURM_NNODES": "1",
        "SLURM_NODEID": "0",
        "SLURM_NODELIST": "localhost",
        "MASTER_PORT": str(free_port()),
    }
    command = train_command(odd_mnist, tmp_path / "outputs", "trainer=ddp_cpu", "trainer.num_nodes=1")
    environment = {**os.environ, "PYTHONPATH": str(PROBES), "OMP_NUM_THREADS": "1", **slurm}
    tasks = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**environment, "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)},
        )
        for rank in (0, 1)
    ]
    outputs = [task.communicate(timeout=240)[0] for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert only_run_dir(tmp_path / "outputs").name == "slurm-4242.0"


def test_the_slurm_script_is_valid_bash() -> None:
    script = Path(__file__).parents[1] / "scripts" / "slurm" / "train.sbatch"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    assert (
        "srun python -m lightning_labs.train trainer=ddp trainer.num_nodes=$SLURM_NNODES"
        in script.read_text()
    )


def test_a_sweep_with_a_ddp_trainer_is_refused_before_training(odd_mnist: Path, tmp_path: Path) -> None:
    command = train_command(odd_mnist, tmp_path / "outputs", "trainer=ddp_cpu", "model.pool=max,avg")
    result = launch([*command[:3], "-m", *command[3:]], timeout=120)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "RuntimeError: A sweep (-m) cannot use a DDP trainer" in " ".join(result.stderr.split())
    assert not list((tmp_path / "outputs").rglob("metrics.json"))
    assert not list((tmp_path / "outputs").rglob("*.ckpt"))


def test_torchrun_without_a_rendezvous_id_is_refused(odd_mnist: Path, tmp_path: Path) -> None:
    result = launch(
        train_command(odd_mnist, tmp_path / "outputs", "trainer=ddp_cpu"),
        timeout=120,
        TORCHELASTIC_RUN_ID="none",
        WORLD_SIZE="2",
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert (
        "RuntimeError: torchrun started this job without a rendezvous id, so its ranks cannot agree on "
        "one run directory. Add --rdzv-id=<a name unique to this job>"
    ) in " ".join((result.stdout + result.stderr).split())


@pytest.mark.parametrize(
    ("env", "stamp"),
    [
        ({"TORCHELASTIC_RUN_ID": "job7", "WORLD_SIZE": "4"}, "torchrun-job7"),
        ({"SLURM_JOB_ID": "99", "SLURM_STEP_ID": "2", "SLURM_NTASKS": "8"}, "slurm-99.2"),
        (
            {"SLURM_JOB_ID": "99", "SLURM_ARRAY_TASK_ID": "5", "SLURM_STEP_ID": "0", "SLURM_NTASKS": "2"},
            "slurm-99_5.0",
        ),
    ],
)
def test_ranks_of_one_launch_name_the_same_run_directory(
    monkeypatch, env: dict[str, str], stamp: str
) -> None:
    for name in ("TORCHELASTIC_RUN_ID", "WORLD_SIZE", "SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert run_stamp() == stamp


def test_linear_scaling_follows_the_global_batch_into_the_scheduler(make_cfg) -> None:
    cfg = make_cfg(
        "trainer=ddp_cpu",
        "trainer.devices=2",
        "trainer.accumulate_grad_batches=2",
        "data.batch_size=64",
        "optimizer.scale_lr=linear",
        "optimizer.base_batch_size=128",
        "optimizer.lr=0.01",
        "scheduler=onecycle",
    )
    hparams = build(cfg)["model"].hparams  # builds the trainer, launches nothing
    assert hparams.optimizer["lr"] == pytest.approx(0.01 * 256 / 128)
    assert hparams.scheduler["max_lr"] == pytest.approx(0.01 * 256 / 128)
    assert "scale_lr" not in hparams.optimizer and "base_batch_size" not in hparams.optimizer


def test_an_unknown_scaling_rule_is_refused(make_cfg) -> None:
    with pytest.raises(
        ValueError, match=r"optimizer.scale_lr=.sqrt. is not a scaling rule; use linear or null"
    ):
        build(make_cfg("optimizer.scale_lr=sqrt"))


@pytest.mark.gpu
def test_ddp_on_one_gpu_trains_and_tests(odd_mnist: Path, tmp_path: Path) -> None:
    result = launch(train_command(odd_mnist, tmp_path / "outputs", "trainer=ddp", "trainer.devices=1"))
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((only_run_dir(tmp_path / "outputs") / "metrics.json").read_text())["metrics"]
    assert metrics["test/acc"] > 0.2
