"""The `archcalc memory` table: per layer what it outputs and what backward keeps of it."""

from __future__ import annotations

from typing import Any

from archcalc.language.expr import to_text
from archcalc.quantities.memory import TrainingMemory, _hidden
from archcalc.render.legend import Legend, abbreviated
from archcalc.render.tables import Column, hanging, warning_lines


def size_text(value: Any) -> str:
    """Bytes as ``1,234,567 (1.23 MB)``, MB being 10^6 bytes as torchinfo prints them."""
    if not isinstance(value, int):
        return to_text(value)
    if value < 10**4:
        return f"{value:,}"
    return f"{value:,} ({value / 1e6:,.2f} MB)"


def _short(value: Any) -> str:
    if not isinstance(value, int):
        return to_text(value)
    return f"{value:,}"


def memory_table(memory: TrainingMemory, layer: str | None = None) -> str:
    """The `archcalc memory` report (sizes named as in :mod:`archcalc.render.legend`)."""
    batch = [] if isinstance(memory.batch, int) else [str(memory.batch)]
    with abbreviated(memory.analysis, avoid=batch) as legend:
        return _memory_table(memory, layer, legend)


def _memory_table(memory: TrainingMemory, layer: str | None, legend: Legend) -> str:
    analysis = memory.analysis
    rows = analysis.select(layer) if layer else analysis.rows
    header = ["Path", "Layer", "Output shape", "Output bytes", "Saved bytes", "Kept for backward"]
    body = []
    for row in rows:
        m = memory.of(row.node)
        label = f"{row.type} ({row.name})" if row.name else row.type
        shape = "[" + ", ".join(to_text(v) for v in row.output) + "]"
        kept = ", ".join(k.what + ("" if k.counted else " (counted earlier)") for k in m.kept)
        body.append(
            [row.path, label, shape, _short(m.output_bytes), _short(m.saved_bytes), kept or "--"]
        )
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in (3, 4) else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()  # fmt: skip

    rule = "=" * (sum(widths) + 2 * (len(widths) - 1))  # as wide as the widest row
    width = max(len(rule), 80)  # the legend and the totals wrap here
    batch = _short(memory.batch)
    out = [rule, f"{analysis.spec.name}   training memory at batch {batch}, {memory.dtype}, "
           f"{memory.optimizer} optimizer ({memory.device})", *legend.lines(width),
           rule, line(header), "-" * len(rule),
           *map(line, body), rule]  # fmt: skip
    if not layer:
        hidden = [memory.of(i).saved_bytes for i in _hidden(analysis)]
        merged = sum(hidden) if all(isinstance(v, int) for v in hidden) else None
        if merged:
            out += hanging("Merges (residual adds, concatenations)", size_text(merged), width, 40)
        for name, value in (("Parameters", memory.parameter_bytes), ("Gradients", memory.gradient_bytes),
                            (f"Optimizer state ({memory.optimizer})", memory.optimizer_bytes),
                            ("Saved for backward", memory.saved_bytes),
                            ("Largest gradient pair", memory.working_bytes),
                            ("Training peak (estimate)", memory.peak_bytes)):  # fmt: skip
            out += hanging(name, size_text(value), width, 40)
        t = memory.torchinfo
        out.append(rule)
        sizes = [_mb(t[f"{key}_mb"], t[f"{key}_bytes"])
                 for key in ("input", "forward_backward_pass", "params", "total")]  # fmt: skip
        out += hanging("", "torchinfo would print (MB = 10^6 bytes): input size {}, forward/"
                       "backward pass size {}, params size {}, estimated total size {}"
                       .format(*sizes), width)  # fmt: skip
        out.append("(its forward/backward size is twice the outputs of layers with parameters; "
                   "archcalc counts what autograd keeps)")  # fmt: skip
    out += warning_lines(analysis.warnings)
    return "\n".join(out) + "\n"


def _mb(megabytes: Any, exact: Any) -> str:
    """torchinfo's two decimals, or a formula's exact bytes over 10^6 (not decimals in it)."""
    if isinstance(megabytes, float):
        return f"{megabytes:.2f}"
    return f"({to_text(exact)})/10^6"


def memory_column(memory: TrainingMemory) -> Column:
    """`analyze --memory B`: the bytes each row keeps for backward; in JSON its output bytes too."""
    cells, values = {}, {}
    for row in memory.analysis.rows:
        m = memory.of(row.node)
        cells[row.node] = _short(m.saved_bytes)
        values[row.node] = {
            "output_bytes": _value(m.output_bytes),
            "saved_bytes": _value(m.saved_bytes),
        }
    return Column(
        # "(B=8)", or "(batch B)" where the batch is a symbol (not "(B=B)")
        f"Saved bytes ({'B=' if isinstance(memory.batch, int) else 'batch '}{_short(memory.batch)})",
        "memory",
        cells,
        _short(memory.saved_bytes),
        values,
    )


def _value(value: Any) -> Any:
    return value if isinstance(value, int) else to_text(value)
