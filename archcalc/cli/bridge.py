"""Commands that need PyTorch (the [verify] extra): verify, import, export."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from archcalc.cli.common import analysis_of as _analysis
from archcalc.cli.common import schemes as _schemes
from archcalc.errors import ArchcalcError


def _import(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        from verify.importer import import_module
        from verify.source import load_target
    except ModuleNotFoundError as err:
        raise ArchcalcError(
            f"archcalc import needs PyTorch ({err.name} is missing): pip install 'archcalc[verify]'"
        ) from None
    from archcalc.language.writer import to_yaml
    from archcalc.quantities.analysis import analyze

    module = load_target(args.target, args.kwargs)
    source = {
        "module": args.target,
        "kwargs": args.kwargs,
        **({"training": True} if args.train else {}),
    }
    imported = import_module(module, args.input, name=args.name, source=source,
                             blocks=not args.flat, training=args.train,
                             symbolic=args.symbolic)  # fmt: skip
    imported.spec["source"]["method"] = imported.method
    text = to_yaml(imported.spec)
    analysis = analyze(text)  # what was written must read back
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"{args.output}: {len(analysis.rows)} layers, {analysis.totals['params']:,} "
              f"parameters, {analysis.totals['macs']:,} MACs ({imported.method}, "
              f"{imported.operations} operations)", file=sys.stderr)  # fmt: skip
    else:
        sys.stdout.write(text)
    return 0


def _export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        from verify import exporter
    except ModuleNotFoundError as err:
        raise ArchcalcError(
            f"archcalc export needs PyTorch ({err.name} is missing): pip install 'archcalc[verify]'"
        ) from None
    analysis = _analysis(args, parser)
    if analysis.symbolic:
        raise analysis.needs_numbers("export")
    if args.to == "onnx":
        if not args.output:
            parser.error("--to onnx needs -o FILE")
        try:
            import onnx  # noqa: F401
        except ModuleNotFoundError:
            raise ArchcalcError("--to onnx needs the onnx package: pip install onnx") from None
        exporter.export_onnx(analysis, args.output)
        print(f"{args.output}: ONNX (opset 17), input [1, {', '.join(map(str, analysis.input))}]",
              file=sys.stderr)  # fmt: skip
        return 0
    source = exporter.export_pytorch(analysis, args.class_name)
    if args.output:
        Path(args.output).write_text(source, encoding="utf-8")
    else:
        sys.stdout.write(source)
    return 0


def _verify(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    schemes = _schemes(args.schemes, parser, "--schemes")
    compare = _schemes(args.compare_init, parser, "--compare-init")
    started = time.process_time()
    try:
        from verify import distributed, runner
    except ModuleNotFoundError as err:
        raise ArchcalcError(
            f"archcalc verify needs PyTorch and friends ({err.name} is missing): "
            "pip install 'archcalc[verify]'"
        ) from None
    imports = time.process_time() - started
    analysis = _analysis(args, parser)
    world = distributed.environment()
    if world is None and args.nproc is not None and args.nproc > 1:  # the launcher
        distributed.check_request(args.nproc, args.batch_size, runner.pick_device(args.device))
        return distributed.launch(args.argv, args.nproc)
    if world is not None and args.nproc not in (None, world.size):
        raise ArchcalcError(f"--nproc {args.nproc}: expected {world.size} or none: this process is "
                            f"one of WORLD_SIZE={world.size} (torchrun's)")  # fmt: skip
    try:
        result = runner.run(analysis, device=args.device, steps=args.steps,
                            batch_size=args.batch_size, data=args.data, seed=args.seed, lr=args.lr,
                            schemes=schemes, seeds=args.seeds, compare=compare,
                            progress=not args.json, threads=args.threads, world=world)  # fmt: skip
    except Exception as err:
        if world is None:
            raise
        distributed.record(err)  # for the launcher: torchrun's summary, or --nproc's one line
        if os.environ.get(distributed.STATUS_ENV) and not os.environ.get("ARCHCALC_DEBUG"):
            raise SystemExit(1) from None  # --nproc's launcher prints it, once
        raise
    if world is not None and not world.main:
        return 0  # rank 0 reports
    result.seconds = {"imports": imports, **result.seconds}
    if args.report:
        written = runner.write_report(result, args.report)
        print("report: " + ", ".join(str(p) for p in written), file=sys.stderr)
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(runner.table(result, verbose=args.verbose))
    sys.stdout.flush()
    if world is not None and distributed.report_status(result.passed):
        return 0  # --nproc's launcher returns the status: exit 1 would read as a crash
    return 0 if result.passed else 1


COMMANDS = {"verify": _verify, "import": _import, "export": _export}
