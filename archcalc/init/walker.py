"""One forward and one backward mean-field pass over the graph (see :mod:`.propagation`).

Forward, node by node in topological order, each node's output :class:`Moments`
from its inputs'. Backward, in reverse order, each node's gradient variance
(summed over the nodes that read it) is passed to its inputs. A residual
stream (an ``add`` of a non-Gaussian stream and a Gaussian branch, read only by
an activation) is taken jointly, keeping ``E[G² | stream value]`` as a
:class:`Profiled` gradient from block to block.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from archcalc.graph.graph import Node
from archcalc.init import activations, meanfield
from archcalc.init.meanfield import Grad, Law, Moments, grad_add, grad_mean
from archcalc.init.recommend import ACTIVATIONS, fans, is_weighted
from archcalc.language.expr import product
from archcalc.layers.formulas import adaptive_window_counts
from archcalc.quantities.analysis import Analysis, Row

#: Nodes that only move elements around: moments and gradients pass unchanged.
MOVES = frozenset({"flatten", "reshape", "permute", "transpose", "unsqueeze", "channel_shuffle",
                   "pixel_shuffle", "identity"})  # fmt: skip


class Profiled:
    """A gradient variance that depends on the value of a residual stream: ``values[j]`` is
    ``E[G² | x = atom j]`` over the atoms of ``law``."""

    __slots__ = ("law", "values")

    def __init__(self, law: Law, values: list[float]):
        self.law, self.values = law, values

    def mean(self) -> float:
        return sum(w * v for (w, _, _), v in zip(self.law, self.values))

    def plus(self, flat: float) -> Profiled:
        return Profiled(self.law, [v + flat for v in self.values])


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, Profiled) and isinstance(b, Profiled):
        return a.mean() + b.mean()
    if isinstance(a, Profiled):
        return a.plus(grad_mean(b, None))
    if isinstance(b, Profiled):
        return b.plus(grad_mean(a, None))
    return grad_add(a, b)


def _flat(g: Any, state: Moments | None) -> Grad:
    return g.mean() if isinstance(g, Profiled) else g


class Walker:
    """Forward and backward passes of one propagation (exact, or the course's product rule)."""

    def __init__(self, analysis: Analysis, variances: dict[int, float], linear: bool):
        self.graph = analysis.graph
        self.nodes = self.graph.nodes
        self.rows: dict[int, Row] = {row.node: row for row in analysis.rows}
        self.variances, self.linear = variances, linear
        self.pre: dict[int, float] = {}  # weighted node -> pre-activation variance
        self.grad: dict[int, float] = {}  # weighted node -> gradient variance at its input
        self.states: dict[int, Moments] = {}
        self.slopes: dict[int, float] = {}
        self.routing: dict[int, float] = {}  # max pool node -> its backward factor
        self.border_backward: dict[int, float] = {}  # padded conv node -> backward correction
        self.assumed: dict[str, list[str]] = {}  # assumption -> paths it was used at
        live = self.graph.live()  # readers no output depends on do not count
        self.readers = [sum(live[j] for j in r) for r in self.graph.consumers()]

    def assume(self, what: str, node: Node) -> None:
        paths = self.assumed.setdefault(what, [])
        if node.path not in paths:
            paths.append(node.path)

    @property
    def notes(self) -> list[str]:
        lines = []
        for what, paths in self.assumed.items():
            where = ", ".join(paths[:2]) + (f" and {len(paths) - 2} more" if len(paths) > 2 else "")
            lines.append(f"{where}: {what}")
        return lines

    def state_in(self, node: Node, k: int = 0) -> Moments:
        return self.states[node.inputs[k]]

    # -- forward

    def forward(self) -> list[Moments]:
        """Moments of every output, for a unit-variance, zero-mean input."""
        self.states[0] = Moments.iid(0.0, 1.0)
        live = self.graph.live()
        for node in self.nodes[1:]:
            if not live[node.id]:  # no output depends on it: it is no row, and not walked
                continue
            out = meanfield.saturate(self.forward_node(node))
            self.states[node.id] = out
            if node.id in self.pre:
                self.pre[node.id] = min(self.pre[node.id], out.m2) if out.m2 else 0.0
        return [self.states[i] for i in self.graph.outputs]

    def forward_node(self, node: Node) -> Moments:
        kind = node.type
        if kind == "add":
            return self._add(node)
        if kind == "concat":
            return self._concat(node)
        if kind == "mul":
            self.assume("a product of independent tensors: second moments multiply", node)
            a, b = (self.states[i] for i in node.inputs[:2])
            out = Moments(a.mean * b.mean, a.m2 * b.m2, a.common * b.common)
            for i in node.inputs[2:]:
                c = self.states[i]
                out = Moments(out.mean * c.mean, out.m2 * c.m2, out.common * c.common)
            return out
        if kind == "matmul":
            self.assume("a matrix product of independent factors: E[z²] = k·E[x²]·E[y²]", node)
            a, b = (self.states[i] for i in node.inputs)
            k = float(self.nodes[node.inputs[0]].shape[-1])
            return Moments.iid(0.0, k * a.m2 * b.m2)
        if kind == "parameter":  # every element init + N(0, std²); the constant is common
            h = node.hyper
            return Moments(h["init"], h["init"] ** 2 + h["std"] ** 2, h["init"] ** 2)
        return self._forward_row(node, self.state_in(node))

    def _add(self, node: Node) -> Moments:
        parts = [self.states[i] for i in node.inputs]
        if len(parts) == 2:
            a, b = parts
            # independent branches add; their channel constants share only the means
            mean = a.mean + b.mean
            common = a.common + b.common + 2 * a.mean * b.mean
            law = None  # a non-Gaussian stream plus a Gaussian branch stays known exactly
            if (a.law_source is None) != (b.law_source is None):
                known, other = (a, b) if a.law_source is not None else (b, a)
                law = meanfield.add_gaussian(known.law, other.mean, other.var)
            return Moments(mean, a.var + b.var + mean * mean, common, law_source=law)
        mean = sum(p.mean for p in parts)
        return Moments(mean, sum(p.var for p in parts) + mean * mean,
                       sum(p.common for p in parts) + mean * mean - sum(p.mean**2 for p in parts))  # fmt: skip

    def _concat(self, node: Node) -> Moments:
        dim = node.hyper.get("dim", 0)
        sizes = [self.nodes[i].shape[dim] for i in node.inputs]
        outs = [self.states[i] for i in node.inputs]
        total = sum(sizes)
        mean = sum(c * o.mean for c, o in zip(sizes, outs)) / total
        m2 = sum(c * o.m2 for c, o in zip(sizes, outs)) / total
        common = sum(c * o.common for c, o in zip(sizes, outs)) / total
        if dim != 0:
            return Moments(mean, m2, common)
        sources = {o.source for o in outs}
        groups = tuple(
            group
            for c, o in zip(sizes, outs)
            for group in (o.groups or ((float(c), replace(o, groups=None)),))
        )
        return Moments(
            mean,
            m2,
            common,
            sources.pop() if len(sources) == 1 else None,  # φ(z) if
            groups=groups,
        )  # every branch is; fmt: skip

    def _forward_row(self, node: Node, state: Moments) -> Moments:
        i, row, kind, h = node.id, self.rows.get(node.id), node.type, node.hyper
        if kind == "rbf":
            # y_i = Σ_j (x_j − w_ij)² with centres ±1 (LeNet-5's bitmaps) and Gaussian inputs:
            # E[(x−w)²] = m2 + 1, E[(x−w)⁴] = 3var² + 6var + 1 (+ mean terms, neglected).
            self.assume("RBF centres are ±1 and inputs Gaussian (LeNet-5's output layer)", node)
            n = float(row.input[0])
            mean = n * (state.m2 + 1)
            spread = n * max(3 * state.var**2 + 6 * state.var + 1 - (state.m2 + 1) ** 2, 0.0)
            return Moments.iid(mean, mean * mean + spread)
        if row is not None and is_weighted(row):
            fan = float(fans(row).forward)
            factor = fan * self.variances[i]
            if kind == "subsample":  # one coefficient times a window sum: c adds up coherently
                window = fan
                out = Moments(0.0, factor * (state.m2 + (window - 1) * state.common),
                              factor * window * state.common)  # fmt: skip
            elif self.linear:
                out = Moments.iid(0.0, factor * state.m2)
            else:
                border, self.border_backward[i], common = meanfield.border_factors(row)
                out = state.weighted(factor * border, factor * common)
                padding = h.get("padding")
                if out.m2 and padding and any(padding) and kind.startswith("conv"):
                    self.assume("zero padding counted exactly: border outputs see fewer inputs",
                                node)  # fmt: skip
            self.pre[i] = out.m2
            return out
        if kind in ACTIVATIONS or kind == "prelu":
            if kind in ("softmax", "log_softmax"):
                self.assume(f"{kind} is not modelled; moments pass through", node)
            act_kind, act_h = ("leaky_relu", {"negative_slope": h.get("init", 0.25)}) \
                if kind == "prelu" else (kind, h)  # fmt: skip
            if self.linear:
                act = activations.for_row(kind, h)
                self.slopes[i] = act.g1
                return Moments.iid(0.0, act.g0 * state.m2)
            out, self.slopes[i] = meanfield.activation(act_kind, act_h, state)
            return out
        if kind.startswith("batchnorm"):
            self.assume("batch norm in training mode over a large batch (samples × positions), "
                        "gamma = 1, beta = 0: output variance 1, channel constants removed, "
                        "gradients divided by the variance within each channel", node)  # fmt: skip
            return Moments.iid(0.0, 1.0)
        if kind.startswith("instance_norm"):
            self.assume("instance norm: output variance 1 per sample and channel, gradients "
                        "divided by the variance within each channel", node)  # fmt: skip
            return Moments.iid(0.0, 1.0)
        if kind in ("layernorm", "group_norm"):
            self.assume(f"{kind} in training mode, gamma = 1, beta = 0: output variance 1, "
                        "gradients divided by the input variance", node)  # fmt: skip
            var = state.var
            return Moments(0.0, 1.0, state.channel_spread / var if var > 0 else 0.0)
        if kind in ("dropout", "dropout2d", "stochastic_depth"):
            self.assume(f"{kind} in training mode: E[x²] and gradient variance times 1/(1-p)",
                        node)  # fmt: skip
            return Moments(state.mean, state.m2 / (1 - h["p"]), state.common)
        if kind == "local_response_norm":
            self.assume("local response norm as a rescaling by k^-beta (alpha·Σx² ≪ k)", node)
            scale = h["k"] ** -h["beta"]
            source = state.source
            if source is not None:
                source = replace(source, scale=source.scale * scale)
            return Moments(state.mean * scale, state.m2 * scale * scale,
                           state.common * scale * scale, source)  # fmt: skip
        if "avgpool" in kind or kind == "mean":
            window = _average_window(node, self.nodes[node.inputs[0]].shape)[0]
            self.assume("average pooling: the channel constant kept, the rest of independent "
                        "elements divided by the window", node)  # fmt: skip
            return Moments(state.mean, state.common + state.spread * window, state.common)
        if "maxpool" in kind:
            if self.linear:
                window, stride = _window(row)
                e1, e2 = _max_moments(window)
                sigma = math.sqrt(state.var)
                mean = state.mean + sigma * e1
                self.routing[i] = 1 / stride
                return Moments.iid(
                    mean, state.mean**2 + 2 * state.mean * sigma * e1 + state.var * e2
                )
            self.assume("max pooling of independent elements within a window, shifted by the "
                        "channel constant; an increasing activation before it taken exactly, "
                        "its gradient meeting φ' at each window's maximum", node)  # fmt: skip
            out, self.routing[i] = meanfield.max_pool(row, state)
            return out
        if kind == "zero_pad":
            f = _ratio(self.nodes[node.inputs[0]].shape, node.shape)
            return Moments(state.mean * f, state.m2 * f, state.common * f * f)
        if kind == "upsample" and h["mode"] != "nearest":
            self.assume(f"{h['mode']} upsampling taken as nearest (interpolation between "
                        "neighbours not modelled)", node)  # fmt: skip
        if kind == "multihead_attention":
            self.assume("attention at PyTorch's own init (xavier_uniform in-projection, "
                        "out-projection as nn.Linear, zero biases), uniform attention weights "
                        "over independent tokens", node)  # fmt: skip
            tokens = float(node.shape[0])
            return Moments.iid(0.0, state.m2 / (6 * tokens))
        return state  # moves, crops, nearest upsampling, identity: the same elements

    # -- backward

    def backward(self) -> Grad:
        """Gradient variances from a unit-variance gradient at every output; returns the
        gradient at the input."""
        acc: dict[int, Any] = {i: 1.0 for i in self.graph.outputs}
        skip: set[int] = set()
        for node in reversed(self.nodes[1:]):
            g = acc.pop(node.id, None)
            if g is None or node.id in skip:
                continue
            for i, gi in self.backward_node(node, g, skip):
                acc[i] = _add(acc[i], gi) if i in acc else gi
        g = acc.get(0, 0.0)
        return _flat(g, self.states[0])

    def backward_node(self, node: Node, g: Any, skip: set[int]) -> list[tuple[int, Any]]:
        kind = node.type
        stream = self._stream(node, g, skip)
        if stream is not None:
            return stream
        if kind == "add":
            return [(i, self._broadcast(g, i, node)) for i in node.inputs]
        if kind == "concat":
            return self._concat_backward(node, g)
        g = _flat(g, self.states[node.id])
        if kind == "mul":
            parts = []
            for k, i in enumerate(node.inputs):
                others = product(self.states[j].m2 for m, j in enumerate(node.inputs) if m != k)
                parts.append((i, self._broadcast(grad_mean(g, None) * others, i, node)))
            return parts
        if kind == "matmul":
            a, b = node.inputs
            ga = grad_mean(g, None) * float(self.nodes[b].shape[-1]) * self.states[b].m2
            gb = grad_mean(g, None) * float(self.nodes[a].shape[-2]) * self.states[a].m2
            return [(a, ga), (b, gb)]
        if kind == "parameter":
            return []
        return [(node.inputs[0], self.backward_row(node, g))]

    def _broadcast(self, g: Any, i: int, node: Node) -> Any:
        """A broadcast input receives the sum over the positions it was copied to."""
        copies = _ratio(self.nodes[i].shape, node.shape, inverse=True)
        if copies == 1:
            return g
        return grad_mean(_flat(g, None), None) * copies

    def _concat_backward(self, node: Node, g: Any) -> list[tuple[int, Any]]:
        g = _flat(g, self.states[node.id])
        if node.hyper.get("dim", 0) != 0:
            return [(i, grad_mean(g, self.states[node.id])) for i in node.inputs]
        # A per-group gradient is split between the inputs that made the groups.
        parts: list[tuple[int, Any]] = []
        start = 0
        for i in node.inputs:
            out = self.states[i]
            n = len(out.groups) if out.groups else 1
            part = g[start : start + n] if isinstance(g, tuple) else g
            parts.append((i, part[0] if isinstance(part, tuple) and n == 1 else part))
            start += n
        return parts

    def _stream(self, node: Node, g: Any, skip: set[int]) -> list[tuple[int, Any]] | None:
        """An identity shortcut into ``x = φ(x_prev + body)``: the gradient by stream value.

        Where the stream is large, φ' of the next blocks is rarely 0, so the gradient
        and the stream value are correlated (a random-walk stream stays positive for
        many blocks). Carried as E[G² | x] on the stream's law atoms, one block at a time:
        ``E[G²|x_prev=a] = E_b[φ'(a+b)²·E[G²|x=φ(a+b)]] + (what the body returns)``.
        """
        if self.linear or node.type not in ACTIVATIONS or not node.inputs:
            return None
        add = self.nodes[node.inputs[0]]
        if add.type != "add" or len(add.inputs) != 2:
            return None
        if self.readers[add.id] != 1:
            return None
        a, b = add.inputs
        if self.states[a].law_source is None and self.states[b].law_source is not None:
            body, stream_in = a, b
        elif self.states[b].law_source is None and self.states[a].law_source is not None:
            body, stream_in = b, a
        else:
            return None
        state_in, out = self.states[stream_in], self.states[node.id]
        if state_in.law is None or out.law is None:
            return None
        act = activations.for_row(node.type, node.hyper)
        profile = g if isinstance(g, Profiled) and g.law is out.law else None
        g = grad_mean(_flat(g, out), out)
        weights = None
        if profile is not None:
            mean = profile.mean()
            weights = [v / mean for v in profile.values] if mean > 0 else None
        per_atom = meanfield.stream_slopes(act, state_in.law, self.states[body], out.law, weights)
        through = sum(w * p for (w, _, _), p in zip(state_in.law, per_atom))  # E[φ'² p]
        self.slopes[node.id] = through
        skip.add(add.id)
        return [(body, g * through), (stream_in, Profiled(state_in.law, [g * p for p in per_atom]))]

    def backward_row(self, node: Node, g: Grad) -> Grad:
        g = meanfield.saturate_grad(self._backward_row(node, g))
        if node.id in self.grad:
            self.grad[node.id] = meanfield.saturate_grad(self.grad[node.id])
        return g

    def _backward_row(self, node: Node, g: Grad) -> Grad:
        i, row, kind, h = node.id, self.rows.get(node.id), node.type, node.hyper
        state_in = self.state_in(node)
        if isinstance(g, tuple):
            if kind in MOVES:
                return g  # per-group gradients pass through unchanged
            g = grad_mean(g, self.states.get(i))
        if kind.startswith("batchnorm") and not self.linear and state_in.groups:
            # each channel is divided by its own within-channel spread
            return tuple(g / o.spread if o.spread > 0 else g for _, o in state_in.groups)
        if kind == "rbf":
            # ∂y_i/∂x_j = 2(x_j − w_ij), so the gradient is 2·x_j·Σ_i g_i − 2·Σ_i w_ij g_i: its
            # first part grows with x_j = φ(a_j), where a saturating φ' is small. With the
            # activation before it, take both together: 4m·(E[φ²φ'²] + E[w²]·E[φ'²])·g.
            m = float(row.output[0])
            before = self.nodes[node.inputs[0]]
            if before.type in ACTIVATIONS and not self.linear:
                state, hb = self.state_in(before), before.hyper
                args = (before.type, state.mean, state.var, hb.get("negative_slope"),
                        hb.get("alpha"), activations.extra_params(hb))  # fmt: skip
                joint = activations.value_slope_moment(*args) + activations.moments(*args)[2]
                self.slopes[before.id] = 1.0  # already applied here
                return 4 * m * joint * g
            return 4 * m * (state_in.m2 + 1) * g
        if row is not None and is_weighted(row):
            border = self.border_backward.get(i, 1.0)  # found on the way forward
            g = float(fans(row).backward) * self.variances[i] * border * g
            self.grad[i] = g
            return g
        if kind in ACTIVATIONS or kind == "prelu":
            return g * self.slopes[i]
        if kind.startswith("batchnorm") or kind.startswith("instance_norm"):
            var = state_in.var if self.linear else state_in.spread
            return g / var if var > 0 else g
        if kind in ("layernorm", "group_norm"):
            var = state_in.var
            return g / var if var > 0 else g
        if kind in ("dropout", "dropout2d", "stochastic_depth"):
            return g / (1 - h["p"])
        if kind == "local_response_norm":
            return g * h["k"] ** (-2 * h["beta"])
        if "avgpool" in kind or kind == "mean":
            return g * _average_window(node, self.nodes[node.inputs[0]].shape)[1]
        if "maxpool" in kind:
            return g * self.routing[i]  # each window routes its gradient to its maximum
        if kind in ("narrow", "center_crop"):  # what is cut off gets no gradient
            return g * _ratio(node.shape, self.nodes[node.inputs[0]].shape)
        if kind == "upsample":
            return g / _ratio(self.nodes[node.inputs[0]].shape, node.shape)  # copies add up
        if kind == "multihead_attention":
            return g / (6 * float(node.shape[0]))
        return g


def _ratio(small: tuple, large: tuple, inverse: bool = False) -> float:
    """``Π small / Π large`` (or its inverse)."""
    a, b = float(product(small)), float(product(large))
    return (b / a if a else 1.0) if inverse else (a / b if b else 1.0)


def _window(row: Row) -> tuple[float, float]:
    """Window size and stride product of a pooling row (adaptive: the mean ratio)."""
    h = row.hyper
    if row.type.startswith("adaptive"):
        ratio = product(row.input[1:]) / product(row.output[1:])
        return ratio, ratio
    return float(product(h["kernel_size"])), float(product(h["stride"]))


def _average_window(node: Node, inp: tuple) -> tuple[float, float]:
    """Average pooling: the forward factor on the within-channel spread (``E_w[1/size]``)
    and the backward factor on the gradient variance per input element."""
    h, kind = node.hyper, node.type
    if kind == "mean":
        count = float(product(inp[d] for d in h["dims"]))
        return 1 / count, 1 / (count * count) * 1.0
    if kind.startswith("adaptive"):
        forward = backward = 1.0
        for n, out in zip(inp[1:], node.shape[1:]):
            counts = adaptive_window_counts(int(n), int(out))
            forward *= sum(c / size for size, c in counts.items()) / out
            backward *= sum(c / size for size, c in counts.items()) / n
        return forward, backward
    window, stride = float(product(h["kernel_size"])), float(product(h["stride"]))
    return 1 / window, 1 / (window * stride)  # each input sits in window/stride windows


def _max_moments(window: float) -> tuple[float, float]:
    from archcalc.init.gaussian import max_moments

    return max_moments(max(1, round(window)))
