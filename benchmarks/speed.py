"""Speed where users wait (issue 13): figures and ratios from one run, CPU time throughout.

    .venv/bin/python benchmarks/speed.py            # about 3 minutes on 2 cores
    .venv/bin/python benchmarks/speed.py --quick    # skips the 100k-layer runs and verify

Prints, asserts nothing; the targets are printed beside each ratio and the figures are in the
README. Child processes are measured by their CPU time (``RUSAGE_CHILDREN``), in-process work by
``time.process_time``, so load on the machine does not blur them; commands that are compared are
run interleaved, and the median of the pairwise ratios is printed.

1. start-up: `archcalc analyze specs/lenet5.yaml --json`, `--version` and `--help` against
   `python -c "import pydantic, yaml"` (target: analyze <= 2.0x);
2. symbolic ResNet-152 (H, W free), `analyze --json`, against the numeric run (target <= 3x),
   and the same analysis on sympy's values (the Python API, or a spec outside the part of
   sympy that archcalc.language.native models);
3. scale: chains of 1k, 10k and 100k layers from YAML text to totals (target: 10k/1k <= 12,
   cost per layer flat), and `init`'s propagation over a 100k-layer ReLU chain;
4. ResNet-152's numeric analysis against torchinfo building and summarising the same model
   (one torch thread for both; target >= 100x);
5. `archcalc verify specs/lenet5.yaml`: end to end, split into imports, checks and training, with
   the thread count it chose.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archcalc import analyze, load_spec  # noqa: E402

ARCHCALC = [sys.executable, "-m", "archcalc"]


#: Children write and use the bytecode cache, as an installed package does (pip compiles it on
#: install): this machine sets PYTHONDONTWRITEBYTECODE, which would make every run compile
#: archcalc's modules from source while pydantic's and yaml's come compiled.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def child_cpu(command: list[str]) -> float:
    """CPU seconds (user + system) of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=CHILD_ENV)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def paired(commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """Each command ``runs`` times, interleaved (after one warm-up each)."""
    for command in commands.values():
        child_cpu(command)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(child_cpu(command))
    return times


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def bench_startup(runs: int) -> None:
    base = "python -c 'import pydantic, yaml'"
    commands = {
        base: [sys.executable, "-c", "import pydantic, yaml"],
        "archcalc analyze lenet5.yaml --json": [
            *ARCHCALC,
            "analyze",
            "specs/lenet5.yaml",
            "--json",
        ],
        "archcalc --version": [*ARCHCALC, "--version"],
        "archcalc analyze --help": [*ARCHCALC, "analyze", "--help"],
    }
    times = paired(commands, runs)
    print(f"1. start-up, CPU time (median of {runs}, interleaved; bytecode cache on)")
    for name in commands:
        line = f"   {name:<38} {statistics.median(times[name]) * 1e3:5.0f} ms"
        if name != base:
            line += f"  {ratio(times, name, base):4.2f}x the import line"
        print(line + ("  (target <= 2.0x)" if "lenet5" in name else ""))


def bench_symbolic(runs: int) -> None:
    text = (ROOT / "specs/zoo/resnet152.yaml").read_text()
    text = text.replace("input: [3, 224, 224]", "symbols: {H: 224, W: 224}\ninput: [3, H, W]")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("expect:"))
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(text)
    try:
        # the same analysis and JSON with sympy's values, as a spec outside the subset that
        # archcalc's own values model (archcalc.language.native) gets them
        with_sympy = (
            "import sys; from archcalc import analyze; from archcalc.render.tables import to_json; "
            f"sys.stdout.write(to_json(analyze({handle.name!r}, symbolic=True)))"
        )
        commands = {
            "numeric": [*ARCHCALC, "analyze", handle.name, "--json"],
            "symbolic": [*ARCHCALC, "analyze", handle.name, "--json", "--symbolic"],
            "sympy": [sys.executable, "-c", with_sympy],
            "table": [*ARCHCALC, "analyze", handle.name, "--symbolic"],
        }
        times = paired(commands, runs)
    finally:
        os.unlink(handle.name)
    print(f"2. ResNet-152 with H, W free, analyze --json, CPU time (median of {runs})")
    print(f"   numeric {statistics.median(times['numeric']):.2f} s, symbolic "
          f"{statistics.median(times['symbolic']):.2f} s: {ratio(times, 'symbolic', 'numeric'):.2f}x "
          "(target <= 3x)")  # fmt: skip
    print(
        f"   the same with sympy's values {statistics.median(times['sympy']):.2f} s: "
        f"{ratio(times, 'sympy', 'numeric'):.2f}x (sympy's import included)"
    )
    print(
        f"   the table (analyze --symbolic, sizes named) {statistics.median(times['table']):.2f} s: "
        f"{ratio(times, 'table', 'numeric'):.2f}x"
    )


def chain(n: int) -> str:
    """n leaf layers as YAML text: conv2d(8, 3x3, same) and relu alternating, 8x16x16 input."""
    layers = [{"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1}
              if i % 2 == 0 else {"type": "relu"} for i in range(n)]  # fmt: skip
    return yaml.safe_dump({"name": f"chain{n}", "input": [8, 16, 16], "layers": layers},
                          default_flow_style=None, sort_keys=False)  # fmt: skip


def cpu(fn, repeat: int) -> float:
    """Median CPU time of ``fn`` over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def bench_scale(full: bool) -> None:
    from archcalc.init.propagation import propagate

    print("3. scale: YAML text -> totals, CPU time per layer (median)")
    sizes = (1_000, 10_000, 100_000) if full else (1_000, 10_000)
    analyze(load_spec(chain(100)))  # the validator is built once per process: not per size
    per = {}
    for n in sizes:
        text = chain(n)
        seconds = cpu(
            lambda text=text: analyze(load_spec(text)).totals, {1_000: 9, 10_000: 5}.get(n, 3)
        )
        per[n] = seconds / n
        print(f"   {n:>7,} layers: {seconds * 1e3:8.1f} ms, {per[n] * 1e6:5.1f} us/layer")
    print(f"   10k/1k = {per[10_000] * 10_000 / (per[1_000] * 1_000):.1f} (target <= 12)"
          + (f"; per layer 100k/1k = {per[100_000] / per[1_000]:.2f}" if full else ""))  # fmt: skip
    depth = 50_000 if full else 5_000  # linear + relu: two layers each
    net = analyze({"name": "relu", "input": [16], "layers": [
        {"type": "linear", "out_features": 16, "activation": "relu"}] * depth})  # fmt: skip
    for scheme in ("lecun", "kaiming"):
        seconds = cpu(lambda scheme=scheme: propagate(net, scheme), 1)
        print(
            f"   init propagation, {2 * depth:,}-layer ReLU chain, {scheme}: {seconds:.2f} s, "
            f"{seconds / (2 * depth) * 1e6:.0f} us/layer"
        )


def bench_torchinfo() -> None:
    try:
        import torch
        import torchinfo

        from verify.build import build
    except ImportError:
        print("4. torchinfo: skipped (needs the [verify] extra: torch and torchinfo)")
        return
    torch.set_num_threads(1)
    text = (ROOT / "specs/zoo/resnet152.yaml").read_text()
    ours = cpu(lambda: analyze(text).totals, 9)

    def theirs() -> None:
        model = build(analyze(text)).eval()
        torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0)

    theirs()
    other = cpu(theirs, 3)
    print(f"4. ResNet-152, one torch thread: archcalc {ours * 1e3:.1f} ms, torchinfo (build + "
          f"summary) {other * 1e3:.0f} ms: {other / ours:.0f}x (target >= 100x)")  # fmt: skip


def bench_verify() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        print("5. verify: skipped (needs the [verify] extra)")
        return
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([*ARCHCALC, "verify", "specs/lenet5.yaml", "--json"], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report = json.loads(done.stdout)
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in report["seconds"].items())
    print(f"5. archcalc verify specs/lenet5.yaml: {wall:.1f} s wall, {total:.1f} s CPU ({parts}; "
          f"the rest: interpreter, spec, report); {report['threads']} thread(s): "
          f"{report['threads_why']}")  # fmt: skip


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    print(f"python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} cores")
    bench_startup(7 if quick else 15)
    bench_symbolic(3 if quick else 5)
    bench_scale(full=not quick)
    bench_torchinfo()
    if not quick:
        bench_verify()
