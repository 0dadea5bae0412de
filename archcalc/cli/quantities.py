"""Commands that answer from the spec alone: analyze, explain, check, schema, init, style,
solve, rf, memory."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from archcalc.cli.common import analysis_of as _analysis
from archcalc.cli.common import schemes as _schemes
from archcalc.errors import ArchcalcError


def _analyze(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    fmt = "json" if args.json else args.format
    text = _without_sympy(args, parser, fmt) if args.memory is None and not args.rf else None
    if text is None:
        text = _analysis_text(_analysis(args, parser), args, fmt)
    sys.stdout.write(text)
    return 0


def _without_sympy(
    args: argparse.Namespace, parser: argparse.ArgumentParser, fmt: str
) -> str | None:
    """``analyze`` on archcalc's own symbolic values, which print as sympy's (tables with
    their short names included): sympy's import alone costs twice a numeric analysis of
    ResNet-152. None where the spec needs more than sums, products and floors of its sizes;
    then sympy does the whole analysis. --rf and --memory reason with sympy."""
    from archcalc.language import expr, native

    try:
        with expr.native_values():
            return _analysis_text(_analysis(args, parser), args, fmt)
    except (native.NotNative, RecursionError):  # sympy's answer (or its error) is the answer
        return None


def _analysis_text(analysis, args: argparse.Namespace, fmt: str) -> str:
    from archcalc.render.legend import abbreviated

    if fmt == "json":
        return _rendered(analysis, args, fmt)
    # the columns' cells name sizes as the table does (render.legend)
    batch = [args.memory] if isinstance(args.memory, str) else []
    with abbreviated(analysis, avoid=batch):
        return _rendered(analysis, args, fmt)


def _rendered(analysis, args: argparse.Namespace, fmt: str) -> str:
    from archcalc.render import tables as render

    extra = []
    if args.rf:
        from archcalc.render.fields import rf_column

        extra.append(rf_column(analysis))
    if args.memory is not None:
        from archcalc.quantities.memory import training_memory
        from archcalc.render.memory import memory_column

        try:
            memory = training_memory(analysis, batch=args.memory)
        except ArchcalcError as err:
            raise err.at(file=args.spec) from None
        extra.append(memory_column(memory))
    renderers = {"table": render.table, "markdown": render.markdown, "json": render.to_json}
    text = renderers[fmt](analysis, extra)
    if fmt != "json":
        text += ("\n" if fmt == "markdown" else "") + render.init_verdict(analysis) + "\n"
    return text


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
    from archcalc.questions.solve import MemoryOptions, render, solve

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
        memory = MemoryOptions(args.batch, args.dtype, args.optimizer)
        solution = solve(
            spec, unknowns, args.where, ranges, default, memory, args.checks, **dict(args.values)
        )
    except ArchcalcError as err:
        raise err.at(file=args.spec) from None
    if args.json:
        sys.stdout.write(json.dumps(solution.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(render(solution))
    return 0 if solution.solutions else 1


def _rf(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from archcalc.quantities.receptive import receptive_fields
    from archcalc.render.fields import rf_table

    analysis = _analysis(args, parser)
    fields = receptive_fields(analysis.graph)
    try:
        rows = analysis.select(args.layer) if args.layer else analysis.rows
    except ArchcalcError as err:
        raise err.at(file=args.spec) from None
    if args.json:
        from archcalc.quantities.effective import effective_fields, to_json

        data = fields.to_dict(rows)
        erf = effective_fields(analysis.graph)
        for row, entry in zip(rows, data["layers"]):
            entry["effective"] = to_json(erf.of(row.node))
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        sys.stdout.write(rf_table(analysis, fields, args.layer))
    return 0


def _memory(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from archcalc.quantities.memory import training_memory
    from archcalc.render.memory import memory_table

    analysis = _analysis(args, parser)
    try:
        memory = training_memory(analysis, batch=args.batch, dtype=args.dtype,
                                 optimizer=args.optimizer, device=args.device)  # fmt: skip
        rows = analysis.select(args.layer) if args.layer else analysis.rows
    except ArchcalcError as err:
        raise err.at(file=args.spec) from None
    if args.json:
        data = memory.to_dict()
        if args.layer:
            paths = {row.path for row in rows}
            data["layers"] = [d for d in data["layers"] if d["path"] in paths]
        sys.stdout.write(json.dumps({"spec": analysis.spec.name, **data}, indent=2) + "\n")
    else:
        sys.stdout.write(memory_table(memory, args.layer))
    return 0


def _augment(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from archcalc.questions.augment import augmentation

    result = augmentation(args.image, args.crop, args.flip)
    sys.stdout.write(
        json.dumps(result.to_dict(), indent=2) + "\n" if args.json else result.explain()
    )
    return 0


def _draw(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from archcalc.render.draw import layer_picture
    from archcalc.render.network import network_picture

    if args.layer and args.expand:
        parser.error("--expand draws the network; --layer one layer: give one of them")
    analysis = _analysis(args, parser)
    try:
        if args.layer:
            picture = layer_picture(analysis, args.layer)
        else:
            picture = network_picture(analysis, args.expand)
        picture.write(args.output)
    except ArchcalcError as err:
        raise err.at(file=args.spec) from None
    print(f"picture written to {args.output}", file=sys.stderr)
    return 0


def _conventions(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from archcalc.quantities.conventions import conventions
    from archcalc.render.conventions import conventions_table

    analysis = _analysis(args, parser)
    try:
        figures = conventions(analysis)
    except ArchcalcError as err:
        raise err.at(file=args.spec) from None
    macs = int(analysis.totals["macs"])
    if args.json:
        data = {"spec": analysis.spec.name, "macs": macs,
                "figures": [figure.to_dict() for figure in figures]}  # fmt: skip
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        sys.stdout.write(conventions_table(analysis.spec.name, macs, figures))
    return 0


COMMANDS = {"analyze": _analyze, "explain": _explain, "init": _init, "schema": _schema,
            "solve": _solve, "style": _style, "rf": _rf, "memory": _memory, "augment": _augment, "draw": _draw,
            "conventions": _conventions}  # fmt: skip
