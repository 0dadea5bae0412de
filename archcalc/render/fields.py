"""The receptive-field table of `archcalc rf` (and its explanation for `explain --rf`)."""

from __future__ import annotations

from archcalc.language.expr import to_text
from archcalc.quantities.analysis import Analysis
from archcalc.quantities.receptive import ReceptiveFields, receptive_fields
from archcalc.render.tables import warning_lines


def _value(v) -> str:
    return str(v) if isinstance(v, int) else (str(v) if hasattr(v, "denominator") else to_text(v))


def _dims(values) -> str:
    texts = [_value(v) for v in values]
    return texts[0] if len(set(texts)) == 1 else "×".join(texts)


def rf_table(
    analysis: Analysis, rf: ReceptiveFields | None = None, layer: str | None = None
) -> str:
    """Size r, stride S and padding P per row (one value where every dimension agrees)."""
    rf = rf or receptive_fields(analysis.graph)
    rows = [analysis.row(layer)] if layer else analysis.rows
    header = ["Path", "Layer", "Output shape", "Field r", "Stride S", "Padding P", "Note"]
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
        body.append([row.path, label, shape, *cells, note])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 3 or i == 6 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()  # fmt: skip

    rule = "=" * (sum(widths) + 2 * (len(widths) - 1))
    input_text = "[" + ", ".join(to_text(v) for v in analysis.input) + "]"
    out = [rule, f"{analysis.spec.name}   receptive fields, input {input_text}", rule,
           line(header), "-" * len(rule), *map(line, body), rule]  # fmt: skip
    out.append("unit u sees input positions -P + u·S ... -P + u·S + r - 1 in each spatial "
               "dimension (Araujo, Norris & Sim 2019)")  # fmt: skip
    out += warning_lines(rf.warnings)
    return "\n".join(out) + "\n"


def rf_working(analysis: Analysis, rf: ReceptiveFields, row) -> list[str]:
    """The recurrence for one row, with numbers: what `explain --rf` adds under a layer."""
    node = analysis.graph.nodes[row.node]
    fields = rf.spatial(node)
    if rf.whole[node.id]:
        return [
            "  receptive field = the whole input"
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
                f"  field (dim {axis + 1})   = r + d(k-1)·S = {_value(r0)} + {_value(di)}·{_value(k - 1)}·"
                f"{_value(S0)} = {_value(r)}; stride S·s = {_value(S0)}·{_value(s)} = {_value(S)}; "
                f"padding P + p·S = {_value(P0)} + {_value(p)}·{_value(S0)} = {_value(P)}"
            )
    else:
        lines.append("  field              = " + ", ".join(f"{_value(r)}/{_value(S)}/{_value(P)}"
                                                        for r, S, P in fields) + " (size/stride/padding)")  # fmt: skip
    return lines
