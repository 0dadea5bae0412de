"""The ``archcalc`` command line.

Exit status: 0 success, 1 invalid spec or failed expectation, 2 usage error.
Bad input never prints a traceback (set ARCHCALC_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from archcalc.errors import ArchcalcError

EXAMPLES = """examples:
  archcalc analyze specs/atari_dqn.yaml
  archcalc analyze specs/quiz_conv.yaml --set J=224 --set K=224 --format markdown
  archcalc explain specs/alexnet_conv1_224.yaml
  archcalc check specs/*.yaml
"""


def _parse_set(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE. Received: {text!r}")
    try:
        number = int(value.strip().replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer value. Received: {text!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"symbol values are integers >= 0. Received: {text!r}")
    return name.strip(), number


def _add_values(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", dest="values", metavar="NAME=VALUE", type=_parse_set, action="append",
        default=[], help="give a symbol a value (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--symbolic", action="store_true",
        help="ignore the symbols' default values: every symbol not --set stays free",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archcalc",
        description="Exact layer arithmetic for neural-network specs: output sizes, weights "
        "per neuron, neurons, connections, parameters and MACs, numeric or symbolic.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    analyze = commands.add_parser("analyze", help="summary table of every layer and the totals",
                                  description="Summary table of every layer and the totals.")  # fmt: skip
    analyze.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    _add_values(analyze)
    analyze.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    analyze.add_argument("--json", action="store_true", help="same as --format json")

    explain = commands.add_parser("explain", help="the working: formula, numbers, value",
                                  description="Each quantity as formula, then with numbers, then the value.")  # fmt: skip
    explain.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    explain.add_argument("--layer", metavar="PATH", help="only this layer (path or name)")
    explain.add_argument("--rf", action="store_true",
                         help="also the receptive field recurrence of every layer")  # fmt: skip
    _add_values(explain)

    check = commands.add_parser("check", help="validate specs and their expect: entries",
                                description="Validate each spec and every expect: entry; "
                                "exit 1 if any spec is invalid or any expectation fails.")  # fmt: skip
    check.add_argument("specs", metavar="SPEC", nargs="+", help="spec files")
    check.add_argument("--quiet", "-q", action="store_true", help="print only problems")

    init = commands.add_parser(
        "init", help="initialisation per weighted layer, and what it does to signals",
        description="Recommend each weighted layer's initial weights and predict, layer by layer, "
        "the variance of signals (forward) and gradients (backward) under a scheme.",
    )  # fmt: skip
    init.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    _add_values(init)
    init.add_argument(
        "--scheme", default="recommended", metavar="S",
        help="recommended (default), kaiming, xavier, lecun, torch_default or normal:STD",
    )  # fmt: skip
    init.add_argument("--json", action="store_true", help="print JSON")
    init.add_argument(
        "--plot", metavar="FILE.png", help="plot log10 variance against depth for every scheme"
    )

    solve = commands.add_parser(
        "solve", help="find symbol values that satisfy constraints on layers or totals",
        description="Find every integer assignment of the --for symbols (in range) that satisfies "
        "all --where constraints, e.g. --where 'conv1.output == [96, 55, 55]' --where "
        "'conv1.uncovered == 0' or --where 'params < 1000000'. Closed forms via sympy where they "
        "exist, else a bounded integer search.",
    )  # fmt: skip
    solve.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    solve.add_argument("--for", dest="unknowns", required=True, metavar="NAMES",
                       help="symbols to solve for, comma-separated")  # fmt: skip
    solve.add_argument("--where", action="append", required=True, metavar="CONSTRAINT",
                       help="REFERENCE OP VALUE (repeatable)")  # fmt: skip
    solve.add_argument("--range", dest="ranges", action="append", default=[], metavar="[NAME=]LO:HI",
                       help="search range (default 0:1024), for all symbols or one")  # fmt: skip
    solve.add_argument("--set", dest="values", metavar="NAME=VALUE", type=_parse_set, action="append",
                       default=[], help="give another symbol a value (repeatable)")  # fmt: skip
    solve.add_argument("--json", action="store_true", help="print JSON")

    style = commands.add_parser(
        "style", help="neural style transfer sizes: N_l, M_l, Gram matrices, normalisers",
        description="For the chosen layers (by name, path or position conv<stage>_<index>): "
        "filters N_l, positions M_l, Gram size, style normaliser 1/(4 N_l² M_l²) and content term "
        "size, symbolic in the image size where it is a symbol. --verify checks them in PyTorch.",
    )  # fmt: skip
    style.add_argument("spec", metavar="SPEC", help="a spec, e.g. specs/zoo/vgg19.yaml")
    style.add_argument("--content", default="conv4_2", help="content layer (default conv4_2)")
    style.add_argument("--style", default="conv1_1,conv2_1,conv3_1,conv4_1,conv5_1",
                       help="style layers, comma-separated (default: Gatys et al.'s five)")  # fmt: skip
    _add_values(style)
    style.add_argument("--json", action="store_true", help="print JSON")
    style.add_argument("--verify", action="store_true",
                       help="compute Gram matrices and both losses in PyTorch and check them; optimise the pixels")  # fmt: skip
    style.add_argument(
        "--steps", type=_non_negative, default=20, help="pixel optimisation steps for --verify"
    )

    verify = commands.add_parser(
        "verify", help="build the spec in PyTorch, train it, check every number against it",
        description="Build the spec as a real torch.nn model and check shapes, parameters, MACs, "
        "torchinfo's totals and init variances against archcalc, then train it on real data. "
        "Exit 0 only if every check passes. Needs the [verify] extra (PyTorch).",
    )  # fmt: skip
    verify.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    _add_values(verify)
    verify.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    verify.add_argument(
        "--steps", type=_non_negative, default=200, help="training steps (0 skips training)"
    )
    verify.add_argument("--batch-size", type=_positive, default=64)
    verify.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (momentum 0.9)")
    verify.add_argument(
        "--data", default="digits", help="digits (default), a folder of class folders, or FILE.npz"
    )
    verify.add_argument("--seed", type=int, default=0)
    verify.add_argument("--schemes", default=None, metavar="S,S",
                        help="init schemes to measure (default: all of archcalc init's)")  # fmt: skip
    verify.add_argument(
        "--seeds", type=_positive, default=4, help="random networks per init scheme"
    )
    verify.add_argument("--compare-init", default=None, metavar="S,S",
                        help="train once per scheme and compare, e.g. kaiming,lecun (He et al. 2015)")  # fmt: skip
    verify.add_argument(
        "--report", metavar="DIR", help="write report.json, report.md and PNG plots"
    )
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.add_argument(
        "--verbose", "-v", action="store_true", help="list every check, not only failures"
    )

    rf = commands.add_parser(
        "rf", help="receptive field of every layer: size, stride, padding",
        description="For every layer, the input positions one of its units sees: field size r, "
        "effective stride S and padding P per spatial dimension (unit u sees -P + u·S ... "
        "-P + u·S + r - 1); the whole input where a layer mixes every position.",
    )  # fmt: skip
    rf.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    rf.add_argument("--layer", metavar="PATH", help="only this layer (path or name)")
    _add_values(rf)
    rf.add_argument("--json", action="store_true", help="print JSON")

    imp = commands.add_parser(
        "import", help="trace a PyTorch module and write it as a spec",
        description="Trace an nn.Module (torch.fx) and write a readable spec of it: items named "
        "after the module paths, named inputs only where the graph is not sequential. The spec "
        "records its source, so that `archcalc verify` loads the module's weights into it and "
        "checks both compute the same. Needs the [verify] extra (PyTorch).",
    )  # fmt: skip
    imp.add_argument("target", metavar="TARGET",
                     help="package.module:callable or path/to/file.py:callable (or an nn.Module)")  # fmt: skip
    imp.add_argument("--input", required=True, type=_shape, metavar="C,H,W",
                     help="the input shape, channels first, no batch")  # fmt: skip
    imp.add_argument("--kwargs", default="{}", type=_json_object, metavar="JSON",
                     help="arguments of the callable as a JSON object (null is None)")  # fmt: skip
    imp.add_argument("--name", help="the spec's name (default: the module's class)")
    imp.add_argument("--train", action="store_true",
                     help="trace the training-mode forward pass (e.g. auxiliary heads)")  # fmt: skip
    imp.add_argument("--flat", action="store_true",
                     help="one item per operation, no blocks for repeated submodules")  # fmt: skip
    imp.add_argument("-o", "--output", metavar="FILE", help="write the spec here (default: stdout)")

    export = commands.add_parser(
        "export", help="write a spec as PyTorch code (or ONNX)",
        description="Write the spec as one standalone PyTorch file (an nn.Module with the "
        "shapes in comments and the recommended init_weights()), or as ONNX. Needs the "
        "[verify] extra (PyTorch; ONNX also needs the onnx package).",
    )  # fmt: skip
    export.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    _add_values(export)
    export.add_argument("--to", choices=("pytorch", "onnx"), default="pytorch")
    export.add_argument("--class-name", help="the module's class name (default: from the spec)")
    export.add_argument("-o", "--output", metavar="FILE",
                        help="where to write (default: stdout; ONNX needs a file)")  # fmt: skip

    schema = commands.add_parser("schema", help="JSON Schema of the spec language",
                                 description="Print the JSON Schema of the spec language.")  # fmt: skip
    schema.add_argument("--indent", type=int, default=2, help="indentation (default 2)")
    return parser


def _version() -> str:
    from archcalc import __version__

    return f"archcalc {__version__}"


def _analysis(args: argparse.Namespace, parser: argparse.ArgumentParser):
    from archcalc.language.loader import load_spec
    from archcalc.quantities.analysis import analyze

    spec = load_spec(Path(args.spec), file=args.spec)
    values = dict(args.values)
    unknown = sorted(set(values) - set(spec.symbols))
    if unknown:
        declared = ", ".join(spec.symbols) or "none"
        parser.error(f"--set {unknown[0]}: not a symbol of {args.spec} (declared: {declared})")
    try:
        analysis = analyze(spec, symbolic=args.symbolic, **values)
    except ArchcalcError as err:
        raise err.at(file=args.spec) from None
    _note_expectations(args, analysis, spec, values)
    return analysis


def _note_expectations(args: argparse.Namespace, analysis, spec, values: dict) -> None:
    """Remember the spec's failed ``expect:`` entries; :func:`run` reports them at the end.

    They fail the command (exit 1) when the spec is analysed at its own values; with
    --set or --symbolic overriding a default they are reported as notes, because the
    entries were written for the defaults.
    """
    from archcalc.quantities.expectations import check_expectations

    overridden = args.symbolic or any(spec.symbols.get(k) != v for k, v in values.items())
    args.expect_failures = [str(m) for m in check_expectations(analysis, decided_only=True)]
    args.expect_binding = not overridden


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {"analyze": _analyze, "explain": _explain, "init": _init, "schema": _schema,
                "verify": _verify, "solve": _solve, "style": _style, "import": _import,
                "export": _export, "rf": _rf}  # fmt: skip
    if args.command == "check":
        return _check(args.specs, args.quiet)
    status = commands[args.command](args, parser)
    failures = getattr(args, "expect_failures", [])
    if failures and not args.expect_binding:
        count = len(failures)
        print(f"archcalc: note: {args.spec}: {count} expect: entr{'ies do' if count > 1 else 'y does'}"
              " not hold with these symbol values (the spec's entries are for its own values)",
              file=sys.stderr)  # fmt: skip
        return status
    for failure in failures:
        print(f"archcalc: error: {args.spec}: expectation failed: {failure}", file=sys.stderr)
    return max(status, 1) if failures else status


def _analyze(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from archcalc.render import tables as render

    analysis = _analysis(args, parser)
    fmt = "json" if args.json else args.format
    renderers = {"table": render.table, "markdown": render.markdown, "json": render.to_json}
    sys.stdout.write(renderers[fmt](analysis))
    if fmt != "json":
        sys.stdout.write(("\n" if fmt == "markdown" else "") + render.init_verdict(analysis) + "\n")
    return 0


def _explain(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from archcalc.questions.explain import explain

    analysis = _analysis(args, parser)
    try:
        sys.stdout.write(explain(analysis, args.layer, rf=args.rf))
    except ArchcalcError as err:
        raise err.at(file=args.spec) from None
    return 0


def _schema(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from archcalc.language.spec import Spec

    sys.stdout.write(json.dumps(Spec.model_json_schema(), indent=args.indent) + "\n")
    return 0


def _init(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from archcalc.render import tables as render

    _schemes(args.scheme, parser, "--scheme")
    analysis = _analysis(args, parser)
    if args.plot:
        from archcalc.render.plot import plot_schemes

        plot_schemes(analysis, args.plot)
    if args.json:
        sys.stdout.write(json.dumps(_init_json(analysis, args.scheme), indent=2) + "\n")
    else:
        sys.stdout.write(render.init_table(analysis, args.scheme))
    if args.plot:
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0


def _init_json(analysis, scheme: str) -> dict:
    from archcalc.init.propagation import propagate
    from archcalc.init.recommend import recommend
    from archcalc.language.expr import to_text

    if not analysis.symbolic:
        return {"spec": analysis.spec.name, **propagate(analysis, scheme).to_dict()}
    from archcalc.init.recommend import variance_factor, weight_variance

    layers = []
    for rec in recommend(analysis):
        layers.append({
            "path": rec.row.path, "type": rec.row.type,
            "fan_in": to_text(rec.fans.fan_in), "fan_out": to_text(rec.fans.fan_out),
            "activation": rec.activation, "gain": {"g0": rec.g0, "g1": rec.g1, "torch": rec.torch_gain},
            "recommended": rec.to_dict(),
            "weight_variance": _text_or_number(weight_variance(rec, scheme)),
            "factor": to_text(variance_factor(rec, scheme)),
            "forward_variance": None, "backward_variance": None,
        })  # fmt: skip
    return {"spec": analysis.spec.name, "scheme": scheme, "layers": layers,
            "output_variance": None, "warnings": ["symbolic spec: variances need --set values"]}  # fmt: skip


def _text_or_number(value):
    from archcalc.language.expr import to_text

    return value if isinstance(value, (int, float)) else to_text(value)


def _style(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from archcalc.questions.style import render, style_layers

    analysis = _analysis(args, parser)
    split = lambda text: [name.strip() for name in text.split(",") if name.strip()]  # noqa: E731
    try:
        layers = style_layers(analysis, split(args.content), split(args.style))
    except ArchcalcError as err:
        raise err.at(file=args.spec) from None
    data = {"spec": analysis.spec.name, "layers": [layer.to_dict() for layer in layers]}
    passed = True
    if args.verify:
        try:
            from verify import style as style_check
        except ModuleNotFoundError as err:
            raise ArchcalcError(
                f"--verify needs PyTorch ({err.name} is missing): pip install 'archcalc[verify]'"
            ) from None
        result = style_check.run(analysis, layers, steps=args.steps)
        data["verify"] = result
        passed = all(check["passed"] for check in result["checks"])
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        sys.stdout.write(render(analysis, layers))
        if args.verify:
            sys.stdout.write(style_check.render(data["verify"]))
    return 0 if passed else 1


def _solve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from archcalc.language.loader import load_spec
    from archcalc.questions.solve import render, solve

    unknowns = [name.strip() for name in args.unknowns.split(",") if name.strip()]
    default, ranges = (0, 1024), {}
    for text in args.ranges:
        name, _, span = text.rpartition("=")
        lo, sep, hi = span.partition(":")
        try:
            bounds = (int(lo), int(hi))
        except ValueError:
            parser.error(f"--range: expected [NAME=]LO:HI. Received: {text!r}")
        if not sep or bounds[0] > bounds[1]:
            parser.error(f"--range: expected [NAME=]LO:HI with LO <= HI. Received: {text!r}")
        if name:
            ranges[name] = bounds
        else:
            default = bounds
    spec = load_spec(Path(args.spec), file=args.spec)
    try:
        solution = solve(spec, unknowns, args.where, ranges, default, **dict(args.values))
    except ArchcalcError as err:
        raise err.at(file=args.spec) from None
    if args.json:
        sys.stdout.write(json.dumps(solution.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(render(solution))
    return 0 if solution.solutions else 1


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer. Received: {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer. Received: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0. Received: {text!r}")
    return value


def _schemes(text: str | None, parser: argparse.ArgumentParser, flag: str) -> list[str] | None:
    from archcalc.init.recommend import check_scheme

    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        try:
            check_scheme(name)
        except ArchcalcError as err:
            parser.error(f"{flag}: {err}")
    return names


def _shape(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes like 3,224,224. Received: {text!r}"
        ) from None
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(
            f"expected positive sizes like 3,224,224. Received: {text!r}"
        )
    return sizes


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"invalid JSON ({err.msg}). Received: {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object. Received: {text!r}")
    return value


def _rf(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from archcalc.quantities.receptive import receptive_fields
    from archcalc.render.fields import rf_table

    analysis = _analysis(args, parser)
    fields = receptive_fields(analysis.graph)
    try:
        rows = [analysis.row(args.layer)] if args.layer else analysis.rows
    except ArchcalcError as err:
        raise err.at(file=args.spec) from None
    if args.json:
        sys.stdout.write(json.dumps(fields.to_dict(rows), indent=2) + "\n")
    else:
        sys.stdout.write(rf_table(analysis, fields, args.layer))
    return 0


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
                             blocks=not args.flat, training=args.train)  # fmt: skip
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
        raise ArchcalcError("export needs numbers; give every symbol a value (--set NAME=VALUE)")
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
    try:
        from verify import runner
    except ModuleNotFoundError as err:
        raise ArchcalcError(
            f"archcalc verify needs PyTorch and friends ({err.name} is missing): "
            "pip install 'archcalc[verify]'"
        ) from None
    analysis = _analysis(args, parser)
    result = runner.run(analysis, device=args.device, steps=args.steps, batch_size=args.batch_size,
                        data=args.data, seed=args.seed, lr=args.lr, schemes=schemes,
                        seeds=args.seeds, compare=compare, progress=not args.json)  # fmt: skip
    if args.report:
        written = runner.write_report(result, args.report)
        print("report: " + ", ".join(str(p) for p in written), file=sys.stderr)
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(runner.table(result, verbose=args.verbose))
    return 0 if result.passed else 1


def _check(paths: Sequence[str], quiet: bool) -> int:
    from archcalc.language.loader import load_spec
    from archcalc.quantities.analysis import analyze
    from archcalc.quantities.expectations import check_expectations

    failed = 0
    for path in paths:
        try:
            analysis = analyze(load_spec(Path(path), file=path))
        except ArchcalcError as err:
            print(err.at(file=path), file=sys.stdout)
            failed += 1
            continue
        mismatches = check_expectations(analysis)
        for mismatch in mismatches:
            print(f"{path}: {mismatch}")
        if not quiet:
            from archcalc.render.tables import warning_lines

            for line in warning_lines(analysis.warnings):
                print(f"{path}: {line}")
        if mismatches:
            failed += 1
        elif not quiet:
            expects = [item.expect for item in analysis.items] + [analysis.spec.expect]
            checked = sum(value is not None for e in expects if e is not None for _, value in e)
            layers = len(analysis.rows)
            print(f"{path}: ok ({layers} layer{'s' * (layers != 1)}, {checked} expected "
                  f"value{'s hold' if checked != 1 else ' holds'})")  # fmt: skip
    if len(paths) > 1 and not quiet:
        print(f"{len(paths) - failed} of {len(paths)} specs ok")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``archcalc`` command."""
    try:
        return run(argv)
    except ArchcalcError as err:
        print(f"archcalc: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:  # a bug in archcalc, not bad input: still no traceback by default
        if os.environ.get("ARCHCALC_DEBUG"):
            raise
        print(f"archcalc: internal error: {type(err).__name__}: {err} "
              "(please report it; ARCHCALC_DEBUG=1 shows the traceback)", file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":
    sys.exit(main())
