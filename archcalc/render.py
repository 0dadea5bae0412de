"""Rendering an Analysis: a torchinfo-style table, Markdown, or JSON."""

from __future__ import annotations

import json

from archcalc.analysis import Analysis, Row
from archcalc.expr import to_text
from archcalc.layers import shape_text

COLUMNS = ("Path", "Layer", "Output shape", "W/neuron", "Neurons", "Connections", "Params", "MACs")
_NUMERIC = ("weights_per_neuron", "neurons", "connections", "params", "macs")


def number(value) -> str:
    """``1,644,800`` for ints, the expression for symbolic values, ``--`` for None.

    >>> number(1644800), number(None)
    ('1,644,800', '--')
    """
    if value is None:
        return "--"
    return f"{value:,}" if isinstance(value, int) else to_text(value)


def _layer_label(row: Row) -> str:
    return f"{row.type} ({row.name})" if row.name else row.type


def _cells(analysis: Analysis) -> tuple[list[list[str]], list[str]]:
    body = [
        [row.path, _layer_label(row), shape_text(row.output),
         *(number(getattr(row, key)) for key in _NUMERIC)]
        for row in analysis.rows
    ]  # fmt: skip
    t = analysis.totals
    total = ["Total", "", shape_text(analysis.output), "",
             number(t["neurons"]), number(t["connections"]), number(t["params"]), number(t["macs"])]  # fmt: skip
    return body, total


def _notes(analysis: Analysis) -> list[str]:
    lines = [f"warning: {w.path}: {w.message}" for w in analysis.warnings]
    lines += [f"assumes: {path}: {condition}" for path, condition in analysis.assumptions]
    return lines


def _summary(analysis: Analysis) -> list[str]:
    t = analysis.totals
    return [
        f"Total params: {number(t['params'])}",
        f"Total neurons: {number(t['neurons'])}",
        f"Total connections: {number(t['connections'])}",
        f"Total MACs: {number(t['macs'])}   (FLOPs = 2 x MACs = {number(t['flops'])})",
    ]


def table(analysis: Analysis) -> str:
    """The summary table, in the manner of torchinfo / Keras ``summary()``."""
    body, total = _cells(analysis)
    widths = [max(len(r[i]) for r in [list(COLUMNS), *body, total]) for i in range(len(COLUMNS))]

    def line(cells: list[str]) -> str:
        parts = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    rule_width = sum(widths) + 2 * (len(widths) - 1)
    heavy, light = "=" * rule_width, "-" * rule_width
    out = [heavy, f"{analysis.spec.name}   input {shape_text(analysis.input)}", heavy]
    out += [line(list(COLUMNS)), light, *map(line, body), light, line(total), heavy]
    out += _summary(analysis)
    notes = _notes(analysis)
    if notes:
        out += [light, *notes]
    return "\n".join(out) + "\n"


def markdown(analysis: Analysis) -> str:
    """The same table as GitHub-flavoured Markdown."""
    body, total = _cells(analysis)
    total = [f"**{c}**" if c else c for c in total]
    align = ["---", "---", "---"] + ["---:"] * (len(COLUMNS) - 3)

    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [f"### {analysis.spec.name}", "", f"Input: `{shape_text(analysis.input)}`", ""]
    out += [line(COLUMNS), line(align), *map(line, body), line(total), ""]
    out += [f"- {text}" for text in _summary(analysis)]
    notes = _notes(analysis)
    if notes:
        out += ["", *(f"- {note}" for note in notes)]
    return "\n".join(out) + "\n"


def to_json(analysis: Analysis) -> str:
    """``analysis.to_dict()`` as indented JSON."""
    return json.dumps(analysis.to_dict(), indent=2) + "\n"
