"""Checks 1-4: shapes, parameters, MACs and torchinfo against archcalc's numbers.

Every check can fail: each compares a number archcalc computed with the
same number measured on the PyTorch model, and reports both.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from archcalc.language.expr import product
from archcalc.quantities.analysis import Analysis, Row

#: Layer types whose arithmetic torch's FlopCounterMode does not count (archcalc: 0 MACs too).
FLOP_COUNTER_IGNORES = "pooling, normalisation, dropout, activations, flatten"


@dataclass
class Check:
    """One comparison: passed, expected (archcalc), measured (PyTorch)."""

    name: str  # KIND:PATH, e.g. shape:layers[4].body[0]
    passed: bool
    expected: Any
    measured: Any
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "expected": self.expected,
                "measured": self.measured, "detail": self.detail}  # fmt: skip


def compare(name: str, expected: Any, measured: Any, detail: str = "") -> Check:
    return Check(name, expected == measured, expected, measured, detail)


def _example(model: nn.Module, batch: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, *model.input_shape, generator=generator).to(device)


def shape_checks(analysis: Analysis, model: nn.Module, device: torch.device) -> list[Check]:
    """1. Every leaf layer's output shape (forward hooks, batch 2) equals archcalc's."""
    seen: dict[str, tuple] = {}
    handles = []
    for path, module in model.by_path.items():

        def hook(mod, args, output, path=path):
            seen[path] = tuple(output.shape[1:])

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model.eval()(_example(model, 2, device))
    finally:
        for handle in handles:
            handle.remove()
    return [compare(f"shape:{row.path}", list(row.output), list(seen.get(row.path, ())))
            for row in analysis.rows]  # fmt: skip


def param_checks(analysis: Analysis, model: nn.Module) -> list[Check]:
    """2. Parameters per layer and in total equal the summed numel (buffers reported apart)."""
    checks = []
    for row in analysis.rows:
        module = model.by_path[row.path]
        params = sum(p.numel() for p in module.parameters())
        buffers = sum(b.numel() for b in module.buffers())
        detail = f"buffers (not parameters): {buffers:,}" if buffers else ""
        checks.append(compare(f"params:{row.path}", row.params, params, detail))
    total = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    checks.append(compare("params:total", analysis.totals["params"], total,
                          f"buffers: {buffers:,}" if buffers else ""))  # fmt: skip
    return checks


def mac_checks(analysis: Analysis, model: nn.Module, device: torch.device) -> list[Check]:
    """3. MACs per layer and in total equal torch's FlopCounterMode / 2 at batch 1."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False, depth=None) as counter:
        model.eval()(_example(model, 1, device))
    counts = counter.get_flop_counts()
    root = type(model).__name__
    names = {id(module): f"{root}.{name}" for name, module in model.named_modules() if name}
    checks = []
    for row in analysis.rows:
        flops = sum(counts.get(names[id(model.by_path[row.path])], {}).values())
        weighted = row.fan_in is not None
        detail = (
            ""
            if weighted or row.macs
            else f"FlopCounterMode ignores {row.type} (archcalc counts 0 too)"
        )
        checks.append(compare(f"macs:{row.path}", row.macs, flops // 2, detail))
    total = sum(counts.get("Global", {}).values()) // 2
    checks.append(compare("macs:total", analysis.totals["macs"], total,
                          f"FlopCounterMode ignores {FLOP_COUNTER_IGNORES}"))  # fmt: skip
    return checks


def torchinfo_mult_adds(row: Row) -> int:
    """What torchinfo 1.8 reports as Mult-Adds for a row at batch 1 (its convention).

    Conv and linear: every parameter (bias included) times the output positions, i.e.
    archcalc's connections. Transposed conv: the same rule, which is *not* its
    connections (weights per output position vary). Other layers with parameters
    (batch/layer norm): their parameter count. Parameter-free layers: 0.
    """
    if row.hyper.get("table"):
        # torchinfo's Conv rule applies to parameters named exactly "weight"/"bias"; the per-map
        # weights of a table convolution ("weight_0", ...) fall under its RNN rule instead
        # (parameters × output channels at batch 1).
        bias = len(row.hyper["table"]) if row.hyper["bias"] else 0
        return int(bias * product(row.output[1:]) + (row.params - bias) * row.output[0])
    if row.type.startswith("conv"):
        return int(row.params * product(row.output[1:]))
    if row.type == "multihead_attention":  # its parameters times the tokens
        return int(row.params * row.output[0])
    return int(row.params)  # linear: parameters at batch 1, whatever the tokens


def torchinfo_checks(analysis: Analysis, model: nn.Module, device: torch.device) -> list[Check]:
    """4. torchinfo's totals and per-layer Mult-Adds against archcalc's numbers."""
    import torchinfo

    summary = torchinfo.summary(model.eval(), input_size=(1, *model.input_shape), verbose=0,
                                device=device)  # fmt: skip
    by_module = {id(info.module): info for info in summary.summary_list}
    checks = [compare("torchinfo:params", analysis.totals["params"], summary.total_params)]
    expected_total = 0
    differ = set()
    for row in analysis.rows:
        expected = torchinfo_mult_adds(row)
        if row.type == "multihead_attention":  # its total sums leaf modules: the out-projection
            width = int(row.output[-1])
            expected_total += width * width + (width if row.hyper["bias"] else 0)
        else:
            expected_total += expected
        if row.fan_in is None and not expected:
            continue
        info = by_module.get(id(model.by_path[row.path]))
        measured = info.macs if info is not None else None
        if row.type.startswith("conv_transpose"):
            differ.add("conv_transpose (params × output positions, not connections)")
            detail = f"torchinfo's convention; archcalc's connections: {row.connections:,}"
        elif row.hyper.get("table"):
            differ.add("table convolution (per-map weights fall under torchinfo's RNN rule)")
            detail = f"torchinfo's convention; archcalc's connections: {row.connections:,}"
        elif row.type in ("subsample", "rbf"):
            differ.add(f"{row.type} (counts its {row.params} trainable parameters)")
            detail = (
                f"torchinfo counts parameters only; archcalc's connections: {row.connections:,}"
            )
        elif row.type == "linear" and len(row.input) > 1:
            differ.add("linear on tokens (parameters only, not times the tokens)")
            detail = f"torchinfo's convention; archcalc's connections: {row.connections:,}"
        elif row.type == "multihead_attention":
            differ.add("multihead_attention (parameters × tokens)")
            detail = f"torchinfo's convention; archcalc's MACs: {row.macs:,}"
        elif row.fan_in is not None:
            detail = "equals archcalc's connections"
            expected = row.connections
        else:
            differ.add(f"{row.type} (counts its {row.params} parameters)")
            detail = "torchinfo counts the layer's parameters as Mult-Adds; archcalc: 0 MACs"
        checks.append(compare(f"torchinfo:{row.path}", expected, measured, detail))
    note = ("conventions differ for: " + "; ".join(sorted(differ))) if differ else (
        "equals archcalc's total connections")  # fmt: skip
    checks.append(compare("torchinfo:mult_adds", expected_total, summary.total_mult_adds, note))
    from archcalc.quantities.memory import TORCHINFO_STORAGE_OVERHEAD, training_memory

    block = dict(training_memory(analysis, batch=1).torchinfo)
    # torchinfo's input size is sys.getsizeof of the input's storage: its bytes plus the
    # Python object, whose size is torch's (64 bytes on 2.13, 56 on 2.11): take this torch's
    overhead = sys.getsizeof(torch.empty(0).untyped_storage())
    block["input_bytes"] += overhead - TORCHINFO_STORAGE_OVERHEAD
    measured_bytes = {"input_bytes": summary.total_input,
                      "forward_backward_pass_bytes": summary.total_output_bytes,
                      "params_bytes": summary.total_param_bytes}  # fmt: skip
    for name, measured in measured_bytes.items():
        detail = "archcalc memory's torchinfo block at batch 1"
        if name == "input_bytes":
            detail += f" (storage object: {overhead} bytes on torch {torch.__version__})"
        checks.append(compare(f"torchinfo:{name}", block[name], measured, detail))
    return checks
