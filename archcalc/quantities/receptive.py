"""The receptive field pass: for every node, which input positions one of its units sees.

Per spatial dimension a unit u of a node's output sees the network input positions
``-P + u·S ... -P + u·S + r - 1``: field size r, effective stride (jump) S and
effective padding P (Araujo, Norris & Sim, "Computing Receptive Fields of
Convolutional Neural Networks", Distill 2019). Walking forward from the input
(r = 1, S = 1, P = 0), a window of k taps with stride s, dilation d and padding p
before gives::

    r' = r + d(k-1)·S      S' = S·s      P' = P + p·S

the paper's backward recurrence r_{l-1} = s_l·r_l + (k_l - s_l) read the other way.
Several paths (a residual, a concatenation, any merge) take the largest field and
must be aligned: the same S and the same centre offset (r-1)/2 - P on every path,
else the spec gets a warning. Adaptive and global pooling, and anything that mixes
every position (a mean over positions, attention, a linear layer or a layer norm
over positions, flattened positions read by a linear layer), see the whole input.
SAME padding only shifts P; symbolic sizes give symbolic fields. Upsampling
(transposed convolutions, upsample) makes the field depend on the position: the
largest is given, with a note.

>>> from archcalc import analyze
>>> net = analyze({"name": "n", "input": [3, 64, 64], "layers": [
...     {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
...     {"type": "maxpool2d", "kernel_size": 2}]})
>>> rf = receptive_fields(net.graph)
>>> [rf.spatial(row.node) for row in net.rows]
[[(3, 1, 1), (3, 1, 1)], [(4, 2, 1), (4, 2, 1)]]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from archcalc.errors import SpecWarning
from archcalc.graph.graph import Graph, Node
from archcalc.language.expr import ceil_div, equal, is_symbolic, to_text
from archcalc.language.expr import simplify as _simplify

#: A dimension's field: (r, S, P) for one spatial dimension of the input; None where the
#: dimension is not positional (channels, features); GLOBAL where every unit sees all of
#: the input; MIXED where the dimension runs over several input positions at once
#: (flattened or reshaped positions, tokens).
GLOBAL, MIXED = "global", "mixed"
Field = Any


@dataclass
class ReceptiveFields:
    """The result of :func:`receptive_fields`."""

    graph: Graph
    fields: list[tuple[Field, ...]]  # per node, one per dimension of its shape
    whole: list[bool]  # per node: do its units see the whole input?
    #: per node: after upsampling, where the field depends on the unit's position
    upsampled: list[bool] = field(default_factory=list)
    warnings: list[SpecWarning] = field(default_factory=list)
    notes: dict[int, str] = field(default_factory=dict)  # node -> why its field is special

    def spatial(self, node: Node | int) -> list[Field]:
        """The (r, S, P) of the node's spatial dimensions (empty where it sees everything)."""
        i = node if isinstance(node, int) else node.id
        if self.whole[i]:
            return []
        return [f for f in self.fields[i] if isinstance(f, tuple)]

    def to_dict(self, rows) -> dict[str, Any]:
        layers = []
        for row in rows:
            fields = self.spatial(row.node)
            layers.append({
                "path": row.path, "name": row.name, "type": row.type,
                "size": [_json(f[0]) for f in fields], "stride": [_json(f[1]) for f in fields],
                "padding": [_json(f[2]) for f in fields], "whole_input": self.whole[row.node],
                "position_dependent": self.upsampled[row.node], "note": self.notes.get(row.node),
            })  # fmt: skip
        return {"layers": layers,
                "warnings": [{"path": w.path, "message": w.message} for w in self.warnings]}  # fmt: skip


def simplify(value: Any) -> Any:
    """An exact value in its simplest form: Fractions stay Fractions (upsampled strides)."""
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else value
    return _simplify(value)


def _json(value: Any) -> Any:
    if isinstance(value, int):
        return value
    if isinstance(value, Fraction):
        return str(value)
    return to_text(value)


def receptive_fields(graph: Graph) -> ReceptiveFields:
    """The field of every node of the graph, in the network input's coordinates."""
    rf = ReceptiveFields(graph, [], [])
    for node in graph.nodes:
        fields, whole = _node(node, graph, rf)
        rf.fields.append(tuple(fields))
        rf.whole.append(whole or any(f == GLOBAL for f in fields))
        rf.upsampled.append(node.type.startswith("conv_transpose") or node.type == "upsample"
                            or any(rf.upsampled[i] for i in node.inputs))  # fmt: skip
    return rf


def _positional(f: Field) -> bool:
    return f is not None and f != GLOBAL


def _node(node: Node, graph: Graph, rf: ReceptiveFields) -> tuple[list[Field], bool]:
    kind, h = node.type, node.hyper
    if kind == "input":
        return [None, *((1, 1, 0) for _ in node.shape[1:])], False
    if kind == "parameter":
        return [None for _ in node.shape], False
    ins = [rf.fields[i] for i in node.inputs]
    whole = any(rf.whole[i] for i in node.inputs)
    inp = list(ins[0]) if ins else []
    if kind in ("add", "mul", "concat", "matmul"):
        return _merge(node, graph, rf, ins), whole
    if kind.startswith("conv_transpose") or kind == "upsample":
        if any(isinstance(f, tuple) for f in inp[1:]):
            rf.notes[node.id] = (
                "upsampling: the field depends on the position; the largest is given"
            )
        return [None, *(_upsample(f, node, i) for i, f in enumerate(inp[1:]))], whole
    if kind.startswith(("conv", "maxpool", "avgpool")) or kind == "subsample":
        k, s, p = h["kernel_size"], h["stride"], h["padding"]
        d = h.get("dilation", (1,) * len(k))
        return [None, *(_window(f, *args) for f, args in zip(inp[1:], zip(k, s, p, d)))], whole
    if kind.startswith("adaptive_"):
        return [None, *(GLOBAL if f is not None else None for f in inp[1:])], whole
    if kind == "zero_pad":
        return [None, *(_shift(f, -b) for f, b in zip(inp[1:], h["padding"]))], whole
    if kind == "center_crop":
        sizes = graph.nodes[node.inputs[0]].shape[1:]
        # symbolic sizes: (n - size)/2, exact where n - size is even (torchvision rounds an
        # odd difference's half to even); the note says so rather than guessing the parity
        offsets = [
            o if o is not None else (n - c) / 2 for o, n, c in zip(h["offsets"], sizes, h["size"])
        ]
        if None in h["offsets"]:
            rf.notes[node.id] = "centre crop offset (n - size)/2: exact where n - size is even"
        return [None, *(_shift(f, o) for f, o in zip(inp[1:], offsets))], whole
    if kind == "narrow":
        inp[h["dim"]] = _shift(inp[h["dim"]], h["start"])  # its first unit is the start'th
        return inp, whole
    if kind == "mean":
        reduced = [inp[d] for d in h["dims"]]
        if any(f is not None for f in reduced):
            rf.notes[node.id] = "a mean over positions sees all of them"
            whole = True
        kept = [(GLOBAL if inp[d] is not None else None) if d in h["dims"] else inp[d]
                for d in range(len(inp)) if d not in h["dims"] or h["keepdim"]]  # fmt: skip
        return kept, whole
    if kind == "permute":
        return [inp[d] for d in h["dims"]], whole
    if kind == "transpose":
        inp[h["dim0"]], inp[h["dim1"]] = inp[h["dim1"]], inp[h["dim0"]]
        return inp, whole
    if kind == "unsqueeze":
        return [*inp[: h["dim"]], None, *inp[h["dim"] :]], whole
    if kind in ("flatten", "reshape", "pixel_shuffle"):
        return _rearranged(node, graph, inp), whole
    mixing = {"linear": 1, "rbf": 1, "multihead_attention": 2,
              "layernorm": len(h.get("normalized_shape") or ())}.get(kind)  # fmt: skip
    if kind in ("softmax", "log_softmax") and inp:
        if inp[(h.get("dim") or 0) % len(inp)] is not None:
            rf.notes[node.id] = f"{kind} over a positional dimension mixes its positions"
            whole = True
        return inp, whole
    if mixing:
        mixed = inp[-mixing:] if kind != "multihead_attention" else inp
        if any(f is not None for f in mixed):
            rf.notes[node.id] = f"{kind} mixes every position of a spatial dimension"
            whole = True
        if kind in ("linear", "rbf"):
            return [*inp[:-1], None], whole
        return inp, whole
    return inp, whole  # element-wise and channel operations, norms: the same field


def _window(f: Field, k: Any, s: Any, p: Any, d: Any) -> Field:
    if not isinstance(f, tuple):
        return f
    r, S, P = f
    return (simplify(r + d * (k - 1) * S), simplify(S * s), simplify(P + p * S))


def _shift(f: Field, units: Any) -> Field:
    """The field of unit u + units: the origin moves by units·S."""
    if not isinstance(f, tuple):
        return f
    r, S, P = f
    return (r, S, simplify(P - units * S))


def _upsample(f: Field, node: Node, axis: int) -> Field:
    if not isinstance(f, tuple):
        return f
    r, S, P = f
    h = node.hyper
    if node.type == "upsample":
        if h.get("scale_factor") is None:
            return f  # to a size, not by a factor: the nearest source unit's field
        return (r, _divide(S, h["scale_factor"][axis]), P)
    k, s, p, d = h["kernel_size"][axis], h["stride"][axis], h["padding"][axis], h["dilation"][axis]
    # output o reads input units i with o = i·s - p + t·d: on average the field starts at
    # -P + S·(o + p)/s - S·(s-1)/(2s); at most ceil((d(k-1)+1)/s) units are read
    taps = ceil_div(d * (k - 1) + 1, s)
    offset = _divide(S * (s - 1), 2 * s) if isinstance(s, int) else S * (s - 1) / (2 * s)
    return (simplify(r + (taps - 1) * S), _divide(S, s), simplify(P - _divide(p * S, s) + offset))


def _divide(a: Any, b: Any) -> Any:
    if isinstance(a, (int, Fraction)) and isinstance(b, int):
        q = Fraction(a) / b
        return int(q) if q.denominator == 1 else q
    return a / b


def _rearranged(node: Node, graph: Graph, inp: list) -> list[Field]:
    """Flatten, reshape, pixel shuffle: dimensions kept as they are keep their fields;
    dimensions into which positions were merged run over several positions (MIXED)."""
    h = node.hyper
    if node.type == "flatten":
        a, b = h["start_dim"], h["end_dim"]
        merged = [f for f in inp[a : b + 1] if f is not None]
        if len(merged) == 1 and all(g is None for g in inp[a : b + 1] if g is not merged[0]):
            inner = merged[0]  # one positional dimension and size-1 or channel ones
            sizes = [graph.nodes[node.inputs[0]].shape[i] for i in range(a, b + 1)]
            if sum(1 for size in sizes if size != 1) <= 1:
                return [*inp[:a], inner, *inp[b + 1 :]]
        out = GLOBAL if merged and all(f == GLOBAL for f in merged) else (MIXED if merged else None)
        return [*inp[:a], out, *inp[b + 1 :]]
    if tuple(node.shape) == tuple(graph.nodes[node.inputs[0]].shape):
        return inp
    positional = any(f is not None for f in inp)
    return [MIXED if positional else None for _ in node.shape]


def _centre(f: tuple) -> Any:
    r, _, P = f
    if isinstance(r, int) and isinstance(P, (int, Fraction)):
        return Fraction(r - 1, 2) - P
    return (r - 1) / 2 - P


def _merge(node: Node, graph: Graph, rf: ReceptiveFields, ins: list) -> list[Field]:
    out: list[Field] = []
    for d in range(len(node.shape)):
        if node.type == "concat" and d == node.hyper.get("dim", 0):
            out.append(next((fields[d] for fields in ins if d < len(fields) and fields[d]), None))
            continue
        options = []
        for fields, i in zip(ins, node.inputs):
            if d >= len(fields):
                continue
            f = fields[d]
            if isinstance(f, tuple) and graph.nodes[i].shape[d] == 1 and node.shape[d] != 1:
                f = GLOBAL  # broadcast: one value for every position (an SE gate)
            options.append(f)
        out.append(_combine(node, options, rf, d))
    return out


def _combine(node: Node, options: list, rf: ReceptiveFields, dim: int) -> Field:
    fields = [f for f in options if f is not None]
    if not fields:
        return None
    for marker in (GLOBAL, MIXED):
        if any(f == marker for f in fields):
            return marker
    first = fields[0]
    for other in fields[1:]:
        if equal(other[1], first[1]) is False or equal(_centre(other), _centre(first)) is False:
            rf.warnings.append(SpecWarning(
                node.path, f"the paths into this {node.type} are not aligned in dimension {dim}: "
                f"fields {_text(first)} and {_text(other)} (size/stride/padding) differ in "
                "stride or centre",
            ))  # fmt: skip
            break
    return max(fields, key=lambda f: f[0] if not is_symbolic(f[0]) else 0)


def _text(f: tuple) -> str:
    return "/".join(str(_json(v)) for v in f)
