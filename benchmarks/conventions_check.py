"""Run every installed peer tool on built specs; print its total beside archcalc's prediction.

    python benchmarks/conventions_check.py [SPEC ...]

Needs torch and the peer tools (torchinfo, fvcore, ptflops, thop, calflops, torchscan);
a tool that is not installed is reported as such. Exit 1 if a prediction differs.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import sys
import warnings
from pathlib import Path

import torch

from archcalc.language.loader import load_spec
from archcalc.quantities.analysis import analyze
from archcalc.quantities.conventions import TOOL_RULES, tool_figure
from verify.build import build

SPECS = ["specs/lenet5.yaml", "specs/alexnet.yaml", "specs/zoo/resnet18.yaml",
         "specs/zoo/resnet50.yaml", "specs/zoo/mobilenet_v2.yaml", "specs/zoo/vgg16.yaml",
         "specs/zoo/densenet121.yaml", "specs/zoo/vit_b_16.yaml"]  # fmt: skip
PACKAGES = {"torchinfo": "torchinfo", "fvcore": "fvcore", "ptflops": "ptflops",
            "ptflops-aten": "ptflops", "thop": "thop", "calflops": "calflops",
            "torchscan": "torchscan"}  # fmt: skip


def _model(analysis):
    torch.manual_seed(0)
    model = build(analysis).eval()
    return model, (1, *model.input_shape)


def run_torchinfo(analysis):
    import torchinfo

    model, shape = _model(analysis)
    return torchinfo.summary(model, input_size=shape, verbose=0).total_mult_adds


def run_fvcore(analysis):
    from fvcore.nn import FlopCountAnalysis

    model, shape = _model(analysis)
    counter = FlopCountAnalysis(model, torch.zeros(shape))
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    return counter.total()


def run_ptflops(analysis, backend="pytorch"):
    from ptflops import get_model_complexity_info

    model, shape = _model(analysis)
    macs, _ = get_model_complexity_info(model, shape[1:], as_strings=False, backend=backend,
                                        print_per_layer_stat=False)  # fmt: skip
    return macs


def run_thop(analysis):
    import thop

    model, shape = _model(analysis)
    macs, _ = thop.profile(model, inputs=(torch.zeros(shape),), verbose=False)
    return int(macs)


def run_calflops(analysis):
    from calflops import calculate_flops

    model, shape = _model(analysis)
    _, macs, _ = calculate_flops(model, input_shape=shape, output_as_string=False,
                                 print_results=False, print_detailed=False)  # fmt: skip
    return macs


def run_torchscan(analysis):
    """torchscan's "Multiply-Accumulations" total; a partial one as ("partial", known)."""
    from torchscan.crawler import crawl_module

    model, shape = _model(analysis)
    total = crawl_module(model, shape[1:])["totals"]["macs"]
    return total["value"] if total["status"] == "complete" else ("partial", total["known_value"])


RUNNERS = {"torchinfo": run_torchinfo, "fvcore": run_fvcore, "ptflops": run_ptflops,
           "ptflops-aten": lambda a: run_ptflops(a, "aten"), "thop": run_thop,
           "calflops": run_calflops, "torchscan": run_torchscan}  # fmt: skip


def measured(tool: str, analysis):
    """The tool's own total on the built model (its printing silenced)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):  # fmt: skip
        warnings.simplefilter("ignore")
        return RUNNERS[tool](analysis)


def predicted(figure):
    return ("partial", figure.known) if figure.known is not None else figure.value


def installed(tool: str) -> str | None:
    try:
        return importlib.metadata.version(PACKAGES[tool])
    except importlib.metadata.PackageNotFoundError:
        return None


def main(paths: list[str]) -> int:
    failures = 0
    print(f"{'spec':<14} {'tool':<13} {'version':<21} {'archcalc predicts':>26} "
          f"{'tool prints':>26}  same")  # fmt: skip
    for path in paths:
        analysis = analyze(load_spec(Path(path), file=path))
        for tool in TOOL_RULES:
            version = installed(tool)
            figure = tool_figure(analysis, tool)
            expect = predicted(figure)
            got = measured(tool, analysis) if version else "not installed"
            same = "yes" if got == expect else ("--" if not version else "NO")
            failures += same == "NO"
            print(f"{analysis.spec.name[:14]:<14} {tool:<13} {version or '--':<21} "
                  f"{_text(expect):>26} {_text(got):>26}  {same}")  # fmt: skip
    return 1 if failures else 0


def _text(value) -> str:
    if isinstance(value, tuple):
        return f"partial {value[1]:,}"
    return f"{value:,}" if isinstance(value, int) else str(value)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or SPECS))
