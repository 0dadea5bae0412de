"""Weight-initialisation recommendations for every weighted layer.

For each convolution, transposed convolution and linear layer: the true
fan-in and fan-out (and PyTorch's, where they differ), the activation that
follows it, its gains, and the recommended initial distribution with the code
that applies it in PyTorch and Keras. :mod:`archcalc.init.propagation` predicts what
each scheme does to signals and gradients.

>>> from archcalc import analyze
>>> net = analyze({"name": "n", "input": [64], "layers": [
...     {"type": "linear", "out_features": 128, "activation": "relu"},
...     {"type": "linear", "out_features": 10}]})
>>> [(r.activation, r.scheme, round(r.variance, 6)) for r in recommend(net)]
[('relu', 'kaiming', 0.03125), ('identity', 'xavier', 0.014493)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from archcalc.errors import ArchcalcError
from archcalc.init import activations
from archcalc.language.expr import product, to_text
from archcalc.language.printing import number
from archcalc.language.values import ACTIVATION_TYPES
from archcalc.quantities.analysis import Analysis, Row

SCHEMES = ("recommended", "kaiming", "kaiming_out", "xavier", "lecun", "torch_default")
#: Layer types the init looks through when finding the activation after a weighted layer.
TRANSPARENT = frozenset({
    "batchnorm1d", "batchnorm2d", "batchnorm3d", "layernorm", "local_response_norm", "dropout",
    "dropout2d", "flatten", "maxpool1d", "maxpool2d", "maxpool3d", "avgpool1d", "avgpool2d",
    "avgpool3d", "adaptive_avgpool1d", "adaptive_avgpool2d", "adaptive_avgpool3d",
    "adaptive_maxpool1d", "adaptive_maxpool2d", "adaptive_maxpool3d", "add", "concat",
    "group_norm", "instance_norm1d", "instance_norm2d", "instance_norm3d", "stochastic_depth",
    "reshape", "permute", "transpose", "unsqueeze", "narrow", "channel_shuffle", "upsample",
    "pixel_shuffle", "zero_pad", "center_crop", "mean",
})  # fmt: skip
ACTIVATIONS = frozenset(ACTIVATION_TYPES)


def is_weighted(row: Row) -> bool:
    """A layer with trainable weights to initialise (RBF centres are fixed)."""
    return row.fan_in is not None and row.type != "rbf"


@dataclass(frozen=True)
class Fans:
    """Connection counts of one weighted layer.

    ``fan_in``/``fan_out``: inputs per output unit and outputs per input unit
    as the init formulas use them (for a transposed convolution, the average
    fan-in ``(C_in/g)·Πk/Πs``). ``forward``/``backward``: the exact average
    counts that multiply variances (a strided convolution's input unit feeds
    ``(C_out/g)·Πk/Πs`` outputs). ``torch_*``: what
    ``torch.nn.init._calculate_fan_in_and_fan_out`` computes from the weight shape.
    """

    fan_in: Any
    fan_out: Any
    forward: Any
    backward: Any
    torch_fan_in: Any
    torch_fan_out: Any

    @property
    def torch_differs(self) -> str | None:
        notes = []
        if self.torch_fan_in != self.fan_in:
            notes.append(f"PyTorch's fan_in is {to_text(self.torch_fan_in)}")
        if self.torch_fan_out != self.fan_out:
            notes.append(f"PyTorch's fan_out is {to_text(self.torch_fan_out)}")
        return "; ".join(notes) or None


def fans(row: Row) -> Fans:
    """The fans of a weighted row (conv, conv_transpose, linear)."""
    if row.type == "linear":  # on the last dimension
        n, m = row.input[-1], row.output[-1]
        return Fans(n, m, n, m, n, m)
    if row.type == "subsample":  # one coefficient per map, applied to a window of inputs
        return Fans(row.fan_in, row.fan_out, row.fan_in, row.fan_out, 1, 1)
    if row.hyper.get("table"):  # averages over the output / input maps
        return Fans(
            row.fan_in,
            row.fan_out,
            row.fan_in,
            _div(row.fan_out, product(row.hyper["stride"])),
            row.fan_in,
            row.fan_out,
        )
    h = row.hyper
    taps, strides, groups = product(h["kernel_size"]), product(h["stride"]), h["groups"]
    c_in, c_out = row.input[0], row.output[0]
    per_in, per_out = _div(c_in, groups) * taps, _div(c_out, groups) * taps
    if row.type.startswith("conv_transpose"):
        # weight (C_in, C_out/g, *k): PyTorch reads fan_in from dim 1, i.e. the backward count.
        return Fans(
            _div(per_in, strides), per_out, _div(per_in, strides), per_out, per_out, c_in * taps
        )
    # weight (C_out, C_in/g, *k): PyTorch's fan_out = C_out·Πk ignores the groups.
    return Fans(per_in, per_out, per_in, _div(per_out, strides), per_in, c_out * taps)


def _div(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int):
        return a // b if a % b == 0 else a / b
    return a / b


@dataclass(frozen=True)
class Recommendation:
    """The recommended initialisation of one weighted layer."""

    row: Row
    fans: Fans
    activation: str
    negative_slope: float | None
    g0: float
    g1: float
    torch_gain: float | None
    scheme: str  # kaiming | xavier | lecun
    variance: Any
    reason: str

    @property
    def std(self) -> Any:
        return _sqrt(self.variance)

    @property
    def bound(self) -> Any:
        """Half-width of the uniform distribution with this variance: sqrt(3·Var)."""
        return _sqrt(3 * self.variance)

    @property
    def torch(self) -> str:
        return torch_code(self)

    @property
    def keras(self) -> str:
        return keras_code(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "variance": _number(self.variance),
            "std": _number(self.std),
            "bound": _number(self.bound),
            "torch": self.torch,
            "keras": self.keras,
            "reason": self.reason,
        }


def _is_sympy(value: Any) -> bool:
    return hasattr(value, "free_symbols")


def _sqrt(value: Any) -> Any:
    if _is_sympy(value):
        import sympy

        return sympy.sqrt(value)
    return math.sqrt(value)


def _number(value: Any) -> Any:
    if value is None or isinstance(value, (int, float)):
        return value
    return to_text(value)


#: Range of STD in ``normal:STD``: its square and any fan times it stay far inside a float.
NORMAL_STD_RANGE = (1e-100, 1e100)


def check_scheme(scheme: str) -> str:
    """``scheme`` if it names a scheme, else ArchcalcError (``normal:STD`` needs a sane STD).

    >>> check_scheme("normal:0.02")
    'normal:0.02'
    >>> check_scheme("normal:1e200")
    Traceback (most recent call last):
    ...
    archcalc.errors.ArchcalcError: normal:STD needs a number between 1e-100 and 1e+100. Received: normal:1e200
    """
    if scheme in SCHEMES:
        return scheme
    if not scheme.startswith("normal:"):
        raise ArchcalcError(
            f"expected one of {', '.join(SCHEMES)} or normal:STD. Received: {scheme}"
        )
    low, high = NORMAL_STD_RANGE
    try:
        std = float(scheme.split(":", 1)[1])
    except ValueError:
        std = math.nan
    if not low <= std <= high:  # also false for nan
        raise ArchcalcError(
            f"normal:STD needs a number between {low:g} and {high:g}. Received: {scheme}"
        )
    return scheme


def scheme_variance(scheme: str, fan: Fans, act: activations.Activation) -> Any:
    """Var[w] of a named scheme: kaiming 2/((1+a²)·fan_in), kaiming_out 2/((1+a²)·fan_out)
    (He et al.'s backward rule G1·fan_out·Var[w] = 1), xavier 2/(fan_in+fan_out), ..."""
    if scheme in ("kaiming", "kaiming_out"):  # the forward rule, or the backward one
        gain2 = act.torch_gain**2 if act.name == "leaky_relu" and act.torch_gain else 2
        return gain2 / (fan.fan_in if scheme == "kaiming" else fan.fan_out)
    if scheme == "xavier":
        return 2 / (fan.fan_in + fan.fan_out)
    if scheme == "lecun":
        return 1 / fan.fan_in
    if scheme == "torch_default":
        return 1 / (3 * fan.torch_fan_in)  # kaiming_uniform_(a=sqrt(5)): bound 1/sqrt(fan_in)
    return float(check_scheme(scheme).split(":", 1)[1]) ** 2


def weight_variance(rec: Recommendation, scheme: str) -> Any:
    """Var[w] of ``rec``'s layer under ``scheme`` ("recommended": the recommendation's)."""
    if scheme == "recommended":
        return rec.variance
    return scheme_variance(scheme, rec.fans, activations.get(rec.activation, rec.negative_slope))


def variance_factor(rec: Recommendation, scheme: str = "recommended") -> Any:
    """The course's per-layer factor ``G0·fan_in·Var[w]`` under ``scheme`` (exact, symbolic).

    1 keeps the variance from layer to layer; symbolic fans give a formula.
    """
    import sympy

    return sympy.nsimplify(rec.g0) * rec.fans.forward * weight_variance(rec, scheme)


_REASONS = {
    "kaiming": "{name} zeroes about half its inputs' variance: Kaiming/He keeps n_in·Var[w]·G0 = 1",
    "xavier": "{name} is close to linear around 0: Xavier/Glorot balances the forward and backward variance",
    "lecun": "SELU is self-normalising with Var[w] = 1/n_in (LeCun normal)",
}


def recommend(analysis: Analysis) -> list[Recommendation]:
    """A recommendation for every weighted layer, in execution order."""
    followers = activation_after(analysis)
    found = []
    weighted = [index for index, row in enumerate(analysis.rows) if is_weighted(row)]
    for index, row in enumerate(analysis.rows):
        if not is_weighted(row):
            continue
        act_row = followers.get(index)
        if act_row is None:
            act, slope = activations.get("identity"), None
        else:
            act = activations.for_row(act_row.type, act_row.hyper)
            slope = act_row.hyper.get("init") if act_row.type == "prelu" else (
                act_row.hyper.get("negative_slope"))  # fmt: skip
        name = act.name
        fan = fans(row)
        scheme = act.recommended
        reason = _REASONS[scheme].format(name=name if act_row else "identity (no activation)")
        if act_row is None:
            what = ("the output layer is linear" if index == weighted[-1]
                    else "a layer with no activation after it is linear")  # fmt: skip
            reason = f"{what}: Xavier/Glorot balances the forward and backward variance"
        if scheme == "kaiming" and name not in ("relu", "leaky_relu"):
            kept = activations.moments(name, 0.0, 1.0, slope)[1]
            reason = (f"{name} is ReLU-like (at unit variance it keeps {kept:.2f} of it, ReLU "
                      "0.50): Kaiming/He's Var[w] = 2/n_in, the ReLU rule")  # fmt: skip
        if scheme == "xavier" and _overstated(fan):
            # Xavier's n_out counts the kernel's taps, (C_out/g)·Πk; a stride leaves each input
            # in fewer windows (ViT's 16x16/16 patches: in one, 768 outputs, not 196,608), so
            # the average of the two shrinks the forward variance (128-fold there)
            scheme = "lecun"
            reason = (f"a strided layer: Xavier's n_out, the kernel's {number(fan.fan_out)} "
                      f"taps, overstates the {number(fan.backward)} outputs each input reaches "
                      "and would shrink the signal; LeCun's Var[w] = 1/n_in keeps it")  # fmt: skip
        variance = scheme_variance(scheme, fan, act)
        found.append(
            Recommendation(row, fan, name, slope, act.g0, act.g1, act.torch_gain, scheme,
                           variance, reason)
        )  # fmt: skip
    return found


def _overstated(fan: Fans) -> bool:
    """Xavier's n_out, the kernel's taps, is more than the outputs each input reaches: a
    strided convolution (not a transposed one, whose inputs reach every tap); numbers only."""
    out, reach = fan.fan_out, fan.backward
    return isinstance(out, int) and isinstance(reach, (int, float)) and reach < out


def activation_after(analysis: Analysis) -> dict[int, Row]:
    """Row index of each weighted layer -> the activation row that follows it (if any).

    Follows the layer's output through the nodes that read it, in order: through
    normalisation, dropout, pooling, flatten and the sums and concatenations of the
    graph (the end of a residual body meets the residual's activation); the first
    activation met is the one; another weighted layer or any other node means no
    activation (identity).
    """
    graph = analysis.graph
    nodes, readers = graph.nodes, graph.consumers()
    found: dict[int, Row] = {}

    def follow(i: int, seen: set[int]) -> int | None:
        for j in readers[i]:
            if j in seen:
                continue
            seen.add(j)
            kind = nodes[j].type
            if kind in ACTIVATIONS or kind == "prelu":
                return j
            if kind in TRANSPARENT:
                hit = follow(j, seen)
                if hit is not None:
                    return hit
        return None

    for index, row in enumerate(analysis.rows):
        if is_weighted(row):
            j = follow(row.node, set())
            act = analysis.row_of(j) if j is not None else None
            if act is not None:
                found[index] = act
    return found


# ----------------------------------------------------------------------------- code to apply it


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else to_text(value)


def torch_code(rec: Recommendation) -> str:
    """The torch.nn.init call that applies the recommendation to ``layer``."""
    bias = "; torch.nn.init.zeros_(layer.bias)" if rec.row.hyper.get("bias") else ""
    fan = rec.fans
    if rec.scheme == "kaiming" and fan.torch_fan_in == fan.fan_in:
        slope = f", a={rec.negative_slope or 0.01}" if rec.activation == "leaky_relu" else ""
        nonlinearity = "leaky_relu" if rec.activation == "leaky_relu" else "relu"
        call = f'torch.nn.init.kaiming_normal_(layer.weight{slope}, mode="fan_in", nonlinearity="{nonlinearity}")'
    elif rec.scheme == "xavier" and (fan.torch_fan_in, fan.torch_fan_out) == (
        fan.fan_in,
        fan.fan_out,
    ):
        call = "torch.nn.init.xavier_uniform_(layer.weight)"
    elif rec.scheme == "xavier":  # PyTorch's fans differ: give the bound explicitly
        call = f"torch.nn.init.uniform_(layer.weight, -{_fmt(rec.bound)}, {_fmt(rec.bound)})"
    else:
        call = f"torch.nn.init.normal_(layer.weight, std={_fmt(rec.std)})"
    return call + bias


def keras_code(rec: Recommendation) -> str:
    """The equivalent ``keras.initializers.VarianceScaling`` (Keras computes fans like PyTorch)."""
    if rec.scheme == "kaiming":
        scale, mode, dist = 2.0, "fan_in", "untruncated_normal"
        if rec.activation == "leaky_relu" and rec.torch_gain:
            scale = rec.torch_gain**2
    elif rec.scheme == "xavier":
        scale, mode, dist = 1.0, "fan_avg", "uniform"
    else:
        scale, mode, dist = 1.0, "fan_in", "untruncated_normal"
    return f'keras.initializers.VarianceScaling(scale={scale:.6g}, mode="{mode}", distribution="{dist}")'
