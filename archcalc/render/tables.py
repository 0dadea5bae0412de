"""Rendering an Analysis: a torchinfo-style table, Markdown, or JSON."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from typing import Any, Sequence

from archcalc.language.printing import number
from archcalc.layers.registry import shape_text
from archcalc.quantities.analysis import Analysis, Row
from archcalc.render.legend import Legend, abbreviated

COLUMNS = ("Path", "Layer", "Output shape", "W/neuron", "Neurons", "Connections", "Params", "MACs")
_NUMERIC = ("weights_per_neuron", "neurons", "connections", "params", "macs")


@dataclass(frozen=True)
class Column:
    """An opt-in column (``analyze --rf``, ``--memory B``): a header, a cell per row node, the
    total row's cell, and what each row's JSON gains under ``key``."""

    header: str
    key: str
    cells: dict[int, str]
    total: str = ""
    values: dict[int, Any] = field(default_factory=dict)


def _layer_label(row: Row) -> str:
    return f"{row.type} ({row.name})" if row.name else row.type


def _cells(analysis: Analysis, extra: Sequence[Column] = ()) -> tuple[list[list[str]], list[str]]:
    body = [
        [row.path, _layer_label(row), shape_text(row.output),
         *(number(getattr(row, key)) for key in _NUMERIC),
         *(column.cells.get(row.node, "--") for column in extra)]
        for row in analysis.rows
    ]  # fmt: skip
    t = analysis.totals
    total = ["Total", "", shape_text(analysis.output), "",
             number(t["neurons"]), number(t["connections"]), number(t["params"]), number(t["macs"]),
             *(column.total for column in extra)]  # fmt: skip
    return body, total


def _places(paths: list[str], shown: int = 3) -> str:
    more = len(paths) - shown
    return ", ".join(paths[:shown]) + (f" and {more} more" if more > 0 else "")


def warning_lines(warnings) -> list[str]:
    """Warnings for people: one line per distinct message (with the places it applies to);
    strides that leave only padding unused, which lose nothing, collapsed into one info line.

    >>> from archcalc.errors import SpecWarning
    >>> warning_lines([SpecWarning("a", "x"), SpecWarning("b", "x"), SpecWarning("c", "y", "padding")])
    ['warning: a, b: x', 'info: c: y']
    """
    by_cause: dict[str, list[str]] = {}
    example: dict[str, str] = {}
    padding: list = []
    for w in warnings:
        if w.kind == "padding":
            padding.append(w)
            continue
        # "(56 - 1)/2 = 27.5: the last row ... (1 of them input)": one cause, many numbers
        arithmetic, sep, cause = w.message.partition(": ")
        if not (sep and arithmetic.startswith("(") and " = " in arithmetic):
            arithmetic, cause = "", w.message
        by_cause.setdefault(cause, []).append(w.path)
        example.setdefault(cause, arithmetic)
    lines = []
    for cause, paths in by_cause.items():
        worked = example[cause]
        if worked and len(paths) > 1:
            lines.append(f"warning: {_places(paths)}: {cause}; e.g. at {paths[0]}: {worked}")
        else:
            lines.append(f"warning: {_places(paths)}: {worked + ': ' if worked else ''}{cause}")
    if len(padding) == 1:
        lines.append(f"info: {padding[0].path}: {padding[0].message}")
    elif padding:
        first = padding[0]
        lines.append(f"info: {_places([w.path for w in padding])}: strides leave only padding "
                     f"uncovered (no input value is lost); e.g. at {first.path}: "
                     f"{first.message.partition(': ')[0]}")  # fmt: skip
    return lines


def _notes(analysis: Analysis) -> list[str]:
    lines = warning_lines(analysis.warnings)
    lines += assumption_lines(analysis.assumptions)
    return lines


#: Largest size searched for a symbol's smallest valid value.
_MAX_SIZE = 1 << 20


def assumption_lines(assumptions: list[tuple[str, str]]) -> list[str]:
    """Conditions a symbolic analysis assumes, for people: those on one symbol summarised as
    the smallest value that meets all of them (sizes only grow with their symbol), the rest
    listed.

    >>> assumption_lines([("a", "S >= 3"), ("b", "floor(S/2) >= 5"), ("c", "J + K >= 4")])
    ['assumes: S >= 10 (the tightest of 2 conditions, at b: floor(S/2) >= 5)', 'assumes: c: J + K >= 4']
    >>> assumption_lines([("p", "ceil(H/2 - 1/2) >= 0"), ("q", "ceil(H/2 - 1/2) >= 0")])
    ['assumes: H >= 1, which every size meets (2 conditions, e.g. at p: ceil(H/2 - 1/2) >= 0)']
    """
    from archcalc.language.conditions import condition_names, parse_condition

    by_symbol: dict[str, list[tuple[str, str, tuple]]] = {}
    other = []
    for path, condition in assumptions:
        try:
            tree = parse_condition(condition)
            names = condition_names(tree)
        except Exception:  # noqa: BLE001 - an unparsable condition is shown as it is
            names, tree = frozenset(), None
        if tree is not None and len(names) == 1:
            by_symbol.setdefault(next(iter(names)), []).append((path, condition, tree))
        else:
            other.append(f"assumes: {path}: {condition}")
    lines = []
    for name, conditions in by_symbol.items():
        smallest = _smallest(name, [tree for _, _, tree in conditions])
        if smallest is None or len(conditions) == 1:
            lines += [f"assumes: {path}: {condition}" for path, condition, _ in conditions]
            continue
        tightest = next(((p, c) for p, c, tree in conditions
                         if not _holds(tree, name, smallest - 1)), None)  # fmt: skip
        if tightest is None:  # all hold at 0 too (sympy could not tell they always hold)
            path, condition, _ = conditions[0]
            lines.append(f"assumes: {name} >= 1, which every size meets ({len(conditions)} "
                         f"conditions, e.g. at {path}: {condition})")  # fmt: skip
            continue
        lines.append(f"assumes: {name} >= {smallest} (the tightest of {len(conditions)} "
                     f"conditions, at {tightest[0]}: {tightest[1]})")  # fmt: skip
    return lines + other


def _holds(tree: tuple, name: str, value: int) -> bool:
    from archcalc.language.conditions import evaluate_condition

    try:
        return evaluate_condition(tree, {name: value})
    except Exception:  # noqa: BLE001 - e.g. a division by zero at this value
        return False


def _smallest(name: str, trees: list[tuple]) -> int | None:
    """The smallest positive value meeting every condition, found by bisection (conditions on
    sizes hold from some value on); None if none up to 2^20 does, or they do not hold
    from it on."""
    if not all(_holds(t, name, _MAX_SIZE) for t in trees):
        return None
    lo, hi = 0, _MAX_SIZE  # all hold at hi; lo is below every answer
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if all(_holds(t, name, mid) for t in trees):
            hi = mid
        else:
            lo = mid
    for probe in (hi, hi + 1, hi + 7, 2 * hi):  # spot-check that they keep holding above it
        if not all(_holds(t, name, probe) for t in trees):
            return None
    return hi


def hanging(head: str, text: str, width: int, indent: int | None = None) -> list[str]:
    """``head`` then ``text``, wrapped at spaces to ``width`` with the later lines under the
    text's start (``indent``: a column to start it in, else just after ``head``). A symbolic
    total (ResNet-152's MACs with H, W free is a sum of 17 terms) reads as a paragraph, not
    one line ten times the table's width.

    >>> print("\\n".join(hanging("Total MACs: ", "9408*h1*w1 + 147456*h2*w2 + 512000", 40)))
    Total MACs: 9408*h1*w1 + 147456*h2*w2 +
                512000
    """
    start = len(head) if indent is None else max(indent, len(head))
    lines = textwrap.wrap(text, max(width - start, 20), break_on_hyphens=False) or [""]
    return [(head if i == 0 else "").ljust(start) + line for i, line in enumerate(lines)]


def _summary(analysis: Analysis, width: int | None = None) -> list[str]:
    """The totals, each wrapped to ``width`` where one is given (the text table's)."""
    t = analysis.totals
    lines = [
        ("Total params: ", number(t["params"])),
        ("Total neurons: ", number(t["neurons"])),
        ("Total connections: ", number(t["connections"])),
        ("Total MACs: ", f"{number(t['macs'])}   (FLOPs = 2 x MACs = {number(t['flops'])})"),
    ]
    if width is None:
        return [head + text for head, text in lines]
    return [out for head, text in lines for out in hanging(head, text, width)]


#: A symbolic total wider than this (and than its column's rows) is printed under the table
#: only: ResNet-152's MACs with H, W free is a 1,500-character sum, which would pad every
#: line of the table to that width.
WIDEST_TOTAL = 40
_BELOW = "(below)"


def table(analysis: Analysis, extra: Sequence[Column] = ()) -> str:
    """The summary table, in the manner of torchinfo / Keras ``summary()``."""
    with abbreviated(analysis) as legend:
        return _table(analysis, extra, legend)


def _table(analysis: Analysis, extra: Sequence[Column], legend: Legend) -> str:
    body, total = _cells(analysis, extra)
    columns = [*COLUMNS, *(column.header for column in extra)]
    below = []  # the opt-in columns' wide totals, printed under the table as the others
    for i in range(4, len(columns)):  # neurons, connections, params, MACs: in _summary()
        widest = max(len(columns[i]), *(len(r[i]) for r in body))
        if len(total[i]) > max(widest, WIDEST_TOTAL):
            if i >= len(COLUMNS):
                below.append((f"Total {columns[i]}: ", total[i]))
            total[i] = _BELOW
    widths = [max(len(r[i]) for r in [columns, *body, total]) for i in range(len(columns))]

    def line(cells: list[str]) -> str:
        parts = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    rule_width = sum(widths) + 2 * (len(widths) - 1)
    heavy, light = "=" * rule_width, "-" * rule_width
    out = [
        heavy,
        f"{analysis.spec.name}   input {shape_text(analysis.input)}",
        *legend.lines(max(rule_width, 80)),
        heavy,
    ]
    out += [line(columns), light, *map(line, body), light, line(total), heavy]
    width = max(rule_width, 80)
    out += _summary(analysis, width)
    out += [text for head, value in below for text in hanging(head, value, width)]
    notes = _notes(analysis)
    if notes:
        out += [light, *notes]
    return "\n".join(out) + "\n"


def markdown(analysis: Analysis, extra: Sequence[Column] = ()) -> str:
    """The same table as GitHub-flavoured Markdown."""
    with abbreviated(analysis) as legend:
        return _markdown(analysis, extra, legend)


def _markdown(analysis: Analysis, extra: Sequence[Column], legend: Legend) -> str:
    body, total = _cells(analysis, extra)
    body = [[_md(c) for c in row] for row in body]
    total = [f"**{_md(c)}**" if c else c for c in total]
    columns = [*COLUMNS, *(column.header for column in extra)]
    align = ["---", "---", "---"] + ["---:"] * (len(columns) - 3)

    def line(cells):
        return "| " + " | ".join(cells) + " |"

    out = [f"### {analysis.spec.name}", "", f"Input: `{shape_text(analysis.input)}`", ""]
    out += [f"Where `{line.removeprefix('where ')}`" for line in legend.lines(10**9)]
    out += [""] * bool(legend.definitions)
    out += [line(columns), line(align), *map(line, body), line(total), ""]
    out += [f"- {_md(text)}" for text in _summary(analysis)]
    notes = _notes(analysis)
    if notes:
        out += ["", *(f"- {note}" for note in notes)]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    """A cell's text for Markdown: | would end the cell and * start emphasis (formulas hold *)."""
    return text.replace("|", "\\|").replace("*", "\\*")


def to_json(analysis: Analysis, extra: Sequence[Column] = ()) -> str:
    """``analysis.to_dict()`` as indented JSON; each opt-in column adds its key to every row."""
    data = analysis.to_dict()
    for column in extra:
        for row, entry in zip(analysis.rows, data["layers"]):
            entry[column.key] = column.values.get(row.node)
    return json.dumps(data, indent=2) + "\n"


# ----------------------------------------------------------------------------- initialisation


def _short(value: float | None) -> str:
    from archcalc.init.propagation import variance_text

    return "--" if value is None else variance_text(value)


def _short4(value: float) -> str:
    from archcalc.init.propagation import variance_text

    return variance_text(value, 4)


def init_verdict(analysis: Analysis) -> str:
    """One line for `archcalc analyze`: the recommended init against PyTorch's default."""
    from archcalc.init.propagation import propagate
    from archcalc.init.recommend import is_weighted

    if analysis.symbolic:
        return (
            "init: symbolic spec: `archcalc init` shows each layer's variance factor as a formula"
        )
    if not any(is_weighted(row) for row in analysis.rows):
        return "init: no weighted layers"
    recommended = propagate(analysis, "recommended")
    if not recommended.layers:
        return "init: no weighted layers"
    default = propagate(analysis, "torch_default")

    return (f"init: recommended -> {recommended.summary} (output variance "
            f"{_short(recommended.output_variance)}); PyTorch default -> {default.summary} "
            f"(output variance {_short(default.output_variance)}); details: archcalc init")  # fmt: skip


def init_table(analysis: Analysis, scheme: str) -> str:
    """The `archcalc init` report: a row per weighted layer, the code to apply, a verdict."""
    with abbreviated(analysis) as legend:
        return _init_table(analysis, scheme, legend)


def _init_table(analysis: Analysis, scheme: str, legend: Legend) -> str:
    from archcalc.init.recommend import recommend, variance_factor, weight_variance

    recs = recommend(analysis)
    symbolic = analysis.symbolic
    prediction = None
    if not symbolic:
        from archcalc.init.propagation import propagate

        prediction = propagate(analysis, scheme)
    header = [
        "Path",
        "Type",
        "Activation",
        "G0",
        "G1",
        "fan_in",
        "fan_out",
        "Recommended",
        "std",
        "bound",
    ]
    header += ["Var[w]", "Factor"] if symbolic else ["Fwd var", "Bwd var", "Bwd norm", "Flag"]
    body = []
    for i, rec in enumerate(recs):
        cells = [rec.row.path, rec.row.type, rec.activation, _value(rec.g0), _value(rec.g1), number(rec.fans.fan_in),
                 number(rec.fans.fan_out), rec.scheme, _value(rec.std), _value(rec.bound)]  # fmt: skip
        if prediction is None:
            factor = variance_factor(rec, scheme)
            # a float where Var[w] is one (sympy's Float prints 15 digits: 1.00000000000000);
            # exact values (1/3) stay exact
            factor = float(factor) if getattr(factor, "is_Float", False) else factor
            cells += [_value(weight_variance(rec, scheme)), _value(factor)]
        else:
            layer = prediction.layers[i]
            cells += [_short(layer.forward), _short(layer.backward), _short(layer.backward_norm),
                      layer.flag() or ""]  # fmt: skip
        body.append(cells)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 3 or i == 7 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()  # fmt: skip

    rule = "=" * (sum(widths) + 2 * (len(widths) - 1))
    title = f"{analysis.spec.name}   init: {scheme}{' (symbolic)' if symbolic else ''}"
    out = [
        rule,
        title,
        *legend.lines(max(len(rule), 80)),
        rule,
        line(header),
        "-" * len(rule),
        *map(line, body),
        rule,
    ]
    if prediction is not None:
        out.append(prediction.verdict)
        out.append(f"output variance {_short4(prediction.output_variance)} (course's product "
                   f"formula: {_short4(prediction.output_variance_product)}); gradient at the input "
                   f"{_short4(prediction.input_gradient)}")  # fmt: skip
        out.append("G0 = E[φ(z)²]/Var[z] and G1 = E[φ'(z)²]: the activation's forward and backward "
                   "gains (the course's n_in·Var[w]·G0 = 1 and G1·n_out·Var[w] = 1); for a "
                   "smooth activation, at small variance (GELU, SiLU: 1/4): Fwd and Bwd var "
                   "use the exact gains at each layer's variance")  # fmt: skip
        out.append("Fwd var: pre-activation variance (input: 1); Bwd var: gradient variance at the "
                   "layer's input (output: 1); Bwd norm: its squared norm relative to the output "
                   "gradient's. Flag (from Fwd var and Bwd norm, healthy in [0.01, 100]): "
                   "degrading/growing within a factor 1e8, vanishing/exploding beyond")  # fmt: skip
    else:
        out.append(f"Var[w] under {scheme}; factor = G0·fan_in·Var[w] per layer (1 keeps the "
                   "variance); give every symbol a value (--set) for the full prediction")  # fmt: skip
    out += ["", "apply (PyTorch, then Keras):"]
    for code, paths in _grouped(recs, lambda r: (r.torch, r.keras)):
        out.append(f"  {paths}: {code[0]}")
        out.append(f"  {' ' * len(paths)}  {code[1]}")
    notes = [f"  {r.row.path}: {r.fans.torch_differs}" for r in recs if r.fans.torch_differs]
    if notes:  # the remark once, not on each of EfficientNet's 16 depthwise convolutions
        out += ["", "where PyTorch's _calculate_fan_in_and_fan_out differs (archcalc uses the true "
                "fans above):", *notes]  # fmt: skip
    # each reason with the layers it is for, in the order they run (as the code above)
    out += [
        "",
        "why:",
        *(f"  {paths}: {reason}" for reason, paths in _grouped(recs, lambda r: r.reason)),
    ]
    if prediction is not None and prediction.warnings:
        out += ["", "assumed:", *(f"  {w}" for w in prediction.warnings)]
    return "\n".join(out) + "\n"


def _value(value) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else number(value)


def _grouped(recs, key) -> list[tuple]:
    groups: dict = {}
    for rec in recs:
        groups.setdefault(key(rec), []).append(rec.row.path)
    result = []
    for code, paths in groups.items():
        shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        result.append((code, shown))
    return result
