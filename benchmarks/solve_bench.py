"""archcalc solve benchmark: the vectorised search against the per-candidate one.

    .venv/bin/python benchmarks/solve_bench.py

CPU time (time.process_time) of, from one run:

1. one numeric analysis of ResNet-50 at 224x224;
2. the vectorised solve of "which (H, W) in 32..347 x 32..347 keep macs <= the MACs at
   224x224" (99,856 candidates; target: at most 5x the numeric analysis), with the default 3
   exact re-checks and with 6;
3. the per-candidate search on a 20x20 subrange, its cost per candidate extrapolated to
   99,856, and whether the vectorised solutions on that subrange are the same;
4. ViT-B/16 over the same 99,856 candidates (its position embedding's broadcast checked);
5. a range of 9,998,244 candidates (J, K in 1..3162 on specs/quiz_conv.yaml): streaming.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from unittest import mock

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archcalc import analyze  # noqa: E402
from archcalc.questions import vectorised  # noqa: E402
from archcalc.questions.solve import solve  # noqa: E402

SPECS = ROOT / "specs"


def cpu(fn, repeat: int = 1):
    """(best CPU seconds of ``repeat`` runs, the last result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.process_time()
        result = fn()
        best = min(best, time.process_time() - start)
    return best, result


def free_hw(name: str) -> dict:
    """A zoo spec with its input [3, 224, 224] made [3, H, W], H and W free."""
    data = yaml.safe_load((SPECS / "zoo" / name).read_text())
    data["input"], data["symbols"] = [3, "H", "W"], {"H": None, "W": None}
    data.pop("expect", None)
    return data


def resnet50_hw() -> dict:
    return free_hw("resnet50.yaml")


def slow(*args, **kwargs):
    """The per-candidate search (the vectorised path switched off)."""
    off = vectorised.Unsupported("switched off")
    with mock.patch.object(vectorised, "search", side_effect=off):
        return solve(*args, **kwargs)


def main() -> None:
    rows = []
    net = analyze(SPECS / "zoo" / "resnet50.yaml")  # imports and caches warm
    macs = net.totals["macs"]
    data = resnet50_hw()
    where = [f"macs <= {macs}"]
    solve(data, ["H", "W"], where, {"H": (32, 40), "W": (32, 40)})  # sympy and numpy imported
    full = {"H": (32, 347), "W": (32, 347)}
    # the two measured interleaved, best of 10 each, so that a busy moment favours neither
    numeric = fast = guarded = float("inf")
    for _ in range(10):
        once, _ = cpu(lambda: analyze(SPECS / "zoo" / "resnet50.yaml").totals)
        numeric = min(numeric, once)
        once, result = cpu(lambda: solve(data, ["H", "W"], where, full))
        fast = min(fast, once)
        once, _ = cpu(lambda: solve(data, ["H", "W"], where, full, checks=6))
        guarded = min(guarded, once)
    rows.append(("numeric analyze, ResNet-50 at 224x224 (best of 10)", f"{numeric * 1e3:.1f} ms"))
    symbolic, _ = cpu(lambda: analyze(data, symbolic=True), 5)
    rows.append(
        ("  a symbolic analysis of it, repeated (sympy caches warm)", f"{symbolic * 1e3:.1f} ms")
    )
    rows.append((f"vectorised solve, 99,856 candidates ({len(result.solutions):,} solutions; best of 10)",
                 f"{fast * 1e3:.1f} ms"))  # fmt: skip
    rows.append(("ratio vectorised solve / numeric analyze (target <= 5)",
                 f"{fast / numeric:.1f}x"))  # fmt: skip
    rows.append(("  the same with 6 exact re-checks (--check 6), and its ratio",
                 f"{guarded * 1e3:.1f} ms, {guarded / numeric:.1f}x"))  # fmt: skip
    print(f"method: {result.method}\n")

    sub = {"H": (214, 233), "W": (214, 233)}
    per, exact = cpu(lambda: slow(data, ["H", "W"], where, sub))
    quick = solve(data, ["H", "W"], where, sub)
    rows.append(("per-candidate search, 20x20 = 400 candidates", f"{per:.2f} s"))
    rows.append(("  per candidate, extrapolated to 99,856",
                 f"{per / 400 * 1e3:.1f} ms, {per / 400 * 99_856:.0f} s"))  # fmt: skip
    rows.append(("  vectorised on that subrange: same solutions",
                 f"{quick.solutions == exact.solutions} ({len(exact.solutions)} solutions)"))  # fmt: skip
    rows.append(("speed-up at 99,856 candidates", f"{per / 400 * 99_856 / fast:,.0f}x"))

    # ViT-B/16: the position embedding [197, 768] added to [H//16 * W//16 + 1, 768] is
    # assumed to fit, checked per candidate (before, the per-candidate search: ~400 s)
    vit = free_hw("vit_b_16.yaml")
    vit_macs = analyze(SPECS / "zoo" / "vit_b_16.yaml").totals["macs"]
    vit_where = [f"macs <= {vit_macs}"]
    solve(vit, ["H", "W"], vit_where, {"H": (224, 226), "W": (224, 226)})
    vit_time, vit_found = cpu(lambda: solve(vit, ["H", "W"], vit_where, full), 5)
    vectorised_vit = vit_found.method.startswith("vectorised over ")
    rows.append((f"ViT-B/16, the same 99,856 candidates ({len(vit_found.solutions)} solutions; "
                 f"{'vectorised' if vectorised_vit else 'NOT vectorised'}; best of 5)",
                 f"{vit_time * 1e3:.1f} ms"))  # fmt: skip

    values = dict(L=3, i=16, M=3, N=3, s=2, P=1)
    big = {"J": (1, 3162), "K": (1, 3162)}
    question = ["output == [16, 100, 120]", "macs <= 10**9"]
    stream, found = cpu(lambda: solve(SPECS / "quiz_conv.yaml", ["J", "K"], question, big,
                                      **values))  # fmt: skip
    rows.append((f"vectorised, quiz_conv J, K in 1..3162: 9,998,244 candidates "
                 f"({len(found.solutions)} solutions)", f"{stream:.2f} s"))  # fmt: skip

    width = max(len(name) for name, _ in rows)
    print(f"| {'measurement':<{width}} | CPU time |")
    print(f"|{'-' * (width + 2)}|----------|")
    for name, figure in rows:
        print(f"| {name:<{width}} | {figure} |")


if __name__ == "__main__":
    main()
