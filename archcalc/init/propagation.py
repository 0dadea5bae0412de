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
from dataclasses import dataclass, field
from typing import Any

from archcalc import collector
from archcalc.init import meanfield
from archcalc.init.meanfield import grad_mean
from archcalc.init.recommend import Recommendation, weight_variance
from archcalc.init.recommend import recommend as recommend_all
from archcalc.init.walker import Walker
from archcalc.language.expr import product
from archcalc.quantities.analysis import Analysis, Row, analyze

HEALTHY = (1e-2, 1e2)
#: A factor beyond which training stalls rather than slows: a variance ratio of 1e8 is a
#: 1e4 change in scale, more than a learning-rate search compensates. A rule of thumb set
#: between He et al. 2015's 22-layer (2^21 ≈ 2.1e6, trains) and 30-layer (2^29 ≈ 5.4e8,
#: stalls) ReLU networks at Var = 1/n.
STALLS = 1e8


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
    #: on a gate branch (squeeze-and-excitation: pooled to one value per channel, then
    #: multiplied into the features): not on the signal's path, see :func:`gate_nodes`
    gate: bool = False

    @property
    def row(self) -> Row:
        return self.recommendation.row

    def flag(self) -> str | None:
        """None inside the healthy band; else how far out the signal or the gradient is."""
        off = [v for v in (self.forward, self.backward_norm) if _off(v)]
        if not off:
            return None
        word = severity(max(off, key=lambda v: abs(math.log(v)) if v > 0 else math.inf))
        return f"{word} (gate)" if self.gate else word


@dataclass
class Propagation:
    """The result of :func:`propagate`."""

    scheme: str
    layers: list[LayerPrediction]
    output_variance: float
    output_variance_product: float
    input_gradient: float
    warnings: list[str] = field(default_factory=list)
    #: The graph, to say why a gradient is small (a layer scale); None where not known.
    graph: Any = field(default=None, repr=False, compare=False)

    def first_signal(self) -> LayerPrediction | None:
        """The shallowest layer off the gates whose pre-activation variance leaves the
        healthy range."""
        return next(
            (layer for layer in self.layers if not layer.gate and _off(layer.forward)), None
        )

    def first_gradient(self) -> LayerPrediction | None:
        """The deepest layer off the gates whose input gradient leaves the range (gradients
        flow backwards)."""
        return next((layer for layer in reversed(self.layers)
                     if not layer.gate and _off(layer.backward_norm)), None)  # fmt: skip

    def problems(self, short: bool = False) -> list[str]:
        """The signal's and the gradient's way out of the band, if any (see :func:`_problem`);
        gate layers count as healthy here and are told apart (:meth:`gate_note`)."""
        found = []
        signal, gradient = self.first_signal(), self.first_gradient()
        if signal is not None:
            values = [1.0 if layer.gate else layer.forward for layer in self.layers]
            found.append(_problem("signal", signal, values, self.layers, short))
        if gradient is not None:
            values = [1.0 if layer.gate else layer.backward_norm for layer in self.layers]
            found.append(_problem("gradient", gradient, values, self.layers, short, self.graph))
        return found

    def gate_note(self) -> str | None:
        """What the gate layers' variances are, and why they are left out of the verdict;
        None where no gate layer is out of the band."""
        gates = [layer for layer in self.layers if layer.gate]
        if not any(layer.flag() for layer in gates):
            return None
        forward = [layer.forward for layer in gates]
        norms = [layer.backward_norm for layer in gates]
        return (f"and {len(gates)} on gate branches (squeeze-and-excitation, from "
                f"{gates[0].row.path}): pre-activation variance {variance_text(min(forward))}.."
                f"{variance_text(max(forward))}, gradient norm {variance_text(min(norms))}.."
                f"{variance_text(max(norms))}, left out: a gate reads a per-channel mean, small "
                "by design, and starts near its midpoint (sigmoid(0) = 0.5)")  # fmt: skip

    @property
    def summary(self) -> str:
        """One phrase for analyze's init line: 'healthy' or the problems, shortly."""
        return "; ".join(self.problems(short=True)) or "healthy"

    @property
    def verdict(self) -> str:
        n = len(self.layers)
        if not n:
            return f"{self.scheme}: no weighted layers"
        problems = self.problems()
        gates = self.gate_note()
        path = [layer for layer in self.layers if not (gates and layer.gate)]
        forward = [layer.forward for layer in path]
        backward = [layer.backward for layer in path]
        ranges = (f"pre-activation variance {variance_text(min(forward))}..{variance_text(max(forward))}, "
                  f"input gradients {variance_text(min(backward))}..{variance_text(max(backward))} "
                  f"over {len(path)} weighted layers")  # fmt: skip
        gates = f" {gates}" if gates else ""
        if problems:
            return f"{self.scheme}: {'; '.join(problems)}: {ranges}{gates}"
        return f"{self.scheme}: healthy: {ranges}{gates}"

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


def severity(value: float) -> str:
    """How far a variance ratio is from 1: within the band of :data:`STALLS` a network
    still trains, more slowly (He et al. 2015's 22 ReLU layers at Var = 1/n: 2^-21);
    beyond it training stalls (their 30 layers: 2^-29).

    >>> severity(2.0**-21), severity(2.0**-29), severity(1e5), severity(1e9)
    ('degrading', 'vanishing', 'growing', 'exploding')
    """
    if value < 1:
        return "degrading" if value >= 1 / STALLS else "vanishing"
    return "growing" if value <= STALLS else "exploding"


def _problem(what: str, first: LayerPrediction, values: list[float],
             layers: list[LayerPrediction], short: bool = False, graph: Any = None) -> str:  # fmt: skip
    """'vanishing signal from depth 8 (path), 1/5.37e+08 at depth 30 (...)': the first layer
    out of the band, and the largest factor reached, which decides the word."""
    low = values[first.depth - 1] < HEALTHY[0]
    extreme = min(values) if low else max(values)
    worst = layers[values.index(extreme)]
    word = severity(extreme)
    ratio = (1 / extreme if extreme > 1 / meanfield.HUGE else math.inf) if low else extreme
    factor = f"{'1/' if low else 'x'}{variance_text(ratio)}"  # saturated: 1/>=1e+300
    backwards = " backwards" if what == "gradient" else ""
    scale = layer_scale(graph, worst.row.node) if what == "gradient" and low and graph else None
    if short:
        behind = ", behind a layer scale" if scale is not None else ""
        return f"{word} {what} from depth {first.depth}{backwards} ({factor}{behind})"
    consequence = ("under 1e8: trains, more slowly" if word in ("degrading", "growing")
                   else "over 1e8: expect training to stall")  # fmt: skip
    if scale is not None:
        # ConvNeXt's branches end in a learned scale initialised to 1e-6: the gradient
        # reaching their weights starts that small by design, while the scale's own gradient
        # is not small, so it grows and the branch with it
        consequence = (f"behind {scale.path}, a learned scale initialised to "
                       f"{scale.hyper['init']:g}: small by design, not a stall, as the scale's "
                       "own gradient is not small")  # fmt: skip
    return (
        f"{word} {what} from depth {first.depth}{backwards} ({first.row.path}), {factor} "
        f"at depth {worst.depth} ({consequence})"
    )


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
        "gate": layer.gate,
    }


def propagate(spec: Any, scheme: str = "recommended", **values: int) -> Propagation:
    """Predict forward and backward variances of every weighted layer under ``scheme``.

    ``scheme``: recommended, kaiming, kaiming_out, xavier, lecun, torch_default or normal:STD.
    """
    analysis = spec if isinstance(spec, Analysis) else analyze(spec, **values)
    if analysis.symbolic:
        raise analysis.needs_numbers("variance propagation")
    recs = recommend_all(analysis)
    variances: dict[int, float] = {
        rec.row.node: float(weight_variance(rec, scheme)) for rec in recs
    }
    exact, linear = Walker(analysis, variances, False), Walker(analysis, variances, True)
    with collector.paused():  # every layer's moments survive: see archcalc.collector
        out = exact.forward()[0]
        out_linear = linear.forward()[0]
        grad = grad_mean(exact.backward(), None)
        linear.backward()
    out_elements = float(product(analysis.output))
    gates = gate_nodes(analysis.graph)
    layers = []
    for depth, rec in enumerate(recs, start=1):
        i = rec.row.node
        layers.append(LayerPrediction(
            depth, rec, variances[i], exact.pre[i], exact.grad.get(i, 0.0), linear.pre[i],
            linear.grad.get(i, 0.0), float(rec.fans.forward) * variances[i] * rec.g0,
            meanfield.saturate_grad(float(product(rec.row.input)) * exact.grad.get(i, 0.0)
                                    / out_elements),
            i in gates,
        ))  # fmt: skip
    warnings = exact.notes
    return Propagation(scheme, layers, out.m2, out_linear.m2, grad, warnings, analysis.graph)


def gate_nodes(graph: Any) -> set[int]:
    """Nodes on gate branches: every path from them to an output ends as the broadcast
    operand of a ``mul`` whose operand is one value per channel ([C, 1, 1]) - a
    squeeze-and-excitation gate's pool, its two convolutions and its sigmoid.

    Their pre-activations are small by design (a mean over the whole map), which is no
    vanishing signal: the signal's path goes through the ``mul``'s other operand.
    """
    nodes, readers, outputs = graph.nodes, graph.consumers(), set(graph.outputs)
    gates: set[int] = set()
    for node in reversed(nodes):  # readers come after what they read
        if node.id in outputs or not readers[node.id]:
            continue
        if all(j in gates or _gated(nodes[j], node) for j in readers[node.id]):
            gates.add(node.id)
    return gates


def _gated(mul: Any, operand: Any) -> bool:
    """Whether ``operand`` is a per-channel gate broadcast over ``mul``'s other input."""
    shape = operand.shape
    return (mul.type == "mul" and len(shape) > 1 and all(n == 1 for n in shape[1:])
            and tuple(mul.shape) != tuple(shape))  # fmt: skip


#: A learned tensor initialised within this of zero multiplies what it scales nearly away.
SMALL_SCALE = 1e-2


def layer_scale(graph: Any, node: int) -> Any:
    """The ``parameter`` node of a small learned scale (a layer scale: |init|, std <= 1e-2)
    multiplied into every path from ``node`` to an output, or None."""
    nodes = graph.nodes
    readers = graph.consumers()
    outputs = set(graph.outputs)
    for mul in nodes:
        if mul.type != "mul":
            continue
        small = [nodes[i] for i in mul.inputs if nodes[i].type == "parameter"
                 and abs(nodes[i].hyper["init"]) <= SMALL_SCALE
                 and nodes[i].hyper["std"] <= SMALL_SCALE]  # fmt: skip
        if not small:
            continue
        seen, stack = {mul.id, node}, [node]
        while stack:  # an output reached without passing the scale?
            i = stack.pop()
            if i in outputs:
                break
            for j in readers[i]:
                if j not in seen:
                    seen.add(j)
                    stack.append(j)
        else:
            return small[0]
    return None
