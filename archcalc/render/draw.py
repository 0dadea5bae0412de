"""`archcalc draw SPEC --layer NAME`: the convolution-arithmetic picture of one layer.

As in Dumoulin & Visin's "A guide to convolution arithmetic for deep learning": the input
grid with its zero padding, the window at its first two positions along the width (and the
first of the next row) with the stride between them, the border a stride leaves uncovered,
and the output grid with the units those windows make. A transposed convolution is drawn as
the direct convolution it equals: the input spread out with s - 1 zeros between units and
d(k-1) - p of padding, a stride-1 window. Pools are drawn like convolutions.
"""

from __future__ import annotations

from typing import Any

from archcalc.errors import ArchcalcError
from archcalc.quantities.analysis import Analysis
from archcalc.render.canvas import Canvas

_WINDOWED = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
             "maxpool1d", "maxpool2d", "maxpool3d", "avgpool1d", "avgpool2d", "avgpool3d", "subsample")  # fmt: skip
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c")


def _axis(h: dict, inp: tuple, out: tuple, axis: int, transposed: bool) -> dict[str, Any]:
    """One spatial axis: the grid drawn (cells, padding before/after, zeros between cells) and
    the windows (k taps, dilation d, stride s)."""
    n, m = inp[axis + 1], out[axis + 1]
    k, s = h["kernel_size"][axis], h["stride"][axis]
    d = h.get("dilation", (1,) * len(h["kernel_size"]))[axis]
    before = h["padding"][axis]
    after = h.get("padding_end", h["padding"])[axis]
    if transposed:  # the equivalent direct convolution
        extra = h.get("output_padding", (0,) * len(h["kernel_size"]))[axis]
        span = d * (k - 1)
        return {"n": n, "m": m, "k": k, "s": 1, "d": d, "before": span - before,
                "after": span - before + extra, "gap": s - 1, "stride": s, "p": before}  # fmt: skip
    return {"n": n, "m": m, "k": k, "s": s, "d": d, "before": before, "after": after, "gap": 0,
            "stride": s, "p": before}  # fmt: skip


def layer_picture(analysis: Analysis, layer: str) -> Canvas:
    """The arithmetic of one windowed layer (by path or name)."""
    row = analysis.row(layer)
    if row.type not in _WINDOWED:
        raise ArchcalcError(f"draw --layer shows windowed layers (convolutions, pooling); "
                            f"{row.path} is {row.type}. Received: --layer {layer}")  # fmt: skip
    if any(not isinstance(v, int) for v in (*row.input, *row.output)):
        raise analysis.needs_numbers("draw")
    h, transposed = row.hyper, row.type.startswith("conv_transpose")
    dims = len(row.input) - 1
    axes = [_axis(h, row.input, row.output, a, transposed) for a in range(dims)]
    # draw the last two spatial axes (rows: height, columns: width); 1-d: one row
    width_axis = axes[-1]
    height_axis = axes[-2] if dims >= 2 else {"n": 1, "m": 1, "k": 1, "s": 1, "d": 1, "before": 0,
                                              "after": 0, "gap": 0, "stride": 1, "p": 0}  # fmt: skip
    full = [_extent(a) for a in (height_axis, width_axis)]
    # a large input is shown by its top-left corner: the padding, the first windows, a margin
    grid = [
        min(n, _VIEW) if n <= _VIEW else _corner(a) for n, a in zip(full, (height_axis, width_axis))
    ]
    cropped = grid != full
    out_grid = tuple(min(a["m"], 6) if c else a["m"] for a, c in
                     zip((height_axis, width_axis), (grid[0] < full[0], grid[1] < full[1])))  # fmt: skip
    cell = max(2.0, min(26.0, 430.0 / max(grid[1], 1), 330.0 / max(grid[0], 1)))
    out_cell = max(2.0, min(26.0, 260.0 / max(out_grid[1], 1), 330.0 / max(out_grid[0], 1)))
    left, top = 30.0, 104.0
    input_w, input_h = grid[1] * cell, grid[0] * cell
    kind = (
        "transposed convolution"
        if transposed
        else ("pooling" if "pool" in row.type else "convolution")
    )
    # the gap holds the arrow and its label ("transposed convolution" is wider than 90 pixels)
    gap = max(90.0, len(kind) * 10 * 0.6 + 24)
    out_left = left + input_w + gap
    canvas = Canvas(
        out_left + out_grid[1] * out_cell + 40, top + max(input_h, out_grid[0] * out_cell) + 110
    )
    title = f"{row.name + ': ' if row.name else ''}{row.type} ({row.path})"
    canvas.text(left, 24, title, 15, "start", bold=True)
    canvas.text(left, 44, _settings(row.type, height_axis, width_axis, dims), 11, "start")
    canvas.text(left, 64, f"input {_dims(row.input[1:])}" + (" (spread: s - 1 zeros between units)"
                if transposed else "") + f"  →  output {_dims(row.output[1:])}", 11, "start")  # fmt: skip
    _input_grid(canvas, left, top, cell, height_axis, width_axis, grid)
    if cropped:
        canvas.text(left + input_w + 4, top + input_h / 2, "…", 16, "start")
        canvas.text(left + input_w / 2, top + input_h + 16, "…", 16)
        padded = any(a["before"] or a["after"] for a in (height_axis, width_axis))
        canvas.text(left, top + input_h + 34, f"the top-left corner of the {full[0]}×{full[1]} "
                    f"{'padded grid' if padded else 'input'}, and of the output", 10, "start",
                    colour="#555")  # fmt: skip
    windows = _windows(height_axis, width_axis)
    for colour, (r0, c0) in zip(COLOURS, windows):
        for tr in range(height_axis["k"]):
            for tc in range(width_axis["k"]):
                y = top + (r0 + tr * height_axis["d"]) * cell
                x = left + (c0 + tc * width_axis["d"]) * cell
                canvas.rect(x, y, cell, cell, fill=colour, stroke=colour, width=0.5, opacity=0.35)
        span_h = (height_axis["d"] * (height_axis["k"] - 1) + 1) * cell
        span_w = (width_axis["d"] * (width_axis["k"] - 1) + 1) * cell
        canvas.rect(left + c0 * cell, top + r0 * cell, span_w, span_h, stroke=colour, width=2)
    if len(windows) > 1 and windows[1][0] == windows[0][0]:  # the stride along the width
        y = top - 10
        x0, x1 = left + windows[0][1] * cell, left + windows[1][1] * cell
        canvas.line(x0, y, x1, y, COLOURS[1], 1.5, arrow=True)
        # a transposed convolution's windows move one cell over the spread input: its stride
        # is in the spread (the header says so), not in the step
        step = f"step {width_axis['s']}" if transposed else f"stride {width_axis['s']}"
        canvas.text((x0 + x1) / 2, y - 4, step, 10, colour=COLOURS[1])
    # the output grid
    out_top = top
    canvas.rect(
        out_left, out_top, out_grid[1] * out_cell, out_grid[0] * out_cell, stroke="#333", width=1.2
    )
    if out_cell >= 5:
        for r in range(out_grid[0]):
            for c in range(out_grid[1]):
                canvas.rect(out_left + c * out_cell, out_top + r * out_cell, out_cell, out_cell,
                            stroke="#999", width=0.5)  # fmt: skip
    for colour, (r, c) in zip(COLOURS, _output_units(height_axis, width_axis)):
        canvas.rect(out_left + c * out_cell, out_top + r * out_cell, out_cell, out_cell, fill=colour,
                    stroke=colour, opacity=0.7)  # fmt: skip
    canvas.line(left + input_w + 12, top + 30, out_left - 12, top + 30, arrow=True)
    canvas.text(left + input_w + gap / 2, top + 22, kind, 10)
    # the working, per axis
    y = top + max(input_h, out_grid[0] * out_cell) + (52 if cropped else 28)
    names = ["width"] if dims == 1 else ["height", "width"]
    for name, a in zip(names, (height_axis, width_axis)[-len(names) :]):
        canvas.text(left, y, f"{name}: {_formula(a, row.type, transposed)}", 11, "start")
        y += 18
    # the legend names only what the picture shows
    axes = (height_axis, width_axis)
    padded = any(a["before"] or a["after"] for a in axes)
    uncovered = any(_extent(a) - 1 > _last_covered(a) for a in axes)
    legend = "   ".join(part for part, shown in (
        ("white: input", True), ("grey dashed: padding", padded),
        ("light: inserted zeros", transposed and any(a["gap"] for a in axes)),
        ("red: never covered", uncovered),
        ("coloured: the first windows and the units they make", True)) if shown)  # fmt: skip
    canvas.text(left, y + 6, legend, 10, "start", colour="#555")
    return canvas


def _extent(a: dict) -> int:
    return a["before"] + a["n"] + (a["n"] - 1) * a["gap"] + a["after"]


def _dims(sizes) -> str:
    return "×".join(str(v) for v in sizes)


def _settings(kind: str, ha: dict, wa: dict, dims: int) -> str:
    def each(key: str) -> str:
        values = [wa[key]] if dims == 1 else [ha[key], wa[key]]
        return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))

    text = f"kernel {each('k')}, stride {each('stride')}, padding {each('p')}"
    if wa["d"] != 1 or ha["d"] != 1:
        text += f", dilation {each('d')}"
    return text


def _corner(a: dict) -> int:
    """Cells of a corner view: the padding, two strides of windows and a margin."""
    return a["before"] + a["d"] * (a["k"] - 1) + 1 + 2 * a["s"] + 3


_VIEW = 40  # grids up to this many cells per axis are drawn whole


def _input_grid(canvas: Canvas, left: float, top: float, cell: float, ha: dict, wa: dict,
                view: list[int]) -> None:  # fmt: skip
    rows, cols = view
    covered = (_last_covered(ha), _last_covered(wa))
    fine = cell >= 5
    for r in range(rows):
        for c in range(cols):
            kind_r, kind_c = _kind(r, ha), _kind(c, wa)
            x, y = left + c * cell, top + r * cell
            uncovered = r > covered[0] or c > covered[1]
            if "pad" in (kind_r, kind_c):
                fill, stroke = "#dddddd", "#aaaaaa"
            elif "zero" in (kind_r, kind_c):
                fill, stroke = "#f3f3f3", "#cccccc"
            else:
                fill, stroke = "white", "#888888"
            if uncovered:
                fill = "#f4b6b6"
            if fine:
                canvas.rect(x, y, cell, cell, fill=fill, stroke=stroke, width=0.5,
                            dash="pad" in (kind_r, kind_c))  # fmt: skip
            elif fill != "white":
                canvas.rect(x, y, cell, cell, fill=fill, stroke=fill, width=0)
    # the input itself, outlined (to the edge of the view where it is cropped)
    x0, y0 = left + wa["before"] * cell, top + ha["before"] * cell
    width = (min(cols, _extent(wa) - wa["after"]) - wa["before"]) * cell
    height = (min(rows, _extent(ha) - ha["after"]) - ha["before"]) * cell
    canvas.rect(x0, y0, width, height, stroke="#222", width=1.5)


def _kind(i: int, a: dict) -> str:
    """What padded position i holds: padding, an inserted zero, or an input unit."""
    j = i - a["before"]
    if j < 0 or j > (a["n"] - 1) * (a["gap"] + 1):
        return "pad"
    return "zero" if j % (a["gap"] + 1) else "unit"


def _last_covered(a: dict) -> int:
    """The last padded position any window reaches."""
    return (a["m"] - 1) * a["s"] + a["d"] * (a["k"] - 1)


def _windows(ha: dict, wa: dict) -> list[tuple[int, int]]:
    """Top-left corners of the first window, the next along the width, the first of the next row."""
    found = [(0, 0)]
    if wa["m"] > 1:
        found.append((0, wa["s"]))
    if ha["m"] > 1:
        found.append((ha["s"], 0))
    return found


def _output_units(ha: dict, wa: dict) -> list[tuple[int, int]]:
    found = [(0, 0)]
    if wa["m"] > 1:
        found.append((0, 1))
    if ha["m"] > 1:
        found.append((1, 0))
    return found


def _formula(a: dict, kind: str, transposed: bool) -> str:
    n, k, d, m = a["n"], a["k"], a["d"], a["m"]
    if transposed:
        s, p = a["stride"], a["p"]
        extra = a["after"] - a["before"]
        return (f"(n - 1)·s - 2p + d(k-1) + output_padding + 1 = ({n} - 1)·{s} - 2·{p} + "
                f"{d}·{k - 1} + {extra} + 1 = {m}")  # fmt: skip
    s, before, after = a["s"], a["before"], a["after"]
    pads = f"{before} + {after}" if before != after else f"2·{before}"
    uncovered = _extent(a) - 1 - _last_covered(a)
    tail = f"; {uncovered} position{'s' * (uncovered != 1)} never covered" if uncovered > 0 else ""
    rounding = (
        "ceil"
        if "pool" in kind and m > (n + before + after - d * (k - 1) - 1) // s + 1
        else "floor"
    )
    return (f"{rounding}((n + p_before + p_after - d(k-1) - 1)/s) + 1 = {rounding}(({n} + {pads} - "
            f"{d}·{k - 1} - 1)/{s}) + 1 = {m}{tail}")  # fmt: skip
