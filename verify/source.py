"""The PyTorch module an imported spec came from: loading it, and check 7, the same function.

``archcalc import`` records in the spec where it came from (``source:``): the
callable, its arguments and which module each item's weights belong to. Check 7
builds that module again, copies its weights into the spec's model through that
mapping and compares the outputs on a random input (eval mode, double precision);
it also compares the parameter count and torch's FlopCounterMode MACs of the
module itself with archcalc's.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archcalc.errors import ArchcalcError
from archcalc.quantities.analysis import Analysis
from verify.checks import Check, compare


def load_target(target: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """``package.module:callable`` or ``path/to/file.py:callable`` (a module instance named
    directly also works), called with ``kwargs``; must give an nn.Module."""
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise ArchcalcError(
            f"expected package.module:callable or path/file.py:callable. Received: {target!r}"
        )
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise ArchcalcError(f"no such file: {where}")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules.setdefault(path.stem, module)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ArchcalcError:
        raise
    except ModuleNotFoundError as err:
        raise ArchcalcError(f"cannot import {where}: no module named {err.name!r}") from None
    except Exception as err:  # the user's module failed to import: say so in one line
        raise ArchcalcError(f"importing {where} failed: {type(err).__name__}: {err}") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise ArchcalcError(f"{where} has no attribute {attr!r}")
    if isinstance(obj, nn.Module):
        return obj
    if not callable(obj):
        raise ArchcalcError(f"{target} is neither an nn.Module nor callable")
    try:
        made = obj(**(kwargs or {}))
    except Exception as err:
        raise ArchcalcError(f"calling {target} failed: {type(err).__name__}: {err}") from None
    if not isinstance(made, nn.Module):
        raise ArchcalcError(f"{target} returned a {type(made).__name__}, not an nn.Module")
    return made


def qualified_names(analysis: Analysis) -> dict[str, str]:
    """Row path -> the dotted names of the items around it (``layer1.0.conv1``): an imported
    spec names block calls and items after the module paths they came from."""
    found: dict[str, str] = {}

    def visit(groups, prefix: str) -> None:
        for group in groups:
            here = f"{prefix}{group.name}" if group.name else None
            if group.children:
                for child in group.children:
                    visit(child, f"{here}." if here else prefix)
            elif here is not None:
                rows = analysis.rows_of(group)
                if rows and rows[0].path == group.path:
                    found[group.path] = here

    visit(analysis.graph.tree, "")
    return found


def load_weights(model: nn.Module, analysis: Analysis, source: nn.Module,
                 mapping: dict[str, str]) -> None:  # fmt: skip
    """Copy the source module's weights into the spec's model, item by item."""
    by_name = {name: model.by_path[path] for path, name in qualified_names(analysis).items()}
    sources = dict(source.named_modules())
    params = dict(source.named_parameters())
    mapping = {**{name: name for name in by_name if name in sources or name in params}, **mapping}
    with torch.no_grad():
        for name, origin in mapping.items():
            target = by_name.get(name)
            if target is None:
                raise ArchcalcError(f"source.parameters: no item named {name!r}")
            if origin in params and origin not in sources:  # a learned tensor
                target.weight.copy_(params[origin].reshape(target.weight.shape))
                continue
            state = sources[origin].state_dict()
            target.load_state_dict(state)


def used_parameters(module: nn.Module, x: torch.Tensor) -> tuple[int, list[str]]:
    """Parameters of the modules a forward pass calls, and the submodules it never calls
    (Inception-v3's auxiliary head in eval mode)."""
    called: set[int] = set()
    handles = [
        m.register_forward_pre_hook(lambda m, a: called.add(id(m))) for m in module.modules()
    ]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for handle in handles:
            handle.remove()
    seen: set[int] = set()
    for m in module.modules():
        if id(m) in called:  # torch.nn's own modules use their children's weights directly
            own = type(m).__module__.startswith("torch.nn")
            seen.update(id(p) for p in m.parameters(recurse=own))
    used = sum(p.numel() for p in module.parameters() if id(p) in seen)
    unused = [name for name, m in module.named_children() if id(m) not in called
              and any(True for _ in m.parameters())]  # fmt: skip
    return used, unused


def source_checks(analysis: Analysis, model: nn.Module, device: torch.device,
                  module: nn.Module | None = None) -> list[Check]:  # fmt: skip
    """7. The spec computes what its source module computes (and counts what it counts).

    ``module``: the source itself, when the caller has it (else it is loaded from the spec's
    ``source:``)."""
    from torch.utils.flop_counter import FlopCounterMode

    source_spec = analysis.spec.source
    if module is None:
        module = load_target(source_spec.module, source_spec.kwargs)
    source = module.eval().to(device)
    mapping = source_spec.parameters if source_spec is not None else {}
    checks = []
    training = bool(source_spec is not None and source_spec.training)
    source.train(training)  # what was traced: eval, or training (auxiliary heads)
    # batch 2: batch norm in training mode needs two values per channel; MACs are per sample
    x = torch.randn(2, *analysis.input, generator=torch.Generator().manual_seed(0)).to(device)
    used, unused = used_parameters(source, x)
    detail = "the parameters of the module's forward pass"
    if unused:
        detail += f"; never used, so not in the spec: {', '.join(unused[:4])}"
    checks.append(compare("source:params", analysis.totals["params"], used, detail))
    # attention in train mode: PyTorch's fused path (eval) is invisible to the flop counter; even
    # then it cannot see the scores and weighted sum of attention (SDPA), 2·L²·E per layer
    blind = sum(2 * row.input[0] ** 2 * row.input[1] for row in analysis.rows
                if row.type == "multihead_attention")  # fmt: skip
    attention = [m for m in source.modules() if isinstance(m, nn.MultiheadAttention)]
    for m in attention:
        m.train()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        source(x)
    source.eval()
    detail = "FlopCounterMode on the module" + (" in training mode" if training else "")
    if blind:
        detail += f" (it cannot see attention's scores and weighted sums: {blind:,} MACs left out)"
    checks.append(compare("source:macs", analysis.totals["macs"] - blind,
                          counter.get_total_flops() // 4, detail))  # fmt: skip
    load_weights(model, analysis, source, mapping)
    model, source = model.double().eval(), source.double()
    x = torch.randn(
        2, *analysis.input, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    with torch.no_grad():
        a, b = source(x.to(device)), model(x.to(device))
    a = a if isinstance(a, torch.Tensor) else a[0]
    b = b if isinstance(b, torch.Tensor) else b[0]
    scale = float(a.abs().max()) or 1.0
    diff = float((a - b).abs().max())
    checks.append(Check("source:output", diff <= 1e-9 * max(scale, 1.0), 0.0, diff,
                        f"max |module - spec| over a random batch (double precision; output scale "
                        f"{scale:.3g}), the module's weights loaded into the spec's model"))  # fmt: skip
    model.float()
    return checks
