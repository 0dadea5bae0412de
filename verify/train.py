"""Check 6: train on real data and record loss and accuracy curves."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archcalc.errors import ArchcalcError
from verify import distributed
from verify.checks import Check
from verify.data import Dataset
from verify.distributed import World


@dataclass
class TrainResult:
    scheme: str
    steps: int
    losses: list[float] = field(default_factory=list)
    curve: list[dict[str, float]] = field(default_factory=list)  # step, train/test accuracy
    final_loss: float = float("nan")
    train_accuracy: float = float("nan")
    test_accuracy: float = float("nan")
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "steps": self.steps, "final_loss": self.final_loss,
                "train_accuracy": self.train_accuracy, "test_accuracy": self.test_accuracy,
                "seconds": self.seconds, "losses": self.losses, "curve": self.curve}  # fmt: skip


def _log_probabilities(
    model: nn.Module, x: torch.Tensor, classes: int, softmax: bool | None = None
) -> torch.Tensor:
    """``softmax``: whether the model ends with one (default: its ``ends_with_softmax``; a
    DistributedDataParallel wrapper does not have it)."""
    out = model(x)
    if isinstance(out, tuple):  # several outputs (an auxiliary head): train on the first
        out = out[0]
    if out.dim() != 2 or out.shape[1] < classes:
        raise ArchcalcError(
            f"training needs a flat output with at least {classes} units (one per class); "
            f"the spec's output is {list(out.shape[1:])}"
        )
    if softmax is None:
        softmax = model.ends_with_softmax
    if softmax:  # probabilities: the first `classes` entries, renormalised
        return torch.log(out[:, :classes].clamp_min(1e-12))
    return F.log_softmax(out[:, :classes], dim=1)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: int, batch: int = 256,
             world: World | None = None) -> float:  # fmt: skip
    """The fraction of ``x`` classified as ``y``; under torch.distributed ``x`` and ``y`` are
    this rank's shard, the counts summed over the ranks (every rank holds the same weights;
    rank 0's buffers are shared first)."""
    model.eval()
    correct = 0
    for start in range(0, len(x), batch):
        logp = _log_probabilities(model, x[start : start + batch], classes)
        correct += int((logp.argmax(dim=1) == y[start : start + batch]).sum())
    total = len(x)
    if world is not None:
        correct, total = (int(v) for v in distributed.sum_all([correct, total], x.device))
    return correct / max(total, 1)


def train(model: nn.Module, data: Dataset, steps: int, batch_size: int = 64, lr: float = 0.01,
          momentum: float = 0.9, seed: int = 0, scheme: str = "recommended",
          progress: bool = True, world: World | None = None,
          notes: list[str] | None = None) -> TrainResult:  # fmt: skip
    """SGD with momentum on ``data`` (cross-entropy on the first ``classes`` outputs).

    Under torch.distributed (``world``, the process group joined) each rank trains its shard
    of the training set under DistributedDataParallel; the global batch stays ``batch_size``
    (see :mod:`verify.distributed`), the losses and accuracies are the global ones."""
    device = next(model.parameters()).device
    rank, size = (world.rank, world.size) if world is not None else (0, 1)
    train_part = distributed.shard(len(data.x_train), rank, size)
    test_part = distributed.shard(len(data.x_test), rank, size)
    x_train, y_train = data.x_train[train_part].to(device), data.y_train[train_part].to(device)
    x_test, y_test = data.x_test[test_part].to(device), data.y_test[test_part].to(device)
    first_output = model.node_modules[model.output_paths[0]]
    model.ends_with_softmax = isinstance(first_output, nn.Softmax)
    net = (
        model if world is None else distributed.wrap(model, device, [] if notes is None else notes)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    if world is not None:  # the same weights everywhere (DDP broadcast them); dropout differs
        torch.manual_seed(seed + 1_000_003 * rank)
    generator = torch.Generator().manual_seed(seed + 1_000_003 * rank)  # rank 0: as one process
    local = distributed.local_batch(batch_size, rank, size)
    result = TrainResult(scheme, steps)
    every = max(steps // 20, 1)
    bar = _progress(steps, f"training ({scheme})") if progress else None
    checkpoints: list[tuple[int, float]] = []
    start = time.perf_counter()
    for step in range(1, steps + 1):
        net.train()
        index = torch.randint(len(x_train), (local,), generator=generator).to(device)
        logp = _log_probabilities(net, x_train[index], data.classes, model.ends_with_softmax)
        if world is None:
            loss = F.nll_loss(logp, y_train[index])
        else:  # DDP averages the ranks' gradients: N/B x the summed loss gives the batch mean
            loss = F.nll_loss(logp, y_train[index], reduction="sum") * (size / batch_size)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        # under DDP: this rank's share of the batch mean (the shares are summed after the loop)
        result.losses.append(loss.item() / size)
        if step % every == 0 or step == steps:
            checkpoints.append((step, _evaluate(model, x_test, y_test, data.classes, world)))
        if bar is not None:
            mean = result.losses[-1] * batch_size / local  # this rank's samples
            bar.set_postfix(loss=f"{mean:.3f}", refresh=False)
            bar.update(1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    result.seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    if world is not None and steps:  # each rank's share of the batch mean, summed
        result.losses = distributed.sum_all(result.losses, device)
    for step, test_accuracy in checkpoints:
        window = result.losses[max(step - every, 0) : step]
        result.curve.append({"step": step, "loss": sum(window) / len(window),
                             "test_accuracy": test_accuracy})  # fmt: skip
    tail = result.losses[-max(steps // 10, 1) :] if steps else []
    result.final_loss = sum(tail) / len(tail) if tail else float("nan")
    result.train_accuracy = _evaluate(model, x_train, y_train, data.classes, world)
    result.test_accuracy = _evaluate(model, x_test, y_test, data.classes, world)
    return result


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: int,
              world: World | None) -> float:  # fmt: skip
    if world is not None:
        distributed.share_buffers(model)
    return accuracy(model, x, y, classes, world=world)


def _progress(total: int, description: str):
    """A tqdm bar on a terminal; elsewhere (CI logs, pipes) a plain line at every quarter."""
    if not sys.stderr.isatty():
        return _Lines(total, description)
    try:
        from tqdm import tqdm
    except ImportError:
        return _Lines(total, description)
    return tqdm(total=total, desc=description, file=sys.stderr, leave=False)


class _Lines:
    """tqdm's update/set_postfix/close as a few plain lines: no carriage returns in a log."""

    def __init__(self, total: int, description: str) -> None:
        self.total, self.description, self.done, self.postfix = total, description, 0, ""
        self.every = max(total // 4, 1)
        self.start = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        if self.done % self.every == 0 or self.done == self.total:
            elapsed = time.perf_counter() - self.start
            print(f"{self.description}: step {self.done}/{self.total}{self.postfix}, "
                  f"{elapsed:.1f} s", file=sys.stderr, flush=True)  # fmt: skip

    def set_postfix(self, refresh: bool = True, **values: str) -> None:  # noqa: ARG002
        self.postfix = "".join(f", {k} {v}" for k, v in values.items())

    def close(self) -> None:
        pass


def training_checks(result: TrainResult, classes: int) -> list[Check]:
    """Loss falls (last tenth of steps against the first) and accuracy rises above chance."""
    head = result.losses[: max(result.steps // 10, 1)]
    first = sum(head) / len(head)
    chance = 1 / classes
    return [
        Check("training:loss", result.final_loss < first, f"below {first:.4f} (first tenth)",
              round(result.final_loss, 4), f"{result.steps} steps, {result.scheme} init"),
        Check("training:accuracy", result.test_accuracy > chance + 0.1,
              f"above chance ({chance:.0%}) + 10 points", round(result.test_accuracy, 4),
              f"train accuracy {result.train_accuracy:.1%}, test accuracy {result.test_accuracy:.1%}"),
    ]  # fmt: skip
