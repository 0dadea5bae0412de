"""verify's training across processes: ``archcalc verify SPEC --nproc N`` and torchrun.

``--nproc N`` makes the ``archcalc`` process a launcher: torch's elastic launcher (torchrun's
API, a standalone rendezvous on localhost at a free port) starts N copies of the same command.
Each copy finds ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in its environment, as it does under
a user's own ``torchrun --nproc-per-node N -m archcalc verify SPEC``, joins the process group
(NCCL on GPUs, each process on ``cuda:LOCAL_RANK``; gloo on the CPU) and trains its shard of
the data under DistributedDataParallel. Rank 0 runs the static checks and prints the report;
the other ranks print nothing.

The global batch is ``--batch-size`` whatever N is: rank r takes ``B // N`` samples a step
(one more for the first ``B % N`` ranks) and scales its summed loss by ``N / B``, so that DDP's
average of the ranks' gradients is the mean gradient over the B samples, as in one process.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn

from archcalc.errors import ArchcalcError

#: How long a collective (or the joining of the group) may wait for the other processes
#: before it fails instead of hanging. Training runs before rank 0's static checks, so no
#: rank waits on another's long solo work; a step or an evaluation is the longest wait.
TIMEOUT = timedelta(minutes=10)
#: Set by the launcher in its workers' environment: the file where rank 0 writes whether every
#: check passed (the workers exit 0 and the launcher returns the status; an exit code of 1
#: would read as a crashed worker to torch's launcher).
STATUS_ENV = "ARCHCALC_VERIFY_STATUS"


@dataclass(frozen=True)
class World:
    """This process's place in a torchrun job (from its environment)."""

    rank: int
    local_rank: int
    size: int
    local_size: int

    @property
    def main(self) -> bool:
        return self.rank == 0


def environment(environ: Mapping[str, str] | None = None) -> World | None:
    """The job this process belongs to, or None when it was not started by torchrun."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return None
    try:
        size, rank = int(env["WORLD_SIZE"]), int(env["RANK"])
        local_rank = int(env.get("LOCAL_RANK", rank))
        local_size = int(env.get("LOCAL_WORLD_SIZE", size))
    except ValueError:
        raise ArchcalcError(
            f"expected integer RANK and WORLD_SIZE (torchrun sets them). "
            f"Found RANK={env['RANK']!r}, WORLD_SIZE={env['WORLD_SIZE']!r}"
        ) from None
    if not 0 <= rank < size:
        raise ArchcalcError(
            f"expected 0 <= RANK < WORLD_SIZE. Found RANK={rank}, WORLD_SIZE={size}"
        )
    return World(rank, local_rank, size, local_size)


def backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def check_request(nproc: int, batch_size: int, device: torch.device) -> None:
    """What ``--nproc`` needs, checked before any process starts."""
    if nproc < 1:
        raise ArchcalcError(f"--nproc: expected a positive integer. Received: {nproc}")
    if not torch.distributed.is_available():
        raise ArchcalcError(
            f"--nproc {nproc}: this PyTorch build has no torch.distributed "
            "(torch.distributed.is_available() is False)"
        )
    check_batch(batch_size, nproc)
    if device.type == "cuda" and torch.cuda.device_count() < nproc:
        raise ArchcalcError(
            f"--nproc {nproc} on CUDA: expected at most one process a GPU. "
            f"Found {torch.cuda.device_count()} GPU(s) (--device cpu trains on the CPU)"
        )


def check_batch(batch_size: int, processes: int) -> None:
    if batch_size < processes:
        raise ArchcalcError(
            f"{processes} training processes: expected a --batch-size of at least one sample a "
            f"process. Received: --batch-size {batch_size}"
        )


def place(device: torch.device, world: World) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` on GPUs, else ``device``."""
    if device.type != "cuda":
        return device
    if world.local_rank >= torch.cuda.device_count():
        raise ArchcalcError(
            f"process {world.rank} needs GPU {world.local_rank} (LOCAL_RANK). "
            f"Found {torch.cuda.device_count()} GPU(s)"
        )
    torch.cuda.set_device(world.local_rank)
    return torch.device("cuda", world.local_rank)


def join(world: World, device: torch.device) -> None:
    """Initialise the default process group from the environment (torchrun's variables)."""
    import torch.distributed as dist

    if dist.is_initialized():
        return
    try:
        dist.init_process_group(backend(device), timeout=TIMEOUT, rank=world.rank,
                                world_size=world.size)  # fmt: skip
    except (RuntimeError, ValueError) as err:
        raise ArchcalcError(
            f"process {world.rank} of {world.size} could not join the process group "
            f"({backend(device)}): {_first_line(err)}"
        ) from None


def leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def shard(count: int, rank: int, size: int) -> torch.Tensor:
    """Rank ``rank``'s indices of ``count`` samples: every ``size``-th from ``rank`` (the
    data are already in a fixed random order). Disjoint, and together all of them."""
    return torch.arange(count)[rank::size]  # empty where rank >= count


def local_batch(batch_size: int, rank: int, size: int) -> int:
    """Rank ``rank``'s share of the global batch (the shares add up to ``batch_size``)."""
    return batch_size // size + (rank < batch_size % size)


def wrap(model: nn.Module, device: torch.device, notes: list[str]) -> nn.Module:
    """The model under DistributedDataParallel; on GPUs its batch norms synchronised (their
    statistics over the global batch, as in one process)."""
    from torch.nn.parallel import DistributedDataParallel

    norms = [path for path, module in model.node_modules.items()
             if isinstance(module, nn.modules.batchnorm._BatchNorm)]  # fmt: skip
    if norms and device.type == "cuda":
        for path in norms:
            model.replace(path, nn.SyncBatchNorm.convert_sync_batchnorm(model.node_modules[path]))
        notes.append(
            f"{len(norms)} batch norm layer(s) as SyncBatchNorm: statistics over the global batch"
        )
    elif norms:
        notes.append("batch norm statistics are each process's own (its share of the batch): "
                     "SyncBatchNorm needs GPUs")  # fmt: skip
    return DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        # an auxiliary head's parameters get no gradient (training uses the first output)
        find_unused_parameters=len(model.output_paths) > 1,
    )


def sum_all(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum over the ranks."""
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def share_buffers(model: nn.Module) -> None:
    """Rank 0's buffers (batch norm running statistics) to every rank, before an evaluation."""
    import torch.distributed as dist

    for buffer in model.buffers():
        dist.broadcast(buffer, 0)


# ----------------------------------------------------------------------------- the launcher


def launch(argv: Sequence[str], nproc: int) -> int:
    """Run ``archcalc ARGV`` as ``nproc`` processes (torchrun's launcher); rank 0's status.

    A failed process becomes one ArchcalcError line: the first failure's own message."""
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    with tempfile.TemporaryDirectory(prefix="archcalc-nproc-") as tmp:
        status = Path(tmp) / "status"
        config = LaunchConfig(
            min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
            rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
            monitor_interval=0.1, logs_specs=DefaultLogsSpecs(log_dir=str(Path(tmp) / "logs")),
        )  # fmt: skip
        saved = os.environ.get(STATUS_ENV)
        os.environ[STATUS_ENV] = str(status)
        try:
            with _quiet_launcher():
                elastic_launch(config, sys.executable)("-m", "archcalc", *argv)
        except ChildFailedError as err:
            raise ArchcalcError(f"--nproc {nproc}: {_failure(err)}") from None
        except SignalException:  # Ctrl-C or a kill: the launcher stopped the processes
            raise KeyboardInterrupt from None
        finally:
            if saved is None:
                os.environ.pop(STATUS_ENV, None)
            else:
                os.environ[STATUS_ENV] = saved
        if not status.exists():
            raise ArchcalcError(
                f"--nproc {nproc}: expected process 0 to report its checks; it exited without"
            )
        return int(status.read_text())


class _quiet_launcher:
    """torch's launcher logs its configuration and each worker's exit (INFO and WARNING, each
    of its modules' loggers at its own level); the report and a one-line error say what
    matters."""

    PREFIXES = ("torch.distributed.elastic", "torch.distributed.launcher")

    def __enter__(self) -> None:
        import logging

        import torch.distributed.elastic.agent.server.local_elastic_agent  # noqa: F401 (loggers)

        names = [name for name in logging.root.manager.loggerDict
                 if name.startswith(self.PREFIXES)]  # fmt: skip
        self.loggers = [logging.getLogger(name) for name in names]
        self.levels = [logger.level for logger in self.loggers]
        for logger in self.loggers:
            logger.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        for logger, level in zip(self.loggers, self.levels):
            logger.setLevel(level)


def _failure(err: Exception) -> str:
    """The root cause among the failed processes: an archcalc error before an internal one
    before a lost peer (another process's failure seen from here) before an exit without a
    message before SIGTERM (the launcher stopping the others); then the earliest."""
    found = []
    for rank, failure in err.failures.items():  # type: ignore[attr-defined]
        data = failure.error_file_data if isinstance(failure.error_file_data, dict) else {}
        kind = data.get("archcalc_kind")
        order = {"archcalc": 0, "internal": 1, "peer": 2}.get(kind, 3)
        when = data.get("archcalc_time", failure.timestamp)
        if kind is not None:
            text = data["message"]
        elif failure.exitcode < 0:
            text = f"killed by signal {failure.signal_name()}"
            if failure.signal_name() == "SIGTERM":  # how the launcher stops the others
                order = 4
        else:
            text = f"exited with code {failure.exitcode}"
        found.append((order, when, rank, text))
    order, _, rank, text = min(found)
    return f"process {rank}: {text}"


def record(err: BaseException) -> str:
    """Write ``err`` where torch's launcher reads a worker's error (TORCHELASTIC_ERROR_FILE,
    set by torchrun and by ``--nproc``); returns its one-line message."""
    from archcalc.errors import ArchcalcError as Known

    if isinstance(err, Known):
        kind, text = "archcalc", "; ".join(err.lines())
    elif _peer_lost(err):
        kind, text = "peer", f"lost contact with another process: {_first_line(err)}"
    else:
        kind, text = "internal", f"internal error: {type(err).__name__}: {_first_line(err)}"
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if path:
        data = {"message": text, "timestamp": int(time.time()), "archcalc_kind": kind,
                "archcalc_time": time.time()}  # fmt: skip
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data))
    return text


def _peer_lost(err: BaseException) -> bool:
    import torch.distributed as dist

    if isinstance(err, getattr(dist, "DistError", ())):
        return True
    text = str(err).lower()
    return any(s in text for s in ("connection closed by peer", "connection reset", "broken pipe",
                                   "gloo", "nccl"))  # fmt: skip


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def report_status(passed: bool) -> bool:
    """Under ``--nproc``: write rank 0's status for the launcher; True if written."""
    path = os.environ.get(STATUS_ENV)
    if not path:
        return False
    Path(path).write_text("0" if passed else "1")
    return True
