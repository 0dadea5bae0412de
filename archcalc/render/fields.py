"""The receptive-field table of `archcalc rf` (and its explanation for `explain --rf`)."""

from __future__ import annotations

from archcalc.language.expr import to_text
from archcalc.quantities.analysis import Analysis
from archcalc.quantities.effective import effective_fields, std_text
from archcalc.quantities.receptive import ReceptiveFields, receptive_fields
from archcalc.render.legend import Legend, abbreviated
from archcalc.render.tables import Column, warning_lines


def _value(v) -> str:
    return str(v) if isinstance(v, int) else (str(v) if hasattr(v, "denominator") else to_text(v))


def _dims_text(texts) -> str:
    texts = list(texts)
    return texts[0] if len(set(texts)) == 1 else "×".join(texts)


def _dims(values) -> str:
    texts = [_value(v) for v in values]
    return texts[0] if len(set(texts)) == 1 else "×".join(texts)


def rf_table(
    analysis: Analysis, rf: ReceptiveFields | None = None, layer: str | None = None
) -> str:
    """Size r, stride S and padding P per row (one value where every dimension agrees), and
    the effective field's spread σ (the path distribution's standard deviation)."""
    with abbreviated(analysis) as legend:
        return _rf_table(analysis, rf, layer, legend)


def _rf_table(
    analysis: Analysis, rf: ReceptiveFields | None, layer: str | None, legend: Legend
) -> str:
    rf = rf or receptive_fields(analysis.graph)
    erf = effective_fields(analysis.graph)
    rows = analysis.select(layer) if layer else analysis.rows
    header = ["Path", "Layer", "Output shape", "Field r", "Stride S", "Padding P", "ERF σ", "Note"]
    body = []
    for row in rows:
        fields = rf.spatial(row.node)
        label = f"{row.type} ({row.name})" if row.name else row.type
        shape = "[" + ", ".join(to_text(v) for v in row.output) + "]"
        if rf.whole[row.node]:
            cells = ["whole input", "--", "--"]
        elif not fields:
            cells = ["--", "--", "--"]
        else:
            cells = [_dims(f[i] for f in fields) for i in range(3)]
        note = rf.notes.get(row.node, "")
        if not note and rf.upsampled[row.node] and fields:
            note = "after upsampling: the largest field, positions vary"
        moments = erf.of(row.node)
        spread = _dims_text(std_text(v) for v in moments.variance) if moments else "--"
        body.append([row.path, label, shape, *cells, spread, note])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 3 or i == 7 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()  # fmt: skip

    rule = "=" * (sum(widths) + 2 * (len(widths) - 1))
    input_text = "[" + ", ".join(to_text(v) for v in analysis.input) + "]"
    out = [rule, f"{analysis.spec.name}   receptive fields, input {input_text}",
           *legend.lines(max(len(rule), 80)), rule,
           line(header), "-" * len(rule), *map(line, body), rule]  # fmt: skip
    out.append("unit u sees input positions -P + u·S ... -P + u·S + r - 1 in each spatial "
               "dimension (Araujo, Norris & Sim 2019)")  # fmt: skip
    out.append("ERF σ: spread of the paths to a unit (all-ones weights; Luo et al. 2016), "
               "σ² = Σ (S·d)²(k²-1)/12 along a chain; -- where it is not linear")  # fmt: skip
    out += warning_lines(rf.warnings)
    return "\n".join(out) + "\n"


_LABEL_WIDTH = 19  # as explain's labels, so every "=" of a layer's working lines up


def _label(text: str) -> str:
    return f"  {text.ljust(_LABEL_WIDTH)}= "


def rf_working(analysis: Analysis, rf: ReceptiveFields, row) -> list[str]:
    """The recurrence for one row, with numbers: what `explain --rf` adds under a layer."""
    node = analysis.graph.nodes[row.node]
    fields = rf.spatial(node)
    if rf.whole[node.id]:
        return [
            _label("receptive field")
            + "the whole input"
            + (f" ({rf.notes[node.id]})" if node.id in rf.notes else "")
        ]
    if not fields:
        return []
    before = rf.spatial(node.inputs[0]) if node.inputs else []
    h = node.hyper
    lines = []
    if "kernel_size" in h and before and not node.type.startswith("conv_transpose"):
        d = h.get("dilation", (1,) * len(h["kernel_size"]))
        for axis, ((r, S, P), (r0, S0, P0)) in enumerate(zip(fields, before)):
            k, s, p, di = h["kernel_size"][axis], h["stride"][axis], h["padding"][axis], d[axis]
            lines.append(
                f"{_label(f'field (dim {axis + 1})')}r + d(k-1)·S = {_value(r0)} + {_value(di)}·{_value(k - 1)}·"
                f"{_value(S0)} = {_value(r)}; stride S·s = {_value(S0)}·{_value(s)} = {_value(S)}; "
                f"padding P + p·S = {_value(P0)} + {_value(p)}·{_value(S0)} = {_value(P)}"
            )
    else:
        lines.append(_label("field") + ", ".join(f"{_value(r)}/{_value(S)}/{_value(P)}"
                                                        for r, S, P in fields) + " (size/stride/padding)")  # fmt: skip
    lines += _erf_working(analysis, node)
    return lines


def _erf_working(analysis: Analysis, node) -> list[str]:
    """The effective field's variance recurrence for a window, with numbers."""
    erf = effective_fields(analysis.graph)
    moments = erf.of(node)
    if moments is None:
        return []
    h = node.hyper
    before = erf.of(node.inputs[0]) if node.inputs else None
    text = _dims_text(std_text(v) for v in moments.variance)
    if "kernel_size" in h and before is not None and not node.type.startswith("conv_transpose"):
        d = h.get("dilation", (1,) * len(h["kernel_size"]))
        lines = []
        for axis, k in enumerate(h["kernel_size"]):
            S0, v0, v = before.jump[axis], before.variance[axis], moments.variance[axis]
            lines.append(f"{_label(f'ERF σ² (dim {axis + 1})')}σ² + (S·d)²(k²-1)/12 = {_value(v0)} + "
                         f"({_value(S0)}·{_value(d[axis])})²·{_value(k * k - 1)}/12 = {_value(v)}")  # fmt: skip
        return lines + [f"{_label('ERF σ')}{text} (path counts with all-ones weights)"]
    return [f"{_label('ERF σ')}{text} (path counts with all-ones weights)"]


def rf_column(analysis: Analysis, rf: ReceptiveFields | None = None) -> Column:
    """`analyze --rf`: one column "r/S/P" and, in JSON, each row's field."""
    rf = rf or receptive_fields(analysis.graph)
    data = rf.to_dict(analysis.rows)["layers"]
    cells, values = {}, {}
    for row, entry in zip(analysis.rows, data):
        fields = rf.spatial(row.node)
        if rf.whole[row.node]:
            cells[row.node] = "whole input"
        elif fields:
            cells[row.node] = "/".join(_dims(f[i] for f in fields) for i in range(3))
        values[row.node] = {k: entry[k] for k in ("size", "stride", "padding", "whole_input")}
    return Column("Field r/S/P", "receptive_field", cells, "", values)
