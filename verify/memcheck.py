"""Check 9: the bytes autograd keeps for backward, measured with saved-tensor hooks.

One forward pass of the built model in training mode at a small batch, with
``torch.autograd.graph.saved_tensors_hooks`` recording every tensor saved for
backward; storages are counted once, whole, and those of parameters and buffers
not at all (they are the model, not its activations). archcalc's ``saved_bytes``
must agree within 1%. On a GPU, ``torch.cuda.max_memory_allocated`` over one training
step (forward, backward, an Adam step) is reported beside archcalc's peak estimate.
"""

from __future__ import annotations

import torch
from torch import nn

from archcalc.quantities.analysis import Analysis
from archcalc.quantities.memory import training_memory
from verify.checks import Check

TOLERANCE = 0.01


def measure_saved_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Deduplicated bytes of the tensors autograd saves in one training-mode forward pass."""
    was_training = model.training
    model.train()
    excluded = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key not in excluded and storage.nbytes():
            storages[key] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)  # kept alive until the storages are counted (no address is reused)
    del out
    model.train(was_training)
    return sum(storages.values())


def peak_bytes_cuda(model: nn.Module, x: torch.Tensor) -> int:
    """torch.cuda.max_memory_allocated over one training step (forward, backward, Adam)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    for _ in range(2):  # the second step has the optimizer state of a steady run
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        out = model(x)
        loss = sum(o.float().sum() for o in (out if isinstance(out, tuple) else (out,)))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        del out, loss
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated()


def memory_checks(
    analysis: Analysis, model: nn.Module, device: torch.device, batch: int = 2
) -> tuple[list[Check], list[str]]:
    """Check 9, and on CUDA a note with the measured peak."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *[int(n) for n in analysis.input], generator=generator).to(device)
    kind = "cuda" if device.type == "cuda" else "cpu"
    predicted = training_memory(analysis, batch=batch, device=kind)
    measured = measure_saved_bytes(model, x)
    expected = int(predicted.saved_bytes)
    close = abs(measured - expected) <= TOLERANCE * max(expected, 1)
    detail = (f"bytes saved for backward at batch {batch} ({kind}), shared storage once, parameters "
              f"and buffers excluded; within {TOLERANCE:.0%}")  # fmt: skip
    checks = [Check("memory:saved_bytes", close, expected, measured, detail)]
    notes = []
    if device.type == "cuda":
        peak = peak_bytes_cuda(model, x)
        notes.append(
            f"memory: one training step (Adam) at batch {batch} peaked at {peak:,} bytes "
            f"(torch.cuda.max_memory_allocated); archcalc's estimate {int(predicted.peak_bytes):,}"
        )
    return checks, notes
