"""The effective receptive field (Luo et al. 2016): how a unit's input gradient spreads.

With every weight 1 and every bias 0, activations, normalisations and dropout as the
identity and max pooling as average pooling (verify's linearised model, check 8), the
gradient of a unit with respect to the input counts the paths from each input position to
the unit: an exact array of integers (of fractions, after average pooling). Its shape is
the effective receptive field: for n stride-1 convolutions of k taps it is the n-fold
convolution of a box of width k, a discrete bell whose variance per axis is n(k²-1)/12,
growing like √n while the field r = n(k-1)+1 grows like n.

This pass gives, for every node whose input gradient is linear in that model, per spatial
axis, the path distribution's *mass* (the array's sum, per output channel), *mean* and
*variance*, for a unit whose windows read no padding. Walking forward from the input (mass
1, mean 0, variance 0 on every channel), a window of k taps, dilation d, padding p, and
stride s over a tensor with jump S gives, per channel of the window::

    mass' = Σ_c mass_c · k          mean' = mean_c + S·(d(k-1)/2 - p)
    variance' = variance_c + (S·d)²·(k²-1)/12

mixed over the channels it reads (a mixture's variance adds the spread of the means);
average pooling divides the mass by its k taps; sums mix their inputs' distributions by
mass; concatenation keeps each channel's own. Unit u of the node then has its path
distribution's mean at ``u·S + mean``. Types outside this linear family (products, linear
layers, global pooling, upsampling, reshapes) have no entry.

>>> from archcalc import analyze
>>> conv = {"type": "conv2d", "out_channels": 2, "kernel_size": 3, "padding": 1}
>>> net = analyze({"name": "n", "input": [1, 32, 32], "layers": [conv, conv, conv]})
>>> erf = effective_fields(net.graph)
>>> [erf.of(row.node).variance for row in net.rows]     # n(k²-1)/12, per axis
[(Fraction(2, 3), Fraction(2, 3)), (Fraction(4, 3), Fraction(4, 3)), (2, 2)]
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from archcalc.graph.graph import Graph, Node
from archcalc.language.expr import simplify as _simplify
from archcalc.language.expr import to_text

#: Types that pass the gradient through unchanged in the linearised model.
_IDENTITY = {"relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "mish", "hardswish",
             "hardsigmoid", "hardtanh", "softplus", "tanh", "sigmoid", "prelu", "identity",
             "dropout", "dropout2d", "stochastic_depth", "local_response_norm", "group_norm",
             "instance_norm1d", "instance_norm2d", "instance_norm3d", "batchnorm1d",
             "batchnorm2d", "batchnorm3d"}  # fmt: skip
#: The same, for passes that ask which types the linearised model takes as the identity.
IDENTITY_TYPES = frozenset(_IDENTITY)


@dataclass(frozen=True)
class Moments:
    """One channel's path distribution, per spatial axis: mean and variance of the input
    position (for unit 0; unit u adds u·S), the jump S, and the mass (the paths' total)."""

    mass: Any
    jump: tuple
    mean: tuple
    variance: tuple


@dataclass
class EffectiveFields:
    """The result of :func:`effective_fields`: per node its channels' moments (runs of equal
    channels), or None where the gradient is not linear in the model."""

    graph: Graph
    channels: list[list[tuple[int, Moments]] | None]

    def of(self, node: Node | int) -> Moments | None:
        """The moments of the node's channels summed (what a unit summed over channels sees)."""
        i = node if isinstance(node, int) else node.id
        runs = self.channels[i]
        if runs is None:
            return None
        return _mixture(runs)


def effective_fields(graph: Graph) -> EffectiveFields:
    """The path-distribution moments of every node, in the network input's coordinates."""
    erf = EffectiveFields(graph, [])
    for node in graph.nodes:
        try:
            erf.channels.append(_node(node, graph, erf))
        except _NotLinear:
            erf.channels.append(None)
    return erf


class _NotLinear(Exception):
    pass


def _node(node: Node, graph: Graph, erf: EffectiveFields) -> list | None:
    kind, h = node.type, node.hyper
    if kind == "input":
        dims = len(node.shape) - 1
        return [(node.shape[0], Moments(1, (1,) * dims, (0,) * dims, (0,) * dims))]
    ins = [erf.channels[i] for i in node.inputs]
    if any(runs is None for runs in ins) or kind == "parameter":
        raise _NotLinear
    runs = ins[0] if ins else None
    if kind in _IDENTITY:
        return runs
    if kind.startswith("conv_transpose"):
        raise _NotLinear
    if kind.startswith(("conv", "maxpool", "avgpool")) or kind == "subsample":
        if h.get("table"):
            raise _NotLinear  # a connection table: channels differ by map (not modelled)
        return _window(node, graph, runs)
    if kind == "add":
        if any(graph.nodes[i].shape != node.shape for i in node.inputs):
            raise _NotLinear  # broadcasting
        return _add(ins)
    if kind == "concat":
        if h.get("dim", 0) != 0:
            raise _NotLinear
        return _merge_runs([run for runs_i in ins for run in runs_i])
    if kind == "zero_pad":
        return [(c, _shift(m, tuple(-b for b in h["padding"]))) for c, m in runs]
    if kind == "center_crop":
        if any(o is None for o in h["offsets"]):
            raise _NotLinear  # a symbolic crop: where it starts depends on parity
        return [(c, _shift(m, tuple(h["offsets"]))) for c, m in runs]
    if kind == "narrow" and h["dim"] == 0:
        return _slice(runs, h["start"], h["length"])
    if kind == "channel_shuffle":
        return _shuffle(runs, h["groups"])
    raise _NotLinear


def _window(node: Node, graph: Graph, runs: list) -> list:
    h = node.hyper
    k, s, p = h["kernel_size"], h["stride"], h["padding"]
    d = h.get("dilation", (1,) * len(k))
    taps = 1
    for size in k:
        taps *= size

    def after(m: Moments, mass: Any) -> Moments:
        mean = tuple(simplify(mu + S * (_half(di * (ki - 1)) - pi))
                     for mu, S, ki, pi, di in zip(m.mean, m.jump, k, p, d))  # fmt: skip
        var = tuple(simplify(v + (S * di) ** 2 * _twelfth(ki * ki - 1))
                    for v, S, ki, di in zip(m.variance, m.jump, k, d))  # fmt: skip
        return Moments(
            simplify(mass), tuple(simplify(S * si) for S, si in zip(m.jump, s)), mean, var
        )

    kind = node.type
    if kind.startswith(("maxpool", "avgpool")):  # each tap weighs 1/k: the mass stays
        return [(c, after(m, m.mass)) for c, m in runs]
    channels = graph.nodes[node.inputs[0]].shape[0]
    groups = 1 if kind == "subsample" else h["groups"]
    if kind == "subsample":  # one coefficient per map: a depthwise window
        return [(c, after(m, m.mass * taps)) for c, m in runs]
    out = node.shape[0]
    if groups == 1:  # every output channel reads every input channel
        mixed = _mixture(runs)
        return [(out, after(mixed, mixed.mass * taps))]
    if not all(isinstance(v, int) for v in (channels, out, groups)):
        raise _NotLinear
    per_in, per_out = channels // groups, out // groups
    result = []
    g = 0
    while g < groups:  # the groups that lie wholly in one run read alike: taken at once
        start = g * per_in
        mixed = _mixture(_slice(runs, start, per_in))
        alike = max(1, (_run_end(runs, start) - start) // per_in)
        result.append((per_out * alike, after(mixed, mixed.mass * taps)))
        g += alike
    return _merge_runs(result)


def _run_end(runs: list, channel: int) -> int:
    """Where the run that holds ``channel`` ends (a depthwise convolution over a run of 10^13
    channels is one step, not 10^13)."""
    position = 0
    for count, _ in runs:
        position += count
        if channel < position or len(runs) == 1:
            return position
    return position


def _add(ins: list[list]) -> list:
    """Element-wise sums: channel c's paths are the union of the inputs' channel-c paths."""
    bounds = sorted({b for runs in ins for b in _bounds(runs)})
    result = []
    start = 0
    for end in bounds:
        if end == start:
            continue
        parts = [(1, _at(runs, start)) for runs in ins]
        result.append((end - start, _mixture(parts)))
        start = end
    return _merge_runs(result)


def _bounds(runs: list) -> list:
    out, position = [], 0
    for count, _ in runs:
        if not isinstance(count, int):
            if len(runs) == 1:
                return [count]
            raise _NotLinear
        position += count
        out.append(position)
    return out


def _at(runs: list, channel: int) -> Moments:
    position = 0
    for count, m in runs:
        if len(runs) == 1 or channel < position + count:
            return m
        position += count
    raise _NotLinear


def _slice(runs: list, start: Any, length: Any) -> list:
    if len(runs) == 1:
        return [(length, runs[0][1])]
    if not isinstance(start, int) or not isinstance(length, int):
        raise _NotLinear
    result, position = [], 0
    for count, m in runs:
        lo, hi = max(position, start), min(position + count, start + length)
        if hi > lo:
            result.append((hi - lo, m))
        position += count
    return result


def _shuffle(runs: list, groups: Any) -> list:
    if len(runs) == 1:
        return runs
    if sum(count for count, _ in runs) > _MAX_SHUFFLED:
        raise _NotLinear  # shuffled channel by channel: not over millions of them
    channels = [m for count, m in runs for _ in range(count)]
    per = len(channels) // groups
    # torch.nn.ChannelShuffle: [g, per] -> [per, g]
    shuffled = [channels[g * per + i] for i in range(per) for g in range(groups)]
    return _merge_runs([(1, m) for m in shuffled])


#: Most channels a channel shuffle of several runs is followed through, one by one.
_MAX_SHUFFLED = 1 << 20


def _merge_runs(runs: list) -> list:
    merged: list = []
    for count, m in runs:
        if merged and merged[-1][1] == m:
            merged[-1] = (merged[-1][0] + count, m)
        else:
            merged.append((count, m))
    return merged


def _mixture(parts: list) -> Moments:
    """The distribution of paths through any of ``parts`` ((channel count, Moments) each):
    masses add; the mean is the mass-weighted mean; the variance adds the means' spread."""
    if len(parts) == 1 and parts[0][0] == 1:
        return parts[0][1]
    first = parts[0][1]
    if any(m.jump != first.jump for _, m in parts):
        raise _NotLinear  # paths at different jumps: no single distribution per unit
    weights = [count * m.mass for count, m in parts]
    total = simplify(sum(weights[1:], weights[0]))
    dims = len(first.mean)
    if len(parts) == 1:
        return Moments(total, first.jump, first.mean, first.variance)
    mean = tuple(_div(sum(w * m.mean[a] for w, (_, m) in zip(weights, parts)), total)
                 for a in range(dims))  # fmt: skip
    second = tuple(_div(sum(w * (m.variance[a] + m.mean[a] ** 2) for w, (_, m) in zip(weights, parts)), total)
                   for a in range(dims))  # fmt: skip
    variance = tuple(simplify(second[a] - mean[a] ** 2) for a in range(dims))
    return Moments(
        total, first.jump, tuple(_exact(v) for v in mean), tuple(_exact(v) for v in variance)
    )


def _shift(m: Moments, units: tuple) -> Moments:
    """The distribution of unit u + units."""
    return Moments(m.mass, m.jump, tuple(simplify(mu + S * n) for mu, S, n in zip(m.mean, m.jump, units)),
                   m.variance)  # fmt: skip


def _half(value: Any) -> Any:
    return Fraction(value, 2) if isinstance(value, int) else value / 2


def _twelfth(value: Any) -> Any:
    return Fraction(value, 12) if isinstance(value, int) else value / 12


def simplify(value: Any) -> Any:
    """Exact values in their simplest form: Fractions that are integers as ints."""
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else value
    return _simplify(value)


def _div(a: Any, b: Any) -> Any:
    if isinstance(a, (int, Fraction)) and isinstance(b, (int, Fraction)):
        return simplify(Fraction(a) / Fraction(b))
    return simplify(a / b)


def _exact(value: Any) -> Any:
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value)
    return value


def reads_padding(graph: Graph, node: Node | int, unit: tuple) -> bool:
    """Whether unit ``unit`` (per spatial axis) of ``node`` depends on any padding, anywhere
    below it: a backward pass of the interval of units each ancestor contributes."""
    start = node if isinstance(node, int) else node.id
    needed: dict[int, list[list[int]]] = {start: [[u, u] for u in unit]}
    for i in range(start, 0, -1):
        if i not in needed:
            continue
        n = graph.nodes[i]
        spans = needed.pop(i)
        h = n.hyper
        for j in n.inputs:
            size = graph.nodes[j].shape[1:]
            if n.type.startswith(("conv", "maxpool", "avgpool")) or n.type == "subsample":
                k, s, p = h["kernel_size"], h["stride"], h["padding"]
                d = h.get("dilation", (1,) * len(k))
                spans_j = [[lo * si - pi, hi * si - pi + di * (ki - 1)]
                           for (lo, hi), ki, si, pi, di in zip(spans, k, s, p, d)]  # fmt: skip
            elif n.type == "zero_pad":
                spans_j = [[lo - b, hi - b] for (lo, hi), b in zip(spans, h["padding"])]
            elif n.type == "center_crop":
                spans_j = [[lo + o, hi + o] for (lo, hi), o in zip(spans, h["offsets"])]
            else:
                spans_j = spans
            if any(lo < 0 or hi > m - 1 for (lo, hi), m in zip(spans_j, size)):
                return True
            if j in needed:
                needed[j] = [[min(a[0], b[0]), max(a[1], b[1])] for a, b in zip(needed[j], spans_j)]
            else:
                needed[j] = spans_j
    return False


def std_text(variance: Any) -> str:
    """σ = √variance, two decimals where it is a number."""
    if isinstance(variance, (int, Fraction)):
        return f"{float(variance) ** 0.5:.2f}"
    return f"sqrt({to_text(variance)})"


def to_json(moments: Moments | None) -> dict[str, Any] | None:
    """``{"mass", "offset", "variance", "std"}`` per spatial axis: unit u's path distribution
    has its mean at u·S + offset."""
    if moments is None:
        return None

    def exact(v: Any) -> Any:
        return v if isinstance(v, int) else str(v) if isinstance(v, Fraction) else to_text(v)

    return {
        "mass": exact(moments.mass),
        "offset": [exact(v) for v in moments.mean],
        "variance": [exact(v) for v in moments.variance],
        "std": [
            float(v) ** 0.5 if isinstance(v, (int, Fraction)) else None for v in moments.variance
        ],
    }
