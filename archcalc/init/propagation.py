"""Predict, layer by layer, whether signals and gradients vanish or explode.

Forward: the input has zero mean and unit variance per element; each weighted
layer's pre-activation gets ``Var = n_in·Var[w]·E[x²]`` (independent zero-mean
weights, zero biases), and each activation maps a Gaussian ``N(mu, var)`` to
``E[φ]`` and ``E[φ²]`` exactly (the mean-field map of Poole et al. 2016).
Backward: a unit-variance gradient at the output; each weighted layer
multiplies by ``n_out·Var[w]`` and each activation by ``E[φ'(x)²]``
(Schoenholz et al. 2017). Signals are flagged by their per-element variance;
gradients by their squared norm relative to the output gradient's, because
under fan-in scaling the per-element gradient variance follows the layer
widths (a 2,592 -> 256 layer shrinks it tenfold) without anything vanishing.
The "product" mode replaces the exact maps by the
course's linear gains G0 and G1, for comparison.

What each tensor carries (:mod:`archcalc.init.meanfield`): mean, E[x²] and the
part constant over a channel (what batch norm removes and pooling keeps);
for a residual stream its non-Gaussian law; for a concatenation its channel
groups. Backward, a residual stream keeps E[G² | stream value], because a
stream that is large stays active through the next blocks' ReLUs.

Assumptions, stated once: weights independent of the signal; elements
within a channel independent apart from the channel constant (no spatial
correlation between neighbours); zero padding counted exactly; batch and
layer norm in training mode with gamma = 1, beta = 0; dropout in training
mode; softmax not modelled. Each assumption is also listed, with the layers
it was used at, in the output.

>>> from archcalc import analyze
>>> layers = [{"type": "linear", "out_features": 128, "activation": "relu"}] * 29
>>> net = analyze({"name": "mlp", "input": [64], "layers": [*layers, {"type": "linear", "out_features": 10}]})
>>> p = propagate(net, scheme="lecun")
>>> round(p.layers[-1].forward / p.layers[0].forward * 2**29, 9)   # halves at every ReLU
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from archcalc.errors import ArchcalcError
from archcalc.init import activations, meanfield
from archcalc.init.meanfield import Grad, Law, Moments, grad_add, grad_mean
from archcalc.init.recommend import (
    ACTIVATIONS,
    Recommendation,
    fans,
    is_weighted,
    scheme_variance,
)
from archcalc.init.recommend import recommend as recommend_all
from archcalc.language.expr import product
from archcalc.quantities.analysis import Analysis, Item, Row, analyze

HEALTHY = (1e-2, 1e2)


@dataclass(frozen=True)
class LayerPrediction:
    """Predictions for one weighted layer."""

    depth: int  # 1-based among weighted layers
    recommendation: Recommendation
    weight_variance: float
    forward: float  # variance of its pre-activation output (input: unit variance)
    backward: float  # variance of the gradient reaching its input (output: unit variance)
    forward_product: float  # the same with the course's linear gains
    backward_product: float
    factor: float  # n_in·Var[w]·G0: the course's per-layer factor
    #: squared norm of the gradient at its input relative to the output gradient's: the
    #: per-element variance times the element counts, so that a narrowing layer (fan-in
    #: init scales per-element gradients by fan_out/fan_in) is not mistaken for vanishing.
    backward_norm: float

    @property
    def row(self) -> Row:
        return self.recommendation.row

    def flag(self) -> str | None:
        low, high = HEALTHY
        for value in (self.forward, self.backward_norm):
            if value < low:
                return "vanishing"
            if value > high:
                return "exploding"
        return None


@dataclass
class Propagation:
    """The result of :func:`propagate`."""

    scheme: str
    layers: list[LayerPrediction]
    output_variance: float
    output_variance_product: float
    input_gradient: float
    warnings: list[str] = field(default_factory=list)

    def first_signal(self) -> LayerPrediction | None:
        """The shallowest layer whose pre-activation variance leaves the healthy range."""
        return next((layer for layer in self.layers if _off(layer.forward)), None)

    def first_gradient(self) -> LayerPrediction | None:
        """The deepest layer whose input gradient leaves the range (gradients flow backwards)."""
        return next((layer for layer in reversed(self.layers) if _off(layer.backward_norm)), None)

    @property
    def verdict(self) -> str:
        n = len(self.layers)
        if not n:
            return f"{self.scheme}: no weighted layers"
        problems = []
        signal, gradient = self.first_signal(), self.first_gradient()
        if signal is not None:
            way = "vanishing" if signal.forward < HEALTHY[0] else "exploding"
            problems.append(f"{way} signal from depth {signal.depth} ({signal.row.path})")
        if gradient is not None:
            way = "vanishing" if gradient.backward_norm < HEALTHY[0] else "exploding"
            problems.append(
                f"{way} gradient from depth {gradient.depth} backwards ({gradient.row.path})"
            )
        forward = [layer.forward for layer in self.layers]
        backward = [layer.backward for layer in self.layers]
        ranges = (f"pre-activation variance {variance_text(min(forward))}..{variance_text(max(forward))}, "
                  f"input gradients {variance_text(min(backward))}..{variance_text(max(backward))} "
                  f"over {n} weighted layers")  # fmt: skip
        if problems:
            return f"{self.scheme}: {'; '.join(problems)}: {ranges}"
        return f"{self.scheme}: healthy: {ranges}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "layers": [_layer_dict(layer) for layer in self.layers],
            "output_variance": self.output_variance,
            "output_variance_product": self.output_variance_product,
            "input_gradient_variance": self.input_gradient,
            "verdict": self.verdict,
            "warnings": list(self.warnings),
        }


def variance_text(value: float, digits: int = 3) -> str:
    """A predicted variance for display; saturated values say so (``>=1e+300``).

    >>> variance_text(0.51234), variance_text(1e300), variance_text(0.0)
    ('0.512', '>=1e+300', '0')
    """
    if value >= meanfield.HUGE:
        return f">={meanfield.HUGE:g}"
    return f"{value:.{digits}g}"


def _off(value: float) -> bool:
    return not HEALTHY[0] <= value <= HEALTHY[1]


def _layer_dict(layer: LayerPrediction) -> dict[str, Any]:
    rec = layer.recommendation
    fan = rec.fans
    return {
        "path": rec.row.path,
        "type": rec.row.type,
        "depth": layer.depth,
        "fan_in": fan.fan_in,
        "fan_out": fan.fan_out,
        "torch_fan_in": fan.torch_fan_in,
        "torch_fan_out": fan.torch_fan_out,
        "fan_note": fan.torch_differs,
        "activation": rec.activation,
        "gain": {"g0": rec.g0, "g1": rec.g1, "torch": rec.torch_gain},
        "recommended": rec.to_dict(),
        "weight_variance": layer.weight_variance,
        "factor": layer.factor,
        "forward_variance": layer.forward,
        "backward_variance": layer.backward,
        "backward_norm_ratio": layer.backward_norm,
        "forward_variance_product": layer.forward_product,
        "backward_variance_product": layer.backward_product,
        "flag": layer.flag(),
    }


def propagate(spec: Any, scheme: str = "recommended", **values: int) -> Propagation:
    """Predict forward and backward variances of every weighted layer under ``scheme``.

    ``scheme``: recommended, kaiming, xavier, lecun, torch_default or normal:STD.
    """
    analysis = spec if isinstance(spec, Analysis) else analyze(spec, **values)
    if analysis.symbolic:
        raise ArchcalcError(
            "variance propagation needs numbers; give every symbol a value (--set NAME=VALUE)"
        )
    recs = recommend_all(analysis)
    index = {id(r): i for i, r in enumerate(analysis.rows)}
    variances: dict[int, float] = {}
    for rec in recs:
        if scheme == "recommended":
            var = rec.variance
        else:
            act = activations.get(rec.activation, rec.negative_slope)
            var = scheme_variance(scheme, rec.fans, act)
        variances[index[id(rec.row)]] = float(var)
    exact, linear = _Walker(analysis, variances, False), _Walker(analysis, variances, True)
    out = exact.forward(analysis.tree, Moments.iid(0.0, 1.0))
    out_linear = linear.forward(analysis.tree, Moments.iid(0.0, 1.0))
    grad = grad_mean(exact.backward(analysis.tree, 1.0), None)
    linear.backward(analysis.tree, 1.0)
    out_elements = float(product(analysis.output))
    layers = []
    for depth, rec in enumerate(recs, start=1):
        i = index[id(rec.row)]
        layers.append(LayerPrediction(
            depth, rec, variances[i], exact.pre[i], exact.grad[i], linear.pre[i], linear.grad[i],
            float(rec.fans.forward) * variances[i] * rec.g0,
            meanfield.saturate_grad(float(product(rec.row.input)) * exact.grad[i] / out_elements),
        ))  # fmt: skip
    warnings = exact.notes
    return Propagation(scheme, layers, out.m2, out_linear.m2, grad, warnings)


class _Walker:
    """One forward and one backward pass over the item tree."""

    def __init__(self, analysis: Analysis, variances: dict[int, float], linear: bool):
        self.rows = analysis.rows
        self.index = {id(r): i for i, r in enumerate(analysis.rows)}
        self.variances, self.linear = variances, linear
        self.pre: dict[int, float] = {}  # weighted row -> pre-activation variance
        self.grad: dict[int, float] = {}  # weighted row -> gradient variance at its input
        self.inputs: dict[int, Moments] = {}
        self.slopes: dict[int, float] = {}
        self.routing: dict[int, float] = {}  # max pool row -> its backward factor
        self.border_backward: dict[int, float] = {}  # padded conv row -> backward correction
        self.outputs: dict[int, Moments] = {}
        self.residual_parts: dict[int, tuple[Moments, Moments]] = {}
        #: E[G²|x]/E[G²] over the atoms of a residual stream's law, for the block before
        self.profile: tuple[Law, list[float]] | None = None
        self.concat_outs: dict[int, list[Moments]] = {}
        self.assumed: dict[str, list[str]] = {}  # assumption -> paths it was used at

    def assume(self, what: str, row: Row) -> None:
        paths = self.assumed.setdefault(what, [])
        if row.path not in paths:
            paths.append(row.path)

    @property
    def notes(self) -> list[str]:
        lines = []
        for what, paths in self.assumed.items():
            where = ", ".join(paths[:2]) + (f" and {len(paths) - 2} more" if len(paths) > 2 else "")
            lines.append(f"{where}: {what}")
        return lines

    # -- forward

    def forward(self, items: list[Item], state: Moments) -> Moments:
        for item in items:
            rows = range(item.first_row, item.end_row)
            if item.type == "residual":
                body, shortcut = item.children
                a, b = self.forward(body, state), self.forward(shortcut, state)
                # independent branches add; their channel constants share only the means
                mean = a.mean + b.mean
                common = a.common + b.common + 2 * a.mean * b.mean
                law = None  # a non-Gaussian stream plus a Gaussian branch stays known exactly
                if (a.law is None) != (b.law is None):
                    known, other = (a, b) if a.law is not None else (b, a)
                    law = meanfield.add_gaussian(known.law, other.mean, other.var)
                self.residual_parts[id(item)] = (state, a)
                state = Moments(mean, a.var + b.var + mean * mean, common, law_source=law)
                state = self._activation_tail(item, state)
            elif item.type == "concat":
                channels = [self._channels(branch, item, state) for branch in item.children]
                outs = [self.forward(branch, state) for branch in item.children]
                total = sum(channels)
                sources = {o.source for o in outs}
                groups = tuple(
                    group
                    for c, o in zip(channels, outs)
                    for group in (o.groups or ((float(c), replace(o, groups=None)),))
                )
                self.concat_outs[id(item)] = outs
                state = Moments(
                    sum(c * o.mean for c, o in zip(channels, outs)) / total,
                    sum(c * o.m2 for c, o in zip(channels, outs)) / total,
                    sum(c * o.common for c, o in zip(channels, outs)) / total,
                    sources.pop() if len(sources) == 1 else None,  # φ(z) if every branch is
                    groups=groups,
                )
            elif item.children:
                state = self.forward(item.children[0], state)
            else:
                for i in rows:
                    state = self.forward_row(i, state)
        return state

    def _channels(self, branch: list[Item], concat: Item, state: Moments) -> Any:
        if branch:
            return branch[-1].output[0]
        return self.rows[concat.first_row].input[0] if concat.end_row > concat.first_row else 1

    def _activation_tail(self, item: Item, state: Moments) -> Moments:
        last = item.end_row - 1
        if item.end_row > item.first_row and self.rows[last].path == f"{item.path}.activation":
            return self.forward_row(last, state)
        return state

    def forward_row(self, i: int, state: Moments) -> Moments:
        self.inputs[i] = state
        self.outputs[i] = out = meanfield.saturate(self._forward_row(i, state))
        if i in self.pre:
            self.pre[i] = min(self.pre[i], out.m2) if out.m2 else 0.0
        return out

    def _forward_row(self, i: int, state: Moments) -> Moments:
        row, kind, h = self.rows[i], self.rows[i].type, self.rows[i].hyper
        if row.type == "rbf":
            # y_i = Σ_j (x_j − w_ij)² with centres ±1 (LeNet-5's bitmaps) and Gaussian inputs:
            # E[(x−w)²] = m2 + 1, E[(x−w)⁴] = 3var² + 6var + 1 (+ mean terms, neglected).
            self.assume("RBF centres are ±1 and inputs Gaussian (LeNet-5's output layer)", row)
            n = float(row.input[0])
            mean = n * (state.m2 + 1)
            spread = n * max(3 * state.var**2 + 6 * state.var + 1 - (state.m2 + 1) ** 2, 0.0)
            return Moments.iid(mean, mean * mean + spread)
        if is_weighted(row):
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
                if out.m2 and row.hyper.get("padding") and any(row.hyper["padding"]):
                    self.assume(
                        "zero padding counted exactly: border outputs see fewer inputs", row
                    )
            self.pre[i] = out.m2
            return out
        if kind in ACTIVATIONS:
            if kind == "softmax":
                self.assume("softmax is not modelled; moments pass through", row)
            if self.linear:
                act = activations.get(kind, h.get("negative_slope"), h.get("alpha"))
                self.slopes[i] = act.g1
                return Moments.iid(0.0, act.g0 * state.m2)
            out, self.slopes[i] = meanfield.activation(kind, h, state)
            return out
        if kind.startswith("batchnorm"):
            self.assume("batch norm in training mode over a large batch (samples × positions), "
                        "gamma = 1, beta = 0: output variance 1, channel constants removed, "
                        "gradients divided by the variance within each channel", row)  # fmt: skip
            return Moments.iid(0.0, 1.0)
        if kind == "layernorm":
            self.assume("layer norm in training mode, gamma = 1, beta = 0: output variance 1, "
                        "gradients divided by the input variance", row)  # fmt: skip
            var = state.var
            return Moments(0.0, 1.0, state.channel_spread / var if var > 0 else 0.0)
        if kind in ("dropout", "dropout2d"):
            self.assume("dropout in training mode: E[x²] and gradient variance times 1/(1-p)", row)
            return Moments(state.mean, state.m2 / (1 - h["p"]), state.common)
        if kind == "local_response_norm":
            self.assume("local response norm as a rescaling by k^-beta (alpha·Σx² ≪ k)", row)
            scale = h["k"] ** -h["beta"]
            source = state.source
            if source is not None:
                source = replace(source, scale=source.scale * scale)
            return Moments(state.mean * scale, state.m2 * scale * scale,
                           state.common * scale * scale, source)  # fmt: skip
        if "avgpool" in kind:
            window, _ = _window(row)
            self.assume("average pooling: the channel constant kept, the rest of independent "
                        "elements divided by the window", row)  # fmt: skip
            return Moments(state.mean, state.common + state.spread / window, state.common)
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
                        "its gradient meeting φ' at each window's maximum", row)  # fmt: skip
            out, self.routing[i] = meanfield.max_pool(row, state)
            return out
        return state  # flatten, identity, ...

    # -- backward

    def backward(self, items: list[Item], g: Grad) -> Grad:
        for item in reversed(items):
            rows = range(item.first_row, item.end_row)
            if item.type == "residual":
                profile, self.profile = self.profile, None
                body, shortcut = item.children
                last = item.end_row - 1
                tail = item.end_row > item.first_row and (
                    self.rows[last].path == f"{item.path}.activation"
                )
                stream = self._stream_backward(item, last, g, profile) if tail else None
                if stream is not None:
                    g = stream
                    continue
                if tail:
                    g = self.backward_row(last, g)
                g = grad_add(self.backward(body, g), self.backward(shortcut, g))
            elif item.type == "concat":
                self.profile = None
                # A per-group gradient is split between the branches that made the groups.
                parts: list[Grad] = []
                start = 0
                for out in self.concat_outs[id(item)]:
                    n = len(out.groups) if out.groups else 1
                    part = g[start : start + n] if isinstance(g, tuple) else g
                    parts.append(part[0] if isinstance(part, tuple) and n == 1 else part)
                    start += n
                total: Grad = 0.0
                for branch, part in zip(item.children, parts):
                    total = grad_add(total, self.backward(branch, part))
                g = total
            elif item.children:
                g = self.backward(item.children[0], g)
            else:
                self.profile = None
                for i in reversed(rows):
                    g = self.backward_row(i, g)
        return g

    def _stream_backward(
        self, item: Item, last: int, g: Grad, profile: tuple[Law, list[float]] | None
    ) -> float | None:
        """Identity shortcut into ``x = φ(x_prev + body)``: the gradient by stream value.

        Where the stream is large, φ' of the next blocks is rarely 0, so the gradient
        and the stream value are correlated (a random-walk stream stays positive for
        many blocks). Carried as E[G² | x] on the stream's law atoms, one block at a time:
        ``E[G²|x_prev=a] = E_b[φ'(a+b)²·E[G²|x=φ(a+b)]] + (what the body returns)``.
        """
        state_in, body_out = self.residual_parts[id(item)]
        out = self.outputs[last]
        body, shortcut = item.children
        if self.linear or shortcut or state_in.law is None or out.law is None:
            return None
        row = self.rows[last]
        act = activations.get(row.type, row.hyper.get("negative_slope"), row.hyper.get("alpha"))
        g = grad_mean(g, out)
        weights = profile[1] if profile is not None and profile[0] is out.law else None
        per_atom = meanfield.stream_slopes(act, state_in.law, body_out, out.law, weights)
        through = sum(w * p for (w, _, _), p in zip(state_in.law, per_atom))  # E[φ'² p]
        self.slopes[last] = through
        from_body = grad_mean(self.backward(body, g * through), state_in)
        total = [g * p + from_body for p in per_atom]
        mean = sum(w * t for (w, _, _), t in zip(state_in.law, total))
        self.profile = (state_in.law, [t / mean for t in total]) if mean > 0 else None
        return mean

    def backward_row(self, i: int, g: Grad) -> Grad:
        g = meanfield.saturate_grad(self._backward_row(i, g))
        if i in self.grad:
            self.grad[i] = meanfield.saturate_grad(self.grad[i])
        return g

    def _backward_row(self, i: int, g: Grad) -> Grad:
        row, kind, h = self.rows[i], self.rows[i].type, self.rows[i].hyper
        if isinstance(g, tuple):
            if kind in ("flatten", "identity"):
                return g  # per-group gradients pass through unchanged
            g = grad_mean(g, self.outputs.get(i))
        if kind.startswith("batchnorm") and not self.linear and self.inputs[i].groups:
            # each channel is divided by its own within-channel spread
            return tuple(g / o.spread if o.spread > 0 else g for _, o in self.inputs[i].groups)
        if kind == "rbf":
            # ∂y_i/∂x_j = 2(x_j − w_ij), so the gradient is 2·x_j·Σ_i g_i − 2·Σ_i w_ij g_i: its
            # first part grows with x_j = φ(a_j), where a saturating φ' is small. With the
            # activation before it, take both together: 4m·(E[φ²φ'²] + E[w²]·E[φ'²])·g.
            m = float(row.output[0])
            before = self.rows[i - 1] if i > 0 else None
            if before is not None and before.type in ACTIVATIONS and not self.linear:
                state, hb = self.inputs[i - 1], before.hyper
                args = (
                    before.type,
                    state.mean,
                    state.var,
                    hb.get("negative_slope"),
                    hb.get("alpha"),
                )
                joint = activations.value_slope_moment(*args) + activations.moments(*args)[2]
                self.slopes[i - 1] = 1.0  # already applied here
                return 4 * m * joint * g
            return 4 * m * (self.inputs[i].m2 + 1) * g
        if is_weighted(row):
            border = self.border_backward.get(i, 1.0)  # found on the way forward
            g = float(fans(row).backward) * self.variances[i] * border * g
            self.grad[i] = g
            return g
        if kind in ACTIVATIONS:
            return g * self.slopes[i]
        if kind.startswith("batchnorm"):
            var = self.inputs[i].var if self.linear else self.inputs[i].spread
            return g / var if var > 0 else g
        if kind == "layernorm":
            var = self.inputs[i].var
            return g / var if var > 0 else g
        if kind in ("dropout", "dropout2d"):
            return g / (1 - h["p"])
        if kind == "local_response_norm":
            return g * h["k"] ** (-2 * h["beta"])
        if "avgpool" in kind:
            window, stride = _window(row)
            return g / (
                window * stride
            )  # each input sits in window/stride windows, weight 1/window
        if "maxpool" in kind:
            return g * self.routing[i]  # each window routes its gradient to its maximum
        return g


def _window(row: Row) -> tuple[float, float]:
    """Window size and stride product of a pooling row (adaptive: the mean ratio)."""
    h = row.hyper
    if row.type.startswith("adaptive"):
        ratio = product(row.input[1:]) / product(row.output[1:])
        return ratio, ratio
    return float(product(h["kernel_size"])), float(product(h["stride"]))


def _max_moments(window: float) -> tuple[float, float]:
    from archcalc.init.gaussian import max_moments

    return max_moments(max(1, round(window)))
