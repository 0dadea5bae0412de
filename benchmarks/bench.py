"""archcalc benchmarks: prints figures, asserts nothing (targets are in the README).

    .venv/bin/python benchmarks/bench.py

1. numeric analysis of generated chains of 1,000 and 10,000 layers
   (target: 10k/1k ratio <= 12, <= 50 us per layer);
2. ResNet-152 from YAML text to totals (against torchinfo once verify brings torch);
3. CLI wall time of `archcalc analyze specs/lenet5.yaml` against
   `python -c "import pydantic, yaml"` (target: <= 2x);
4. with the [verify] extra: LeNet-5 trained on digits to >= 97 % test accuracy
   (wall time), and the verifier's overhead (hooks, flop counting) against a
   plain forward pass (target: <= 2x).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archcalc import analyze, load_spec  # noqa: E402


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def chain(n: int) -> dict:
    """n leaf layers: alternating conv2d(8, 3x3, same) and relu over an 8x16x16 input."""
    layers = []
    for i in range(n):
        if i % 2 == 0:
            layers.append({"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1})
        else:
            layers.append({"type": "relu"})
    return {"name": f"chain{n}", "input": [8, 16, 16], "layers": layers}


def bench_chains() -> None:
    print("1. generated chains (best of 5)")
    results = {}
    for n in (1_000, 10_000):
        data = chain(n)
        spec = load_spec(data)
        validate = best_of(lambda data=data: load_spec(data), 5)
        walk = best_of(lambda spec=spec: analyze(spec), 5)
        results[n] = validate + walk
        print(f"   {n:>6,} layers: validate {validate * 1e3:7.1f} ms + analyse {walk * 1e3:7.1f} ms"
              f" = {(validate + walk) * 1e3:7.1f} ms, {(validate + walk) / n * 1e6:5.1f} us/layer")  # fmt: skip
    print(f"   ratio 10k/1k = {results[10_000] / results[1_000]:.1f} (target <= 12)")


def bench_resnet() -> None:
    text = (ROOT / "specs" / "zoo" / "resnet152.yaml").read_text()
    seconds = best_of(lambda: analyze(text).totals, 5)
    totals = analyze(text).totals
    print("2. ResNet-152, YAML text -> totals (best of 5)")
    print(
        f"   archcalc: {seconds * 1e3:.1f} ms  (params {totals['params']:,}, MACs {totals['macs']:,})"
    )
    try:
        import torchinfo

        from verify.build import build
    except ImportError:
        print("   torchinfo: skipped (needs the [verify] extra: torch and torchinfo)")
        return

    def torch_side():
        model = build(analyze(text)).eval()
        torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0)

    other = best_of(torch_side, 3)
    print(
        f"   torchinfo (build the model + summary, best of 3): {other * 1e3:.0f} ms "
        f"-> archcalc is {other / seconds:.0f}x faster (target >= 100x)"
    )


def cpu_best_of(fn, repeat: int) -> float:
    """Best CPU time of the process over ``repeat`` runs (load on the machine does not blur it)."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


#: The commit before the graph language (issue 9 was filed against ResNet-152 as it was then).
THEN = "b418088^"
_BEST_OF = """
import sys, time
from archcalc import analyze
text = open(sys.argv[1]).read()
analyze(text)
best = 1e9
for _ in range(int(sys.argv[2])):
    start = time.process_time()
    analyze(text).totals
    best = min(best, time.process_time() - start)
print(best)
"""


class _Then:
    """ResNet-152 with the package as it was at ``THEN``: an extracted copy of that commit,
    timed in a child process (unavailable without git or that commit)."""

    def __init__(self) -> None:
        import io
        import tarfile
        import tempfile

        self.dir: Any = None
        try:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", THEN, "archcalc", "specs"],
                                     capture_output=True, check=True).stdout  # fmt: skip
        except (OSError, subprocess.CalledProcessError):
            return
        self.dir = tempfile.TemporaryDirectory()
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(self.dir.name, filter="data")

    def best_of(self, repeat: int) -> float | None:
        if self.dir is None:
            return None
        out = subprocess.run(
            [sys.executable, "-c", _BEST_OF, "specs/zoo/resnet152.yaml", str(repeat)],
            capture_output=True, text=True, cwd=self.dir.name,
            env={**os.environ, "PYTHONPATH": self.dir.name},
        )  # fmt: skip
        return float(out.stdout) if out.returncode == 0 else None


def bench_zoo_per_layer() -> None:
    """5. YAML text -> totals per node of the graph, the graph language's models against
    ResNet-152, now and at THEN (target: no more per node than ResNet-152)."""
    names = ("resnet152", "efficientnet_b0", "vit_b_16", "mobilenet_v3_large", "convnext_tiny")
    texts = {n: (ROOT / "specs" / "zoo" / f"{n}.yaml").read_text() for n in names}
    nodes = {n: len(analyze(t).graph.nodes) for n, t in texts.items()}
    best = dict.fromkeys([*names, "then"], float("inf"))
    then = _Then()
    for _ in range(8):  # interleaved rounds, so that a busy moment does not favour one side
        for n, text in texts.items():
            for _ in range(5):
                start = time.process_time()
                _ = analyze(text).totals
                best[n] = min(best[n], time.process_time() - start)
        best["then"] = min(best["then"], then.best_of(5) or float("inf"))
    print("5. zoo specs, YAML text -> totals, CPU time per graph node (best of 40, interleaved)")
    base = best["resnet152"] / nodes["resnet152"]
    # the same 516 nodes then (465 rows, the implied merges and activations, the input)
    old = best["then"] / nodes["resnet152"] if best["then"] < float("inf") else None
    if old is not None:
        print(f"   ResNet-152 at {THEN} (when issue 9 was filed), timed now: "
              f"{best['then'] * 1e3:.2f} ms, {old * 1e6:.1f} us/node")  # fmt: skip
    for n in names:
        per_node = best[n] / nodes[n]
        against_then = f", {per_node / old:4.2f}x then" if old is not None else ""
        print(f"   {n:<20} {best[n] * 1e3:6.2f} ms for {nodes[n]:4} nodes: {per_node * 1e6:5.1f} "
              f"us/node = {per_node / base:4.2f}x ResNet-152's now{against_then} (target <= 1)")  # fmt: skip


def bench_verify() -> None:
    try:
        import torch

        from verify.build import build
        from verify.checks import mac_checks, shape_checks
        from verify.data import load
        from verify.runner import _initialise
        from verify.train import accuracy, train
    except ImportError:
        print("4. verify: skipped (needs the [verify] extra)")
        return
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"4. verify on {device} ({torch.get_num_threads()} threads)")
    analysis = analyze(ROOT / "specs" / "lenet5.yaml")
    data = load("digits", analysis.input)
    torch.manual_seed(0)
    model = build(analysis, device=device)
    _initialise(model, analysis, "recommended")
    steps, seconds, acc = 0, 0.0, 0.0
    while acc < 0.97 and steps < 2000:
        chunk = train(model, data, 25, 64, lr=0.01, seed=steps, progress=False)
        steps, seconds = steps + 25, seconds + chunk.seconds
        acc = accuracy(model, data.x_test.to(device), data.y_test.to(device), data.classes)
    print(
        f"   LeNet-5 on digits: {acc:.1%} test accuracy after {steps} steps, {seconds:.2f} s of training"
    )
    for name in ("specs/lenet5.yaml", "specs/alexnet.yaml", "specs/zoo/resnet152.yaml"):
        analysis = analyze(ROOT / name)
        model = build(analysis, device=device).eval()

        def plain(batch: int, model=model) -> None:
            with torch.no_grad():
                model(torch.randn(batch, *model.input_shape, device=device))

        plain(2)
        # the shape check runs at batch 2 (hooks), the MAC check at batch 1 (FlopCounterMode)
        base2, base1 = best_of(lambda: plain(2), 5), best_of(lambda: plain(1), 5)
        hooked = best_of(lambda a=analysis, m=model: shape_checks(a, m, device), 5)
        counted = best_of(lambda a=analysis, m=model: mac_checks(a, m, device), 5)
        print(
            f"   {name:<28} forward {base1 * 1e3:7.1f} ms; shape check (hooks) {hooked / base2:4.2f}x, "
            f"MAC check (FlopCounterMode) {counted / base1:4.2f}x a plain forward (target <= 2x)"
        )


# The cheapest possible pydantic program: one model with one constrained field, validated once.
# `import pydantic` alone is lazy and loads almost nothing; this shows what any pydantic-based
# validator pays before doing any work of its own.
ONE_MODEL = (
    "from pydantic import BaseModel, Field\nimport yaml\n"
    "class A(BaseModel):\n    x: int = Field(1, ge=0)\nA(x=1)"
)


#: With the bytecode cache, as an installed package has it (this machine sets
#: PYTHONDONTWRITEBYTECODE, which would compile archcalc's modules on every run).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def bench_cli(runs: int = 15) -> None:
    commands = {
        "archcalc analyze specs/lenet5.yaml": [sys.executable, "-m", "archcalc.cli", "analyze",
                                               str(ROOT / "specs" / "lenet5.yaml")],
        "python -c 'import pydantic, yaml'": [sys.executable, "-c", "import pydantic, yaml"],
        "python -c '<one pydantic model>'": [sys.executable, "-c", ONE_MODEL],
    }  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):  # interleaved, so that machine noise hits all alike
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=CHILD_ENV)
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["python -c 'import pydantic, yaml'"]
    print(f"3. CLI wall time (median of {runs}, interleaved)")
    for name, value in medians.items():
        print(f"   {name:<36} {value * 1e3:5.0f} ms  {value / base:4.2f}x")
    print("   target: archcalc <= 2x the import line")


if __name__ == "__main__":
    print(f"python {sys.version.split()[0]} on {sys.platform}")
    bench_chains()
    bench_resnet()
    bench_cli()
    bench_zoo_per_layer()
    bench_verify()
