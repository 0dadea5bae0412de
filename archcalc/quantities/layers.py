"""Layer arithmetic: every layer type answers the same few questions.

A :class:`Rule` per layer family answers, from the layer's resolved
hyperparameters ``h`` (ints or sympy values, one per spatial dimension where
it applies) and the input shape: the output shape, the fan-in and fan-out of
weighted layers, the parameter count and the MACs. The quantities derived
from those (weights per neuron, neurons, connections) are computed once, in
:func:`answer`. All arithmetic goes through :mod:`archcalc.quantities.formulas`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archcalc.errors import ArchcalcError, SpecWarning
from archcalc.language.expr import (
    Value,
    at_least,
    condition_text,
    equal,
    floor_div,
    is_symbolic,
    product,
    to_text,
)
from archcalc.quantities import formulas as f

Shape = tuple  # of Values, channels first, no batch
_SHAPE_NAMES = {1: "[F]", 2: "[C, L]", 3: "[C, H, W]", 4: "[C, D, H, W]"}
_DIM_WORDS = {1: ("position",), 2: ("row", "column"), 3: ("slice", "row", "column")}


def shape_text(shape: Shape) -> str:
    """``[16, 20, 20]``, with symbolic entries as expressions."""
    return "[" + ", ".join(to_text(v) for v in shape) + "]"


class Note:
    """Collects warnings and assumptions for one layer, and makes its errors."""

    __slots__ = ("path", "warnings", "assumptions")

    def __init__(self, path: str, warnings: list, assumptions: list):
        self.path, self.warnings, self.assumptions = path, warnings, assumptions

    def error(self, message, field: str | None = None) -> ArchcalcError:
        """The error for this layer; ``message`` may be a callable, built only when needed."""
        text = message() if callable(message) else message
        return ArchcalcError(text, path=f"{self.path}.{field}" if field else self.path)

    def warn(self, message: str) -> None:
        self.warnings.append(SpecWarning(self.path, message))

    def assume(self, condition: str) -> None:
        if (self.path, condition) not in self.assumptions:
            self.assumptions.append((self.path, condition))

    def at_least(self, value: Value, bound: Value, message, field: str | None = None) -> None:
        """Require ``value >= bound``: an error if surely not, an assumption if unknown."""
        verdict = at_least(value, bound)
        if verdict is None:
            self.assume(condition_text(value, ">=", bound))
        elif not verdict:
            raise self.error(message, field)

    def same(self, a: Value, b: Value, message, field: str | None = None) -> None:
        """Require ``a == b``: an error if surely not, an assumption if unknown."""
        verdict = equal(a, b)
        if verdict is None:
            self.assume(f"{to_text(a)} == {to_text(b)}")
        elif not verdict:
            raise self.error(message, field)

    def divides(self, g: Value, n: Value, message, field: str | None = None) -> None:
        """Require ``g`` to divide ``n``."""
        if isinstance(g, int) and isinstance(n, int):
            if n % g:
                raise self.error(message, field)
        elif equal(n % g, 0) is not True:
            self.assume(f"{to_text(n)} divisible by {to_text(g)}")


def per_dim(h: dict, name: str, dims: int, layer_type: str, note: Note) -> tuple:
    """A size field as one value per spatial dimension (an int applies to all)."""
    value = h[name]
    if not isinstance(value, tuple):
        return (value,) * dims
    if len(value) != dims:
        raise note.error(
            f"expected 1 or {dims} values for {layer_type}. Received: {name}={list(value)}", name
        )
    return value


def require_rank(inp: Shape, rank: int | tuple, layer_type: str, note: Note) -> None:
    ranks = rank if isinstance(rank, tuple) else (rank,)
    if len(inp) not in ranks:
        wanted = " or ".join(_SHAPE_NAMES[r] for r in ranks)
        hint = " (add {type: flatten} before it)" if layer_type == "linear" else ""
        raise note.error(
            f"{layer_type} needs an input of shape {wanted}{hint}. Received: input {shape_text(inp)}"
        )


def check_window(inp: Shape, k, p, d, note: Note) -> None:
    """The (dilated) window must fit in the padded input: ``n + 2p >= d(k-1) + 1``."""
    for n, ki, pi, di in zip(inp[1:], k, p, d):
        note.at_least(
            n + 2 * pi, di * (ki - 1) + 1,
            lambda n=n, ki=ki, pi=pi, di=di: f"output size < 1: the window ({to_text(di * (ki - 1) + 1)}) "
            f"is larger than the padded input ({to_text(n + 2 * pi)}) of {shape_text(inp)}",
        )  # fmt: skip


def check_output(out: Shape, inp: Shape, note: Note) -> None:
    for size in out[1:]:
        note.at_least(
            size,
            1,
            lambda size=size: f"output size {to_text(size)} < 1 for input {shape_text(inp)}",
        )


def warn_uncovered(layer_type: str, n, k, s, p, d, note: Note) -> None:
    """Warn when the stride leaves the last rows/columns of the padded input unused.

    AlexNet conv1 at 224 with P = 2: "(224 + 4 - 11)/4 = 54.25: the last row
    and column of the padded input are never covered".
    """
    words = _DIM_WORDS.get(len(n), ("position",) * len(n))
    lost: dict[tuple, list[str]] = {}
    for word, ni, ki, si, pi, di in zip(words, n, k, s, p, d):
        if any(is_symbolic(v) for v in (ni, ki, si, pi, di)):
            continue
        left = f.uncovered_input(ni, ki, si, pi, di)
        if left:
            window = di * (ki - 1) + 1
            span = f"{ni} + {2 * pi} - {window}" if pi else f"{ni} - {window}"
            quotient = f"{(ni + 2 * pi - window) / si:.4g}"
            lost.setdefault((span, si, quotient, left, max(left - pi, 0)), []).append(word)
    for (span, stride, quotient, left, real), dim_words in lost.items():
        things = " and ".join(dim_words) + ("s" if left > 1 else "")
        count = "" if left == 1 else f"{left} "
        verb = "are" if len(dim_words) > 1 or left > 1 else "is"
        effect = (f"{real} of them input, not padding" if real
                  else "only padding, no input value is lost")  # fmt: skip
        note.warn(
            f"({span})/{stride} = {quotient}: the last {count}{things} of the padded input "
            f"{verb} never covered ({effect})"
        )


# ----------------------------------------------------------------------------- rules


class Rule:
    """The questions every layer type answers. Defaults: shape-preserving, no weights."""

    rank: int | tuple | None = None  # accepted input ranks (None: any)

    def prepare(self, h: dict, inp: Shape, note: Note) -> None:
        """Check the input and normalise ``h`` (per-dimension tuples, defaults)."""
        if self.rank is not None:
            require_rank(inp, self.rank, h["type"], note)

    def output_shape(self, h: dict, inp: Shape, note: Note) -> Shape:
        return inp

    def fan_in(self, h: dict, inp: Shape) -> Value | None:
        """Inputs feeding one output unit; None for layers without weights."""
        return None

    def fan_out(self, h: dict, inp: Shape) -> Value | None:
        return None

    def per_neuron(self, h: dict, fan_in: Value) -> Value | None:
        return f.weights_per_neuron(fan_in, h["bias"])

    def params(self, h: dict, inp: Shape, out: Shape, per_neuron: Value | None) -> Value:
        return 0

    def macs(self, h: dict, inp: Shape, out: Shape, neurons: Value, fan_in: Value) -> Value:
        return f.macs(neurons, fan_in)

    def connections(self, h: dict, neurons: Value, per_neuron: Value, mac_count: Value) -> Value:
        return f.connections(neurons, per_neuron)


class ConvRule(Rule):
    def __init__(self, dims: int):
        self.dims, self.rank = dims, dims + 1

    def prepare(self, h, inp, note):
        super().prepare(h, inp, note)
        kind, dims = h["type"], self.dims
        for name in ("kernel_size", "stride", "dilation"):
            h[name] = per_dim(h, name, dims, kind, note)
        if h["padding"] == "same":
            if any(s != 1 for s in h["stride"]):
                raise note.error(
                    "padding='same' is not supported for strided convolutions (as in PyTorch). "
                    f"Received: stride={list(h['stride'])}", "padding",
                )  # fmt: skip
            # PyTorch pads d(k-1) in total, the odd one on the right; the output keeps its size.
            h["padding"] = tuple(
                floor_div(d * (k - 1), 2) for k, d in zip(h["kernel_size"], h["dilation"])
            )
            h["same"] = True
        else:
            h["padding"] = (
                (0,) * dims if h["padding"] == "valid" else per_dim(h, "padding", dims, kind, note)
            )
        channels, groups = inp[0], h["groups"]
        if h.get("in_channels") is not None:
            declared = h["in_channels"]
            note.same(
                declared, channels,
                lambda: f"in_channels={to_text(declared)} but the input has {to_text(channels)} "
                f"channels ({shape_text(inp)})", "in_channels",
            )  # fmt: skip
        h["in_channels"] = channels
        if h.get("connection_table") is not None:
            self._check_table(h, channels, note)
        out = h["out_channels"]
        note.divides(groups, channels, lambda: f"in_channels={to_text(channels)} must be divisible by "
                     f"groups={to_text(groups)}", "groups")  # fmt: skip
        note.divides(groups, out, lambda: f"out_channels={to_text(out)} must be divisible by "
                     f"groups={to_text(groups)}", "groups")  # fmt: skip

    def output_shape(self, h, inp, note):
        if h.get("same"):
            return (h["out_channels"], *inp[1:])
        k, s, p, d = h["kernel_size"], h["stride"], h["padding"], h["dilation"]
        check_window(inp, k, p, d, note)
        out = (h["out_channels"], *map(f.conv_output_size, inp[1:], k, s, p, d))
        warn_uncovered(h["type"], inp[1:], k, s, p, d, note)
        for ki, pi, di in zip(k, p, d):
            if not is_symbolic(pi) and not is_symbolic(ki) and pi > (di * (ki - 1) + 1) // 2:
                note.warn(f"padding={pi} is more than half the kernel ({ki}): the outermost "
                          "outputs see mostly padding")  # fmt: skip
                break
        return out

    def fan_in(self, h, inp):
        if h.get("table"):  # the average over output maps; the sums below are exact
            return _div(f.table_taps(h["table"], h["kernel_size"]), len(h["table"]))
        return f.conv_fan_in(inp[0], h["groups"], h["kernel_size"])

    def fan_out(self, h, inp):
        if h.get("table"):
            return _div(f.table_taps(h["table"], h["kernel_size"]), inp[0])
        return f.conv_fan_out(h["out_channels"], h["groups"], h["kernel_size"])

    def per_neuron(self, h, fan_in):
        table = h.get("table")
        if table and len({len(maps) for maps in table}) > 1:
            return None  # output maps see different numbers of input maps
        return super().per_neuron(h, fan_in)

    def params(self, h, inp, out, per_neuron):
        if h.get("table"):
            return f.table_parameters(h["table"], h["kernel_size"], h["bias"])
        return f.shared_parameters(h["out_channels"], per_neuron)

    def macs(self, h, inp, out, neurons, fan_in):
        if h.get("table"):
            return f.macs(product(out[1:]), f.table_taps(h["table"], h["kernel_size"]))
        return super().macs(h, inp, out, neurons, fan_in)

    def connections(self, h, neurons, per_neuron, mac_count):
        if h.get("table"):
            return mac_count + neurons if h["bias"] else mac_count
        return super().connections(h, neurons, per_neuron, mac_count)

    @staticmethod
    def _check_table(h, channels, note):
        table = h["connection_table"]
        if h["groups"] != 1:
            raise note.error("a connection_table replaces groups; use groups = 1", "groups")
        if is_symbolic(h["out_channels"]) or is_symbolic(channels):
            raise note.error("a connection_table needs numeric channel counts", "connection_table")
        if len(table) != h["out_channels"]:
            raise note.error(f"expected one entry per output map ({h['out_channels']}). "
                             f"Received: {len(table)} entries", "connection_table")  # fmt: skip
        for j, maps in enumerate(table):
            if not maps or len(set(maps)) != len(maps) or max(maps) >= channels:
                raise note.error(f"entry {j} must list distinct input maps in 0..{channels - 1}. "
                                 f"Received: {maps}", "connection_table")  # fmt: skip
        h["table"] = tuple(tuple(maps) for maps in table)


def _div(a, b):
    return a // b if isinstance(a, int) and isinstance(b, int) and a % b == 0 else a / b


class ConvTransposeRule(ConvRule):
    """Transposed convolution: MACs count every input unit times its filter taps."""

    def prepare(self, h, inp, note):
        for name in ("output_padding",):
            h[name] = per_dim(h, name, self.dims, h["type"], note)
        super().prepare(h, inp, note)
        for op, s, d in zip(h["output_padding"], h["stride"], h["dilation"]):
            if not any(map(is_symbolic, (op, s, d))) and op >= max(s, d):
                raise note.error(
                    "output_padding must be smaller than either stride or dilation (as in "
                    f"PyTorch). Received: output_padding={op}, stride={s}, dilation={d}",
                    "output_padding",
                )

    def output_shape(self, h, inp, note):
        sizes = tuple(
            map(f.conv_transpose_output_size, inp[1:], h["kernel_size"], h["stride"],
                h["padding"], h["output_padding"], h["dilation"])
        )  # fmt: skip
        out = (h["out_channels"], *sizes)
        check_output(out, inp, note)
        return out

    def per_neuron(self, h, fan_in):
        return None  # varies with the position of the output unit

    def params(self, h, inp, out, per_neuron):
        return f.conv_transpose_parameters(
            inp[0], h["out_channels"], h["groups"], h["kernel_size"], h["bias"]
        )

    def macs(self, h, inp, out, neurons, fan_in):
        # Each input unit is multiplied by (C_out/g)·Πk weights (as torch's flop counter).
        return f.macs(product(inp), self.fan_out(h, inp))

    def connections(self, h, neurons, per_neuron, mac_count):
        return mac_count + neurons if h["bias"] else mac_count


class LinearRule(Rule):
    rank = 1

    def prepare(self, h, inp, note):
        super().prepare(h, inp, note)
        if h.get("in_features") is not None:
            declared = h["in_features"]
            note.same(
                declared, inp[0],
                lambda: f"in_features={to_text(declared)} but the input has {to_text(inp[0])} features",
                "in_features",
            )  # fmt: skip

    def output_shape(self, h, inp, note):
        return (h["out_features"],)

    def fan_in(self, h, inp):
        return inp[0]

    def fan_out(self, h, inp):
        return h["out_features"]

    def params(self, h, inp, out, per_neuron):
        return f.shared_parameters(h["out_features"], per_neuron)


class PoolRule(Rule):
    def __init__(self, dims: int):
        self.dims, self.rank = dims, dims + 1

    def prepare(self, h, inp, note):
        super().prepare(h, inp, note)
        kind = h["type"]
        h["kernel_size"] = per_dim(h, "kernel_size", self.dims, kind, note)
        h["stride"] = (
            h["kernel_size"]
            if h.get("stride") is None
            else per_dim(h, "stride", self.dims, kind, note)
        )
        h["padding"] = per_dim(h, "padding", self.dims, kind, note)
        h["dilation"] = (
            per_dim(h, "dilation", self.dims, kind, note) if "dilation" in h else (1,) * self.dims
        )
        for k, p in zip(h["kernel_size"], h["padding"]):
            if not is_symbolic(k) and not is_symbolic(p) and p > k // 2:
                raise note.error(
                    "padding must be at most half the kernel size (as in PyTorch). "
                    f"Received: padding={p}, kernel_size={k}", "padding",
                )  # fmt: skip

    def output_shape(self, h, inp, note):
        k, s, p, d = h["kernel_size"], h["stride"], h["padding"], h["dilation"]
        ceil = h["ceil_mode"]
        if ceil:  # a window may hang off the padded input; only the output size must be >= 1
            sizes = tuple(
                f.pool_output_size(n, *args, ceil) for n, *args in zip(inp[1:], k, s, p, d)
            )
            out = (inp[0], *sizes)
            check_output(out, inp, note)
        else:
            check_window(inp, k, p, d, note)
            sizes = tuple(
                f.pool_output_size(n, *args, ceil) for n, *args in zip(inp[1:], k, s, p, d)
            )
            out = (inp[0], *sizes)
        if not ceil:
            warn_uncovered(h["type"], inp[1:], k, s, p, d, note)
        return out

    def macs(self, h, inp, out, neurons, fan_in):
        return 0


class SubsampleRule(Rule):
    """Window sum × a trainable coefficient + a trainable bias, per map (LeNet-5's S2, S4)."""

    rank = 3

    def prepare(self, h, inp, note):
        super().prepare(h, inp, note)
        h["kernel_size"] = per_dim(h, "kernel_size", 2, "subsample", note)
        h["stride"] = (
            h["kernel_size"]
            if h.get("stride") is None
            else per_dim(h, "stride", 2, "subsample", note)
        )
        h["padding"], h["dilation"], h["bias"] = (0, 0), (1, 1), True

    def output_shape(self, h, inp, note):
        k, s = h["kernel_size"], h["stride"]
        check_window(inp, k, (0, 0), (1, 1), note)
        warn_uncovered("subsample", inp[1:], k, s, (0, 0), (1, 1), note)
        return (inp[0], *(f.pool_output_size(n, ki, si) for n, ki, si in zip(inp[1:], k, s)))

    def fan_in(self, h, inp):
        return product(h["kernel_size"])  # each unit's inputs, all through the map's coefficient

    def fan_out(self, h, inp):
        return _div(product(h["kernel_size"]), product(h["stride"]))

    def params(self, h, inp, out, per_neuron):
        return f.subsample_parameters(inp[0])


class RBFRule(LinearRule):
    """Euclidean RBF units with fixed centres: wired like a linear layer, but nothing trains."""

    def per_neuron(self, h, fan_in):
        return fan_in  # one fixed centre coordinate per input, no bias

    def params(self, h, inp, out, per_neuron):
        return 0  # the centres are fixed, not trained


class AdaptivePoolRule(Rule):
    def __init__(self, dims: int):
        self.dims, self.rank = dims, dims + 1

    def output_shape(self, h, inp, note):
        size = per_dim(h, "output_size", self.dims, h["type"], note)
        return (inp[0], *size)


class FlattenRule(Rule):
    def output_shape(self, h, inp, note):
        return (product(inp),)


class BatchNormRule(Rule):
    def __init__(self, ranks: tuple):
        self.rank = ranks

    def prepare(self, h, inp, note):
        super().prepare(h, inp, note)
        if h.get("num_features") is not None:
            declared = h["num_features"]
            note.same(declared, inp[0], lambda: f"num_features={to_text(declared)} but "
                      f"the input has {to_text(inp[0])} channels", "num_features")  # fmt: skip

    def params(self, h, inp, out, per_neuron):
        return f.normalization_parameters(inp[0], h["affine"])


class LayerNormRule(Rule):
    def prepare(self, h, inp, note):
        shape = h.get("normalized_shape")
        if shape is None:
            h["normalized_shape"] = tuple(inp)
            return
        shape = shape if isinstance(shape, tuple) else (shape,)
        h["normalized_shape"] = shape
        trailing = inp[len(inp) - len(shape) :] if len(shape) <= len(inp) else None
        message = (f"normalized_shape={shape_text(shape)} must equal the trailing "
                   f"dimensions of the input {shape_text(inp)}")  # fmt: skip
        if trailing is None:
            raise note.error(message, "normalized_shape")
        for a, b in zip(shape, trailing):
            note.same(a, b, message, "normalized_shape")

    def params(self, h, inp, out, per_neuron):
        return f.normalization_parameters(product(h["normalized_shape"]), h["elementwise_affine"])


class LocalResponseNormRule(Rule):
    rank = (2, 3, 4)


RULES: dict[str, Rule] = {
    **{f"conv{n}d": ConvRule(n) for n in (1, 2, 3)},
    **{f"conv_transpose{n}d": ConvTransposeRule(n) for n in (1, 2, 3)},
    **{f"{kind}pool{n}d": PoolRule(n) for kind in ("max", "avg") for n in (1, 2, 3)},
    **{
        f"adaptive_{kind}pool{n}d": AdaptivePoolRule(n)
        for kind in ("avg", "max")
        for n in (1, 2, 3)
    },
    "linear": LinearRule(),
    "subsample": SubsampleRule(),
    "rbf": RBFRule(),
    "flatten": FlattenRule(),
    "batchnorm1d": BatchNormRule((1, 2)),
    "batchnorm2d": BatchNormRule((3,)),
    "batchnorm3d": BatchNormRule((4,)),
    "layernorm": LayerNormRule(),
    "local_response_norm": LocalResponseNormRule(),
}
_SHAPE_PRESERVING = Rule()


@dataclass(frozen=True, slots=True)
class Answer:
    """What one leaf layer computes to."""

    output: Shape
    weights_per_neuron: Value | None
    neurons: Value | None
    connections: Value | None
    params: Value
    macs: Value
    fan_in: Value | None
    fan_out: Value | None


def answer(h: dict[str, Any], inp: Shape, note: Note) -> Answer:
    """Ask a layer's rule every question, in order; ``h`` is normalised in place."""
    rule = RULES.get(h["type"], _SHAPE_PRESERVING)
    rule.prepare(h, inp, note)
    out = rule.output_shape(h, inp, note)
    fan_in = rule.fan_in(h, inp)
    if fan_in is None:
        params = rule.params(h, inp, out, None)
        return Answer(out, None, None, None, params, 0, None, None)
    per_neuron = rule.per_neuron(h, fan_in)
    neurons = product(out)
    mac_count = rule.macs(h, inp, out, neurons, fan_in)
    return Answer(
        output=out,
        weights_per_neuron=per_neuron,
        neurons=neurons,
        connections=rule.connections(h, neurons, per_neuron, mac_count),
        params=rule.params(h, inp, out, per_neuron),
        macs=mac_count,
        fan_in=fan_in,
        fan_out=rule.fan_out(h, inp),
    )
