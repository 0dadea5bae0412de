"""Check 10: each installed peer tool's own total against archcalc's prediction of it.

``archcalc conventions`` rebuilds from the spec the total that torchinfo, fvcore, ptflops
(both backends), thop, calflops (MACs and FLOPs) and torchscan print. Here each tool that is
importable runs on a copy of the built model at batch 1 (CPU, evaluation mode) and its
total is compared with the prediction, as the checks ``conventions:TOOL``. A tool that is
not installed is skipped with a note; none of them is a dependency of archcalc.

The tools have side effects, guarded here: calflops leaves ``torch.nn.functional`` patched
when the forward pass raises (and when the model has no parameters), ptflops and calflops
patch ``torch`` functions and ``torch.Tensor`` methods, thop registers ``total_ops`` /
``total_params`` buffers on every module. Each run gets a deep copy of the model, and
``torch``, ``torch.nn.functional`` and ``torch.Tensor`` are restored after it.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.metadata
import importlib.util
import io
import types
import warnings
from typing import Any, Callable, Iterator

import torch
from torch import nn

from archcalc.quantities.analysis import Analysis
from archcalc.quantities.conventions import Figure, tool_figure
from archcalc.quantities.tool_rules import TOOL_RULES, VERSIONS
from verify.checks import Check

#: The package (as pip names it) and the module imported, per tool name.
PACKAGES = {"torchinfo": "torchinfo", "fvcore": "fvcore", "ptflops": "ptflops",
            "ptflops-aten": "ptflops", "thop": "thop", "calflops": "calflops",
            "calflops-flops": "calflops", "torchscan": "torchscan"}  # fmt: skip
MODULES = {"thop": "thop", "ptflops": "ptflops", "calflops": "calflops", "fvcore": "fvcore",
           "torchinfo": "torchinfo", "torchscan": "torchscan"}  # fmt: skip

Measured = Any  # an int, ("partial", known) or ("error", exception name)


def run_torchinfo(model: nn.Module, shape: tuple[int, ...]) -> int:
    import torchinfo

    return torchinfo.summary(model, input_size=shape, verbose=0).total_mult_adds


def run_fvcore(model: nn.Module, shape: tuple[int, ...]) -> int:
    from fvcore.nn import FlopCountAnalysis

    counter = FlopCountAnalysis(model, torch.zeros(shape))
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    return counter.total()


def run_ptflops(model: nn.Module, shape: tuple[int, ...], backend: str = "pytorch") -> int:
    from ptflops import get_model_complexity_info

    macs, _ = get_model_complexity_info(model, shape[1:], as_strings=False, backend=backend,
                                        print_per_layer_stat=False)  # fmt: skip
    return macs


def run_thop(model: nn.Module, shape: tuple[int, ...]) -> int:
    import thop

    macs, _ = thop.profile(model, inputs=(torch.zeros(shape),), verbose=False)
    return int(macs)


def run_calflops(model: nn.Module, shape: tuple[int, ...], flops: bool = False) -> int:
    from calflops import calculate_flops

    total_flops, macs, _ = calculate_flops(model, input_shape=shape, output_as_string=False,
                                           print_results=False, print_detailed=False)  # fmt: skip
    return int(total_flops if flops else macs)


def run_torchscan(model: nn.Module, shape: tuple[int, ...]) -> Measured:
    """torchscan's "Multiply-Accumulations" total; a partial one as ("partial", known)."""
    from torchscan.crawler import crawl_module

    total = crawl_module(model, shape[1:])["totals"]["macs"]
    return total["value"] if total["status"] == "complete" else ("partial", total["known_value"])


RUNNERS: dict[str, Callable[[nn.Module, tuple[int, ...]], Measured]] = {
    "torchinfo": run_torchinfo, "fvcore": run_fvcore, "ptflops": run_ptflops,
    "ptflops-aten": lambda m, s: run_ptflops(m, s, "aten"), "thop": run_thop,
    "calflops": run_calflops, "calflops-flops": lambda m, s: run_calflops(m, s, flops=True),
    "torchscan": run_torchscan,
}  # fmt: skip


@contextlib.contextmanager
def torch_restored() -> Iterator[None]:
    """Put back every attribute of torch, torch.nn.functional and torch.Tensor that a tool
    replaced, and remove those it set over inherited ones (calflops leaves its patches in
    place when the forward pass raises)."""
    spaces = (torch, torch.nn.functional, torch.Tensor)
    saved = [(space, dict(vars(space))) for space in spaces]
    try:
        yield
    finally:
        for space, before in saved:
            now = dict(vars(space))
            for name, value in before.items():
                if name in now and now[name] is not value:
                    setattr(space, name, value)
            for name in now.keys() - before.keys():  # set over an inherited method (Tensor.add)
                if not isinstance(now[name], types.ModuleType):  # not a lazily imported module
                    delattr(space, name)


def measure(tool: str, model: nn.Module) -> Measured:
    """The tool's own total on a deep copy of ``model`` at batch 1 (its printing silenced);
    ("error", name) where the tool raises."""
    copied = copy.deepcopy(model).cpu().eval()
    shape = (1, *copied.input_shape)
    with torch_restored(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):  # fmt: skip
        warnings.simplefilter("ignore")
        try:
            return RUNNERS[tool](copied, shape)
        except Exception as err:  # the tool's own failure is what it prints
            return ("error", type(err).__name__)


def predicted(figure: Figure) -> Measured:
    """The prediction in the form :func:`measure` returns."""
    if figure.raises:
        return ("error", figure.raises)
    return ("partial", figure.known) if figure.known is not None else figure.value


def installed(tool: str) -> str | None:
    """The installed version of the tool's package, None where it is absent or not importable."""
    package = PACKAGES[tool]
    module = MODULES[package]
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    return version if importlib.util.find_spec(module) is not None else None


#: The peer tools verify does not need itself; with none of them installed, check 10 is
#: skipped entirely and verify runs as it did without it.
PEERS = ("fvcore", "ptflops", "thop", "calflops", "torchscan")


def tool_checks(analysis: Analysis, model: nn.Module) -> tuple[list[Check], list[str]]:
    """10. ``conventions:TOOL`` for every installed tool (torchinfo included) where at least
    one peer tool beyond verify's own torchinfo is installed; a note for the absent ones."""
    checks: list[Check] = []
    notes: list[str] = []
    absent: list[str] = []
    if not any(installed(tool) for tool in PEERS):
        return checks, notes
    for tool in TOOL_RULES:
        version = installed(tool)
        if version is None:
            absent.append(tool)
            continue
        figure = tool_figure(analysis, tool)
        expected, got = predicted(figure), measure(tool, model)
        detail = f"{tool} {version}"
        if version.replace("-", ".post") != VERSIONS[tool].replace("-", ".post"):
            detail += f" (archcalc's rules are {tool} {VERSIONS[tool]}'s)"
        if figure.reason:
            detail += f"; {figure.reason}"
        checks.append(Check(f"conventions:{tool}", expected == got, _plain(expected),
                            _plain(got), detail))  # fmt: skip
    if absent:
        notes.append("conventions: not installed, not checked: " + ", ".join(absent))
    return checks, notes


def _plain(value: Measured) -> Any:
    if isinstance(value, tuple):
        return f"{value[0]} {value[1]:,}" if isinstance(value[1], int) else " ".join(value)
    return value
