"""Run every check on one spec: the engine behind ``archcalc verify``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from archcalc.errors import ArchcalcError
from archcalc.init.propagation import propagate
from archcalc.init.recommend import SCHEMES
from archcalc.language.expr import product
from archcalc.language.loader import load_spec
from archcalc.quantities.analysis import Analysis, analyze
from verify import distributed
from verify.build import build
from verify.checks import Check, mac_checks, param_checks, shape_checks, torchinfo_checks
from verify.distributed import World
from verify.initcheck import apply_scheme, init_checks
from verify.train import TrainResult, train, training_checks


@dataclass
class VerifyResult:
    spec: str
    device: str
    checks: list[Check] = field(default_factory=list)
    training: TrainResult | None = None
    init_curves: dict[str, Any] = field(default_factory=dict)
    compare: dict[str, TrainResult] = field(default_factory=dict)
    predictions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    threads: int = 0  # torch's intra-op threads on the CPU (0: not set, a GPU run), a process
    #: training processes (torch.distributed: ``--nproc`` or torchrun) and their backend
    #: ("": one process, no process group); ``batch_size``: the global batch.
    processes: int = 1
    backend: str = ""
    batch_size: int = 0
    threads_why: str = ""
    #: CPU-clock seconds of the phases: imports (torch and friends, measured by the caller),
    #: checks (build, checks 1-9, init), training (every training run, datasets included).
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "spec": self.spec,
            "device": self.device,
            "passed": self.passed,
            "checks": [check.to_dict() for check in self.checks],
            "training": None,
            "notes": list(self.notes),
            "processes": self.processes,
            "backend": self.backend or None,
            "batch_size": self.batch_size,
            "threads": self.threads or None,
            "threads_why": self.threads_why or None,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }
        if self.training is not None:
            t = self.training
            data["training"] = {"steps": t.steps, "final_loss": t.final_loss,
                                "train_accuracy": t.train_accuracy, "test_accuracy": t.test_accuracy,
                                "seconds": t.seconds}  # fmt: skip
        if self.compare:
            data["compare"] = {scheme: {**r.to_dict(), "prediction": self.predictions.get(scheme)}
                               for scheme, r in self.compare.items()}  # fmt: skip
        return data


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ArchcalcError("--device cuda: no CUDA device is available (try --device auto)")
    if name not in ("cpu", "cuda"):
        raise ArchcalcError(f"--device: expected auto, cpu or cuda. Received: {name}")
    return torch.device(name)


#: Below this many multiply-accumulates per training step (forward and backward, about 3x
#: the forward at the training batch) extra threads cost more in synchronisation than they
#: save: LeNet-5 (0.4 M MACs a sample, 0.08 G a step at batch 64) trained in 8 s with one
#: thread and 18-24 s with the two default ones on a 2-core machine.
SMALL_STEP_MACS = 2e9


def pick_threads(analysis: Analysis, batch_size: int, requested: int | None = None,
                 processes: int = 1) -> tuple[int, str]:  # fmt: skip
    """torch's intra-op threads for a CPU run, and why: one for small models (or few cores),
    else torch's own default (the physical cores it found); with ``processes`` training
    processes on the machine, each takes its share of the cores (at least one).
    ``batch_size`` is one process's batch."""
    if requested is not None:
        if requested < 1:
            raise ArchcalcError(f"--threads: expected a positive integer. Received: {requested}")
        return requested, "as asked (--threads)"
    step = 3 * batch_size * int(analysis.totals["macs"])
    if step < SMALL_STEP_MACS:
        return 1, (f"a training step is {step / 1e9:.2g} G MACs, below {SMALL_STEP_MACS / 1e9:g} G "
                   "where more threads cost more than they save")  # fmt: skip
    if processes > 1:
        cores = _cores()
        return max(1, cores // processes), (f"{cores} cores shared by {processes} processes: a "
                                            f"training step is {step / 1e9:.3g} G MACs")  # fmt: skip
    return torch.get_num_threads(), f"torch's default: a training step is {step / 1e9:.3g} G MACs"


def _cores() -> int:
    """The CPUs this process may run on (torchrun sets OMP_NUM_THREADS=1 in its workers, so
    torch's own count no longer says)."""
    import os

    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _init_batch(analysis: Analysis) -> int:
    """A batch that keeps one init measurement to ~4M input values (at least 4)."""
    return int(max(4, min(64, 4_000_000 // int(product(analysis.input)))))


def run(spec: Any, values: dict[str, int] | None = None, *, device: str = "auto", steps: int = 200,
        batch_size: int = 64, data: str = "digits", seed: int = 0, lr: float = 0.01,
        schemes: list[str] | None = None, seeds: int = 4, compare: list[str] | None = None,
        progress: bool = True, threads: int | None = None,
        world: World | None = None) -> VerifyResult:  # fmt: skip
    """Build ``spec`` in PyTorch and run every check (and the init comparison if asked).

    On the CPU, torch's thread count is chosen for the model (:func:`pick_threads`) unless
    ``threads`` is given; it is restored afterwards.

    ``world`` (a process of a torchrun job, :func:`verify.distributed.environment`): the
    process joins the process group and trains its shard under DistributedDataParallel, then
    leaves the group; rank 0 alone then runs the static checks, and the other ranks return a
    result with the training only. Training runs first so that no rank waits on rank 0's
    checks in a collective."""
    if isinstance(spec, Analysis):
        analysis = spec
    else:
        source = load_spec(spec, file=str(spec)) if isinstance(spec, (str, Path)) else spec
        analysis = analyze(source, **(values or {}))
    if analysis.symbolic:
        raise analysis.needs_numbers("verify")
    dev = pick_device(device)
    share = batch_size
    if world is not None:
        distributed.check_batch(batch_size, world.size)
        dev = distributed.place(dev, world)
        share = distributed.local_batch(batch_size, 0, world.size)
    result = VerifyResult(analysis.spec.name, str(dev), batch_size=batch_size)
    if world is not None:
        result.processes, result.backend = world.size, distributed.backend(dev)
    before = torch.get_num_threads()
    if dev.type == "cpu":
        result.threads, result.threads_why = pick_threads(
            analysis, share, threads, world.local_size if world is not None else 1
        )
        torch.set_num_threads(result.threads)
    options = (steps, batch_size, data, seed, lr, compare)
    try:
        if world is None:
            _checks(analysis, result, dev, seed, schemes, seeds)
            _training(analysis, result, dev, *options, progress=progress)
        else:
            distributed.join(world, dev)
            _training(analysis, result, dev, *options, progress=progress and world.main,
                      world=world)  # fmt: skip
            distributed.leave()
            if world.main:
                _checks(analysis, result, dev, seed, schemes, seeds)
    finally:
        torch.set_num_threads(before)
    return result


def _checks(analysis: Analysis, result: VerifyResult, dev: torch.device, seed: int, schemes,
            seeds: int) -> None:  # fmt: skip
    """Checks 1-5 and 7-10, everything but training: put before any training checks."""
    import time

    start = time.process_time()
    checks: list[Check] = []
    torch.manual_seed(seed)
    model = build(analysis, device=dev)
    checks += shape_checks(analysis, model, dev)
    checks += param_checks(analysis, model)
    checks += mac_checks(analysis, model, dev)
    checks += torchinfo_checks(analysis, model, dev)
    from verify.rfcheck import erf_init_check, rf_checks

    checks += rf_checks(analysis)
    checks += erf_init_check(analysis)
    from verify.memcheck import memory_checks

    memory, notes = memory_checks(analysis, model, dev)
    checks += memory
    from verify.toolcheck import tool_checks

    tools, tool_notes = tool_checks(analysis, model)  # only where peer tools are installed
    checks += tools
    notes += tool_notes
    if analysis.spec.source is not None:  # imported: the same function as the module
        from verify.source import source_checks

        checks += source_checks(analysis, model, dev)
    if propagate(analysis).layers:
        init, curves = init_checks(analysis, model, schemes or list(SCHEMES), dev, seeds=seeds,
                                   batch=_init_batch(analysis))  # fmt: skip
        checks += init
        result.init_curves = curves
    result.checks[:0] = checks
    result.notes[:0] = notes
    result.seconds = {"checks": time.process_time() - start, **result.seconds}


def _training(analysis: Analysis, result: VerifyResult, dev: torch.device, steps: int,
              batch_size: int, data: str, seed: int, lr: float, compare, *, progress: bool,
              world: World | None = None) -> None:  # fmt: skip
    """Check 6, and the training runs of ``--compare-init``."""
    import time

    start = time.process_time()
    dataset = None
    if steps > 0 or compare:
        from verify.data import load

        dataset = load(data, analysis.input, seed=seed)
        output = analysis.output
        if analysis.rows[-1].type == "rbf":
            result.notes.append("training skipped: an RBF output layer gives distances, not logits; "
                                "it needs LeCun et al.'s loss, which verify does not implement")  # fmt: skip
            steps, compare = 0, []
        elif len(output) != 1 or output[0] < dataset.classes:
            result.notes.append(f"training skipped: it needs a flat output of at least {dataset.classes} "
                                f"units (one per class of {dataset.name}); the output is {list(output)}")  # fmt: skip
            steps, compare = 0, []
    notes: list[str] = []
    options = {"lr": lr, "seed": seed, "progress": progress, "world": world, "notes": notes}
    if steps > 0:
        torch.manual_seed(seed)  # every rank: the same initial weights
        model = build(analysis, device=dev)
        _initialise(model, analysis, "recommended")
        result.training = train(model, dataset, steps, batch_size, **options)
        result.checks += training_checks(result.training, dataset.classes)
    for scheme in compare or []:
        torch.manual_seed(seed)  # every rank: the same initial weights
        model = build(analysis, device=dev)
        _initialise(model, analysis, scheme)
        result.predictions[scheme] = propagate(analysis, scheme).verdict
        result.compare[scheme] = train(model, dataset, steps if steps > 0 else 400, batch_size,
                                       scheme=scheme, **options)  # fmt: skip
    result.notes += list(dict.fromkeys(notes))
    result.seconds["training"] = time.process_time() - start


def _initialise(model, analysis: Analysis, scheme: str) -> None:
    prediction = propagate(analysis, scheme)
    apply_scheme(
        model, analysis, scheme, {p.row.path: p.weight_variance for p in prediction.layers}
    )


# ----------------------------------------------------------------------------- reporting


def table(result: VerifyResult, verbose: bool = False) -> str:
    """Checks grouped by kind, every failure in full (every check with ``verbose``)."""
    kinds: dict[str, list[Check]] = {}
    for check in result.checks:
        kinds.setdefault(check.name.split(":", 1)[0], []).append(check)
    lines = [f"verify {result.spec} on {result.device}{_processes(result)}", ""]
    lines.append(f"{'check':<12}{'passed':>8}{'failed':>8}")
    for kind, checks in kinds.items():
        failed = sum(not c.passed for c in checks)
        lines.append(f"{kind:<12}{len(checks) - failed:>8}{failed:>8}")
    shown = [c for c in result.checks if verbose or not c.passed]
    if shown:
        lines += ["", f"{'':2}{'check':<44} {'expected':>16} {'measured':>16}  detail"]
        for c in shown:
            mark = "ok  " if c.passed else "FAIL"
            lines.append(
                f"{mark} {c.name:<44} {_cell(c.expected):>16} {_cell(c.measured):>16}  {c.detail}"
            )
    if result.training is not None:
        t = result.training
        lines += ["", f"training: {t.steps} steps in {t.seconds:.1f} s{_trained_on(result)}, final loss "
                      f"{t.final_loss:.4f}, train accuracy {t.train_accuracy:.1%}, test accuracy "
                      f"{t.test_accuracy:.1%}"]  # fmt: skip
    if result.compare:
        lines += [
            "",
            f"{'init':<16}{'final loss':>12}{'train acc':>11}{'test acc':>10}  archcalc init predicted",
        ]
        for scheme, t in result.compare.items():
            lines.append(f"{scheme:<16}{t.final_loss:>12.4f}{t.train_accuracy:>11.1%}{t.test_accuracy:>10.1%}  "
                         f"{result.predictions[scheme].split(': ', 1)[1].split(': pre-activation')[0]}")  # fmt: skip
    lines += [f"note: {note}" for note in result.notes]
    if result.threads:
        each = " a process" if result.processes > 1 else ""
        lines.append(
            f"cpu: {result.threads} thread{'s' * (result.threads != 1)}{each}, {result.threads_why}"
        )
    if result.seconds:
        lines.append("cpu time: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items()))
    total = len(result.checks)
    failed = sum(not c.passed for c in result.checks)
    lines += ["", f"{total - failed} passed, {failed} failed"]
    return "\n".join(lines) + "\n"


def _processes(result: VerifyResult) -> str:
    """``, 2 processes (gloo)`` for a torch.distributed run."""
    if not result.backend:
        return ""
    return f", {result.processes} process{'es' * (result.processes != 1)} ({result.backend})"


def _trained_on(result: VerifyResult) -> str:
    if not result.backend:
        return ""
    share = distributed.local_batch(result.batch_size, 0, result.processes)
    last = distributed.local_batch(result.batch_size, result.processes - 1, result.processes)
    shares = f"{share}" if share == last else f"{last}-{share}"
    return (f" on {result.processes} process{'es' * (result.processes != 1)} ({result.backend}), "
            f"global batch {result.batch_size} ({shares} a process)")  # fmt: skip


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    text = str(value)
    return text if len(text) <= 16 else text[:15] + "…"


def write_report(result: VerifyResult, directory: str | Path) -> list[Path]:
    """report.json, report.md and PNG plots (training curves, init variances)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json", out / "report.md"]
    data = result.to_dict()
    if result.training is not None:
        data["training"]["losses"] = result.training.losses
        data["training"]["curve"] = result.training.curve
    data["init"] = result.init_curves
    (out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "report.md").write_text(_markdown(result))
    written += _plots(result, out)
    return written


def _markdown(result: VerifyResult) -> str:
    lines = [f"# verify: {result.spec}", "", f"Device: {result.device}{_processes(result)}. "
             f"{sum(c.passed for c in result.checks)} of {len(result.checks)} checks passed.", "",
             "| check | passed | expected | measured | detail |", "|---|---|---:|---:|---|"]  # fmt: skip
    for c in result.checks:
        lines.append(f"| `{c.name}` | {'yes' if c.passed else '**no**'} | {_cell(c.expected)} | "
                     f"{_cell(c.measured)} | {c.detail} |")  # fmt: skip
    if result.training is not None:
        t = result.training
        lines += ["", f"Training: {t.steps} steps, {t.seconds:.1f} s{_trained_on(result)}, final loss {t.final_loss:.4f}, "
                      f"train accuracy {t.train_accuracy:.1%}, test accuracy {t.test_accuracy:.1%}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def _plots(result: VerifyResult, out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    runs = dict(result.compare)
    if result.training is not None:
        runs.setdefault(result.training.scheme, result.training)
    if runs:
        figure, (loss_axis, acc_axis) = plt.subplots(1, 2, figsize=(11, 4))
        for scheme, t in runs.items():
            loss_axis.plot(range(1, len(t.losses) + 1), t.losses, label=scheme, alpha=0.8)
            acc_axis.plot([p["step"] for p in t.curve], [p["test_accuracy"] for p in t.curve],
                          marker=".", label=scheme)  # fmt: skip
        loss_axis.set(title="training loss", xlabel="step", ylabel="cross-entropy")
        acc_axis.set(title="test accuracy", xlabel="step", ylim=(0, 1))
        acc_axis.legend()
        figure.suptitle(f"{result.spec}: training")
        figure.tight_layout()
        figure.savefig(out / "training.png", dpi=110)
        plt.close(figure)
        written.append(out / "training.png")
    if result.init_curves:
        figure, (fwd, bwd) = plt.subplots(1, 2, figsize=(13, 6.5))
        for scheme, rows in result.init_curves.items():
            depth = [r["depth"] for r in rows]
            line = fwd.plot(
                depth, [r["forward_predicted"] for r in rows], "-", label=f"{scheme} predicted"
            )[0]
            fwd.plot(
                depth,
                [r["forward_measured"] for r in rows],
                "o",
                color=line.get_color(),
                label=f"{scheme} measured",
            )
            line = bwd.plot(depth, [r["backward_predicted"] for r in rows], "-")[0]
            bwd.plot(depth, [r["backward_measured"] for r in rows], "o", color=line.get_color())
        from archcalc.init.propagation import HEALTHY
        from archcalc.render.plot import depth_ticks

        fwd.axhspan(*HEALTHY, color="0.92", zorder=0, label="healthy (flags)")
        for axis, title, ylabel in (
            (fwd, "pre-activation variance", "variance (network input: 1)"),
            (bwd, "gradient variance at the layer's input", "per element (output gradient: 1)"),
        ):  # fmt: skip
            axis.set(yscale="log", title=title, ylabel=ylabel)
            axis.grid(True, which="major", alpha=0.4)
            first = next(iter(result.init_curves.values()))
            depth_ticks(axis, [(r["depth"], r.get("name") or r["path"]) for r in first])
        fwd.legend(
            fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.45), ncol=4, borderaxespad=0
        )
        figure.suptitle(f"{result.spec}: archcalc init's prediction (lines) against PyTorch (dots)")
        figure.tight_layout()
        figure.savefig(out / "init.png", dpi=110)
        plt.close(figure)
        written.append(out / "init.png")
    return written
