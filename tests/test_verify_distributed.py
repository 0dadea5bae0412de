"""verify --nproc: training under torch.distributed (gloo on the CPU), rank 0 reporting."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="verify needs the [verify] extra")
pytest.importorskip("torchinfo")
pytest.importorskip("sklearn")

import torch.nn.functional as F  # noqa: E402

from archcalc import analyze  # noqa: E402
from archcalc.errors import ArchcalcError  # noqa: E402
from tests.conftest import ROOT, SPECS  # noqa: E402
from verify import distributed  # noqa: E402

needs_distributed = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="this PyTorch build has no torch.distributed"
)
#: A small spec and few steps: each --nproc run costs about 15 s on 2 cores, most of it the
#: launcher and three interpreters importing torch.
SMALL = ["specs/mlp4.yaml", "--set", "width=64", "--seeds", "1", "--schemes", "recommended"]


@pytest.mark.parametrize("count, size", [(1437, 2), (1437, 3), (360, 4), (5, 8), (0, 2), (10, 1)])
def test_shards_are_disjoint_and_cover_the_data(count, size):
    parts = [distributed.shard(count, rank, size).tolist() for rank in range(size)]
    together = sorted(i for part in parts for i in part)
    assert together == list(range(count))  # every sample, none twice
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.parametrize("batch, size", [(64, 1), (64, 2), (64, 3), (5, 5), (7, 4)])
def test_the_ranks_shares_add_up_to_the_global_batch(batch, size):
    shares = [distributed.local_batch(batch, rank, size) for rank in range(size)]
    assert sum(shares) == batch and max(shares) - min(shares) <= 1


def test_the_job_is_read_from_torchruns_variables():
    assert distributed.environment({}) is None
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    world = distributed.environment(env)
    assert world == distributed.World(rank=1, local_rank=1, size=2, local_size=2)
    assert not world.main
    with pytest.raises(ArchcalcError, match="expected 0 <= RANK < WORLD_SIZE. Found RANK=2"):
        distributed.environment({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(ArchcalcError, match="expected integer RANK and WORLD_SIZE"):
        distributed.environment({"RANK": "x", "WORLD_SIZE": "2"})


def test_threads_share_the_cores_between_processes():
    from verify.runner import _cores, pick_threads

    resnet, lenet = analyze(SPECS / "zoo/resnet18.yaml"), analyze(SPECS / "lenet5.yaml")
    threads, why = pick_threads(resnet, 32, processes=2)
    assert threads == max(1, _cores() // 2) and f"{_cores()} cores shared by 2 processes" in why
    assert pick_threads(lenet, 32, processes=2)[0] == 1  # small: one thread each


def test_requests_that_cannot_run_fail_before_any_process_starts(monkeypatch, capsys):
    from archcalc.cli import main

    monkeypatch.chdir(ROOT)
    assert main(["verify", *SMALL, "--nproc", "2", "--batch-size", "1"]) == 1
    assert "expected a --batch-size of at least one sample a process" in capsys.readouterr().err
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["verify", *SMALL, "--nproc", "3"]) == 1
    assert "--nproc 3: expected 2 or none" in capsys.readouterr().err


def _ddp_step(rank: int, size: int, store: str, out: str) -> None:
    """One training step of rank ``rank`` under DDP (torch.multiprocessing.spawn's target)."""
    import torch.distributed as dist

    from verify.build import build
    from verify.data import load
    from verify.train import train

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=size)
    data = load("digits", (784,))
    torch.manual_seed(0)
    model = build(SPECS / "mlp4.yaml", width=32)
    world = distributed.World(rank, rank, size, size)
    train(model, data, 1, batch_size=8, lr=0.1, progress=False, world=world)
    if rank == 0:
        torch.save(model.state_dict(), out)
    dist.destroy_process_group()


@needs_distributed
def test_one_ddp_step_on_2_processes_is_the_one_process_step_on_the_same_8_samples(tmp_path):
    """The global batch is kept: each rank's N/B-scaled summed loss, averaged by DDP, is the
    mean gradient over the 8 samples the two ranks drew."""
    from verify.build import build
    from verify.data import load

    out = tmp_path / "ddp.pt"
    torch.multiprocessing.spawn(_ddp_step, args=(2, str(tmp_path / "store"), str(out)), nprocs=2)
    data = load("digits", (784,))
    drawn = []
    for rank in range(2):  # what rank r drew: 4 of its shard, with its generator
        part = distributed.shard(len(data.x_train), rank, 2)
        generator = torch.Generator().manual_seed(1_000_003 * rank)
        drawn.append(part[torch.randint(len(part), (4,), generator=generator)])
    index = torch.cat(drawn)
    torch.manual_seed(0)
    model = build(SPECS / "mlp4.yaml", width=32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = F.nll_loss(F.log_softmax(model(data.x_train[index]), dim=1), data.y_train[index])
    loss.backward()
    optimizer.step()
    ddp = torch.load(out)
    for name, value in model.state_dict().items():
        assert not torch.equal(value, before[name])  # the step moved every parameter
        torch.testing.assert_close(ddp[name], value, rtol=1e-5, atol=1e-6)


def _archcalc(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "archcalc", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@needs_distributed
def test_nproc_2_trains_on_the_digits_and_rank_0_reports():
    proc = _archcalc("verify", *SMALL, "--nproc", "2", "--steps", "40", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)  # one document: the other rank printed nothing
    assert (data["processes"], data["backend"], data["batch_size"]) == (2, "gloo", 64)
    assert data["passed"] and data["threads"] == 1
    kinds = {check["name"].split(":")[0] for check in data["checks"]}
    assert {"shape", "params", "macs", "torchinfo", "memory", "init", "training"} <= kinds
    assert data["training"]["steps"] == 40 and data["training"]["test_accuracy"] > 0.5
    assert "Traceback" not in proc.stderr and "error" not in proc.stderr


@needs_distributed
def test_nproc_a_failed_check_prints_the_report_and_exits_1():
    proc = _archcalc("verify", *SMALL, "--nproc", "2", "--steps", "1")  # the loss cannot fall
    seen = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"  # a rare failure, once: say all
    assert proc.returncode == 1, seen
    assert proc.stdout.startswith("verify mlp4 on cpu, 2 processes (gloo)"), seen
    assert "FAIL training:loss" in proc.stdout, seen
    assert "on 2 processes (gloo), global batch 64 (32 a process)" in proc.stdout, seen
    assert "error" not in proc.stderr, seen  # a failed check, not a failed process


@needs_distributed
def test_nproc_an_error_in_the_workers_is_one_line(tmp_path):
    proc = _archcalc("verify", *SMALL, "--nproc", "2", "--data", str(tmp_path / "none.npz"))
    assert proc.returncode == 1 and proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("archcalc: error: --nproc 2: process ")
    assert "none.npz: cannot read data" in errors[0]
    assert "Traceback" not in proc.stderr
