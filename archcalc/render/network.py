"""`archcalc draw SPEC -o net.svg`: the network as lectures draw LeNet and AlexNet.

Each unit's output is a block: a feature map [C, H, W] a stack whose face is H×W (height and
width on one linear scale, so blocks compare to scale) and whose depth grows with log2 C; a
vector [N] a bar whose height grows with log2 N; other ranks a plain box. The shape is written
above each block, the unit's name and what it does below. Units follow execution order left to
right; an arrow joins consecutive units, and every other data path (a skip, a merge's second
input, an auxiliary head) is an arc above the blocks.

Composites (residual, concat of branches, repeat, block calls) are folded into one unit by
default, so ResNet-152 is a dozen blocks; ``--expand PATH`` opens one (``--expand all``: every
one), showing its items and the merges they imply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from archcalc.errors import ArchcalcError
from archcalc.graph.graph import Group
from archcalc.quantities.analysis import Analysis
from archcalc.render.canvas import Canvas

FACE = 150.0  # pixels for the largest spatial size
DEPTH = 36.0  # pixels of depth for the most channels
BAR = 120.0  # pixels for the longest vector
GAP = 34.0  # between columns
ARC_STEP = 5.0  # between arcs that leave or reach one unit
FONT = 11.0
BRACKET = 28.0  # between the levels of the brackets under opened composites
ARCS = ("#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e")
_SYMBOLS = {"add": "+", "mul": "×", "concat": "concat", "matmul": "matmul"}


@dataclass
class Unit:
    """A block of the picture: a group (folded or a leaf), a bare node, or the input."""

    first: int  # nodes [first, end)
    end: int
    output: int  # the node whose tensor is drawn
    lines: list[str]  # what it is, under the block
    merge: bool = False  # a merge a composite implies: drawn as a small circle
    sources: list[int] = field(default_factory=list)  # unit indices it reads


@dataclass
class Span:
    """An opened composite: the units [first, end) it holds, bracketed under their labels (its
    items are named within it, so without the bracket ResNet's many body[0] are ambiguous)."""

    first: int
    end: int
    level: int  # 0: a top-level item; its opened items 1, and so on
    label: str  # as a folded unit's lines: name or path, what it is, its parameters


def network_picture(analysis: Analysis, expand: list[str] | tuple = ()) -> Canvas:
    """The whole network, composites folded except those named in ``expand`` (or ``all``)."""
    graph = analysis.graph
    if any(not isinstance(v, int) for node in graph.nodes for v in node.shape):
        raise analysis.needs_numbers("draw")
    wanted = set(expand)
    known = {g.path for g in graph.groups()} | {g.name for g in graph.groups() if g.name}
    unknown = sorted(wanted - known - {"all"})
    if unknown:
        raise ArchcalcError(f"--expand: no item {unknown[0]!r} in {graph.spec.name}; give a path "
                            f"or a name as `archcalc analyze` shows them. Received: --expand {unknown[0]}")  # fmt: skip
    params = {row.node: row.params for row in analysis.rows}
    units = [Unit(0, 1, 0, ["input"])]
    spans: list[Span] = []
    _walk(graph, graph.tree, 1, len(graph.nodes), units, wanted, params, spans)
    _connect(graph, units)
    return _draw(analysis, units, spans)


def _open(group: Group, wanted: set) -> bool:
    return bool(group.children) and (
        "all" in wanted or group.path in wanted or group.name in wanted
    )


def _walk(graph, groups, first: int, end: int, units: list[Unit], wanted: set, params,
          spans: list[Span], prefix: str = "", level: int = 0) -> None:  # fmt: skip
    """Units for the nodes [first, end): each group folded or opened, nodes no group holds (the
    merges a residual or a concat implies) as units of their own; each opened group a span."""
    starts: dict[int, Group] = {}
    for group in groups:
        if group.end > group.first:
            starts.setdefault(group.first, group)
    i = first
    while i < end:
        group = starts.get(i)
        if group is None:
            node = graph.nodes[i]
            merge = node.type in _SYMBOLS
            units.append(Unit(i, i + 1, i, [_SYMBOLS.get(node.type, node.type)], merge=merge))
            i += 1
            continue
        if _open(group, wanted):
            inner = group
            children = [g for items in inner.children for g in items]
            # a block call whose body is one composite (Inception's Mixed_5b: one concat) opens
            # that too: otherwise the picture shows the same single unit, renamed layers[0]
            while len(children) == 1 and children[0].children:
                inner = children[0]
                children = [g for items in inner.children for g in items]
            start = len(units)
            _walk(graph, children, group.first, group.end, units, wanted, params, spans,
                  inner.path, level + 1)  # fmt: skip
            title, *what = _describe(graph, group, params, prefix)
            spans.append(Span(start, len(units), level, f"{title}: {', '.join(what)}"))
        else:
            lines = _describe(graph, group, params, prefix)
            units.append(Unit(group.first, group.end, group.output, lines))
        i = group.end


def _describe(graph, group: Group, params, prefix: str) -> list[str]:
    """Two or three short lines: name (or its path within the opened composite), what it
    does, its parameters."""
    title = group.name or (group.path[len(prefix) :].lstrip(".") if prefix else group.path)
    node = graph.nodes[group.first]
    if group.type == "repeat":
        inner = group.children[0] if group.children else ()
        what = f"{len(group.children)} × {inner[0].type if len(inner) == 1 else 'items'}"
    elif group.children:
        what = group.type
    else:
        what = _operation(node)
        activation = graph.nodes[group.output].type if group.output != group.first else None
        if activation:
            what += f" + {activation}"
    count = sum(int(params.get(n, 0)) for n in range(group.first, group.end))
    lines = [title, what]
    if count:
        lines.append(f"{count:,} params")
    return lines


def _operation(node) -> str:
    """conv 5×5 /2, maxpool 2×2, linear 120 ..."""
    h = node.hyper
    kind = node.type
    if "kernel_size" in h:
        k = "×".join(str(v) for v in h["kernel_size"])
        s = h.get("stride") or ()
        stride = f" /{s[0]}" if s and len(set(s)) == 1 and s[0] != 1 else (
            f" /{'×'.join(map(str, s))}" if s and len(set(s)) > 1 else "")  # fmt: skip
        return f"{kind} {k}{stride}"
    if kind == "linear":
        return f"linear {h.get('out_features')}"
    return kind


def _connect(graph, units: list[Unit]) -> None:
    owner = [0] * len(graph.nodes)
    for index, unit in enumerate(units):
        for n in range(unit.first, unit.end):
            owner[n] = index
    for index, unit in enumerate(units):
        found: list[int] = []
        for n in range(unit.first, unit.end):
            for i in graph.nodes[n].inputs:
                source = owner[i]
                if source != index and source not in found:
                    found.append(source)
        unit.sources = found


def _shape_text(shape: tuple) -> str:
    if len(shape) == 3:
        return f"{shape[0]}@{shape[1]}×{shape[2]}"
    return "×".join(str(v) for v in shape)


def _block(
    shape: tuple, scale: float, channels: float, longest: float
) -> tuple[float, float, float]:
    """(face width, face height, depth) in pixels."""
    if len(shape) == 1:
        return 10.0, 14 + BAR * math.log2(max(shape[0], 1) + 1) / longest, 0.0
    depth = 4 + DEPTH * math.log2(max(shape[0], 1) + 1) / channels
    if len(shape) == 2:  # a sequence [L, E] or a map without channels: a flat rectangle
        return 14.0, max(6.0, FACE * 0.5), depth
    height = max(3.0, shape[-2] * scale) if len(shape) >= 3 else 14.0
    width = max(3.0, shape[-1] * scale)
    return width, height, depth


def _draw(analysis: Analysis, units: list[Unit], spans: list[Span]) -> Canvas:
    graph = analysis.graph
    shapes = [tuple(graph.nodes[u.output].shape) for u in units]
    spatial = [v for s in shapes if len(s) >= 3 for v in s[-2:]]
    scale = FACE / max(spatial, default=1)
    channels = max((math.log2(s[0] + 1) for s in shapes if len(s) >= 2), default=1.0)
    longest = max((math.log2(s[0] + 1) for s in shapes if len(s) == 1), default=1.0)
    blocks = [(12.0, 12.0, 0.0) if u.merge else _block(s, scale, channels, longest)
              for u, s in zip(units, shapes)]  # fmt: skip
    skips = [(s, i) for i, u in enumerate(units) for s in u.sources if s != i - 1]
    lanes = _lanes(skips)
    lane_top = 40.0
    tallest = max(h + d * 0.7 for _, h, d in blocks)
    depth = max(lanes, default=-1) + 1
    middle = lane_top + 14.0 * depth + 36 + tallest / 2
    outputs = set(graph.outputs)
    label_top = middle + tallest / 2 + 16  # the first line under a block; then 13 px a line
    brackets = label_top + 13 * max(len(u.lines) + (u.output in outputs) for u in units)
    levels = max((span.level for span in spans), default=-1) + 1
    canvas = Canvas(200, brackets + BRACKET * levels + 40 if levels else middle + tallest / 2 + 90)
    canvas.text(12, 20, f"{graph.spec.name}: {len(units) - 1} units, "
                f"{int(analysis.totals['params']):,} params", size=13, anchor="start", bold=True)  # fmt: skip
    x = 20.0
    lefts, rights, tops, columns = [], [], [], []
    for unit, shape, (w, h, d) in zip(units, shapes, blocks):
        label_width = max(len(t) for t in [*unit.lines, _shape_text(shape)]) * FONT * 0.6
        column = max(w + d * 0.7, label_width)
        left = x + (column - w - d * 0.7) / 2
        top = middle - h / 2
        if unit.merge:
            canvas.rect(left, top, w, h, fill="#fff", stroke="#555")
            if len(unit.lines[0]) == 1:  # + or ×, in the box
                canvas.text(left + w / 2, top + h - 2, unit.lines[0], size=10)
            else:  # concat, matmul: under it
                canvas.text(left + w / 2, top + h + 14, unit.lines[0], size=FONT - 1, colour="#555")
        else:
            _cuboid(canvas, left, top, w, h, d, "#dbe9f6" if len(shape) >= 2 else "#f6e3c8")
            canvas.text(left + w / 2 + d * 0.35, top - d * 0.7 - 6, _shape_text(shape), size=FONT,
                        bold=True)  # fmt: skip
            for k, line in enumerate(unit.lines):
                canvas.text(left + w / 2, label_top + 13 * k, line, size=FONT,
                            colour="#222" if k == 0 else "#555")  # fmt: skip
            if unit.output in outputs:
                canvas.text(left + w / 2, label_top + 13 * len(unit.lines), "output",
                            size=FONT, colour="#d62728", bold=True)  # fmt: skip
        lefts.append(left)
        rights.append(left + w)
        tops.append(top - d * 0.7)
        columns.append((x, x + column))
        x += column + GAP
    for i, unit in enumerate(units):
        if i - 1 in unit.sources:
            canvas.line(rights[i - 1] + 2, middle, lefts[i] - 2, middle, arrow=True)
    leaving, arriving = _ends(skips, lanes)
    for k, ((source, target), level) in enumerate(zip(skips, lanes)):
        lane = lane_top + 14.0 * (depth - 1 - level)  # level 0 nearest the blocks
        colour = ARCS[k % len(ARCS)]
        # several arcs at one unit (a concat's branches) drop and rise side by side, not on one
        # line: arcs in from the left of the centre, out from its right, the lower lanes outside
        sx = (lefts[source] + rights[source]) / 2 + ARC_STEP * leaving[k]
        tx = (lefts[target] + rights[target]) / 2 - 3 - ARC_STEP * arriving[k]
        # from above the source's shape label to above the target's: labels stay readable
        canvas.line(sx, tops[source] - 20, sx, lane, stroke=colour)
        canvas.line(sx, lane, tx, lane, stroke=colour)
        canvas.line(tx, lane, tx, tops[target] - 20, stroke=colour, arrow=True)
    for span in spans:  # the deepest nearest the labels, an outer one below its inner ones
        y = brackets + BRACKET * (levels - 1 - span.level)
        a, b = columns[span.first][0], columns[span.end - 1][1]
        canvas.line(a, y - 4, a, y, stroke="#999")
        canvas.line(a, y, b, y, stroke="#999")
        canvas.line(b, y - 4, b, y, stroke="#999")
        canvas.text((a + b) / 2, y + 13, span.label, size=FONT - 1, colour="#555")
    canvas.text(12, canvas.height - 14, "face: height H × width W on one linear scale; depth grows "
                "with log2 C; bars: log2 N; arcs: data paths that skip ahead. Folded composites "
                "open with --expand PATH (or all).", size=FONT - 1, anchor="start", colour="#555")  # fmt: skip
    canvas.width = max(canvas.width, x)
    return canvas


def _ends(skips: list[tuple[int, int]], lanes: list[int]) -> tuple[list[int], list[int]]:
    """For each arc, its rank among the arcs leaving its source and among those arriving at its
    target: 0 for the highest lane, so lines at one unit never cross each other's lanes."""
    leaving, arriving = [0] * len(skips), [0] * len(skips)
    for ranks, end in ((leaving, 0), (arriving, 1)):
        at: dict[int, list[int]] = {}
        for k, skip in enumerate(skips):
            at.setdefault(skip[end], []).append(k)
        for arcs in at.values():
            for rank, k in enumerate(sorted(arcs, key=lambda k: -lanes[k])):
                ranks[k] = rank
    return leaving, arriving


def _lanes(skips: list[tuple[int, int]]) -> list[int]:
    """A level per arc: short arcs nearest the blocks, longer ones above them, a level shared
    by arcs whose spans do not overlap (U-Net's skips nest as in its paper's figure)."""
    levels = [0] * len(skips)
    taken: list[list[tuple[int, int]]] = []
    for k in sorted(range(len(skips)), key=lambda k: (skips[k][1] - skips[k][0], skips[k])):
        a, b = skips[k]
        level = 0
        while level < len(taken) and any(a <= y and x <= b for x, y in taken[level]):
            level += 1
        if level == len(taken):
            taken.append([])
        taken[level].append((a, b))
        levels[k] = level
    return levels


def _cuboid(canvas: Canvas, x: float, y: float, w: float, h: float, d: float, fill: str) -> None:
    """A face w×h at (x, y) with depth d drawn up and to the right at 45°."""
    dx = dy = d * 0.7
    if d:
        canvas.rect(x + dx, y - dy, w, h, fill=fill, stroke="#777", width=0.8, opacity=0.6)
        for cx, cy in ((x, y), (x + w, y), (x + w, y + h)):
            canvas.line(cx, cy, cx + dx, cy - dy, stroke="#777", width=0.8)
    canvas.rect(x, y, w, h, fill=fill, stroke="#333")
