"""Run every installed peer tool on built specs; print its total beside archcalc's prediction.

    python benchmarks/conventions_check.py [SPEC ...]      (default: SPECS and tests/data/conventions/)

Needs torch and the peer tools (torchinfo, fvcore, ptflops, thop, calflops, torchscan);
a tool that is not installed is reported as such. The tools run through verify's check
(:mod:`verify.toolcheck`), each on a copy of the model with torch's functions restored
after it. Exit 1 if a prediction differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from archcalc.language.loader import load_spec
from archcalc.quantities.analysis import analyze
from archcalc.quantities.conventions import TOOL_RULES, tool_figure
from verify.build import build
from verify.toolcheck import installed, measure, predicted

ROOT = Path(__file__).resolve().parent.parent
SPECS = ["specs/lenet5.yaml", "specs/alexnet.yaml", "specs/zoo/resnet18.yaml",
         "specs/zoo/resnet50.yaml", "specs/zoo/mobilenet_v2.yaml", "specs/zoo/vgg16.yaml",
         "specs/zoo/densenet121.yaml", "specs/zoo/vit_b_16.yaml"]  # fmt: skip
#: Small specs covering every layer type of the language (tests/data/conventions/).
EXTRA = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests/data/conventions").glob("*.yaml"))


def measured(tool: str, analysis):
    """The tool's own total on the model built from ``analysis`` (seed 0, batch 1)."""
    torch.manual_seed(0)
    return measure(tool, build(analysis))


def main(paths: list[str]) -> int:
    failures = equal = skipped = 0
    print(f"{'spec':<18} {'tool':<15} {'version':<21} {'archcalc predicts':>26} "
          f"{'tool prints':>26}  same")  # fmt: skip
    for path in paths:
        analysis = analyze(load_spec(ROOT / path, file=path))
        if analysis.symbolic:
            print(f"{path}: skipped (symbolic: give its symbols values to build it)")
            skipped += 1
            continue
        torch.manual_seed(0)
        model = build(analysis)
        for tool in TOOL_RULES:
            version = installed(tool)
            expect = predicted(tool_figure(analysis, tool))
            got = measure(tool, model) if version else "not installed"
            same = "yes" if got == expect else ("--" if not version else "NO")
            failures += same == "NO"
            equal += same == "yes"
            print(f"{analysis.spec.name[:18]:<18} {tool:<15} {version or '--':<21} "
                  f"{_text(expect):>26} {_text(got):>26}  {same}", flush=True)  # fmt: skip
    print(
        f"\n{equal} of {equal + failures} predictions on {len(paths) - skipped} specs equal the tool's output"
    )
    return 1 if failures else 0


def _text(value) -> str:
    if isinstance(value, tuple):
        return f"{value[0]} {value[1]:,}" if isinstance(value[1], int) else " ".join(value)
    return f"{value:,}" if isinstance(value, int) else str(value)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or SPECS + EXTRA))
