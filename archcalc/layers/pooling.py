"""Rules of pooling, normalisation and parametric activations (no MACs)."""

from __future__ import annotations

from archcalc.language.expr import is_symbolic, product, to_text
from archcalc.layers import formulas as f
from archcalc.layers.rules import (
    Rule,
    check_output,
    check_window,
    per_dim,
    shape_text,
    warn_uncovered,
)


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
        h["padding"] = h["padding_end"] = per_dim(h, "padding", self.dims, kind, note)
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
        if not ceil:  # with ceil_mode a window may hang off the padded input
            check_window(inp, k, p, d, note)
        sizes = tuple(f.pool_output_size(n, *args, ceil) for n, *args in zip(inp[1:], k, s, p, d))
        out = (inp[0], *sizes)
        if ceil:
            check_output(out, inp, note)
        else:
            warn_uncovered(h["type"], inp[1:], k, s, p, d, note)
        return out


class AdaptivePoolRule(Rule):
    def __init__(self, dims: int):
        self.dims, self.rank = dims, dims + 1

    def output_shape(self, h, inp, note):
        size = per_dim(h, "output_size", self.dims, h["type"], note)
        return (inp[0], *size)


def _check_channels(h, inp, note, field: str) -> None:
    if h.get(field) is not None:
        declared = h[field]
        note.declared(declared, inp[0], lambda: f"{field}={to_text(declared)} but the input has "
                  f"{to_text(inp[0])} channels ({shape_text(inp)})", field)  # fmt: skip


class BatchNormRule(Rule):
    """Batch and instance norm: per channel; 2 parameters per channel when affine."""

    def __init__(self, ranks: tuple):
        self.rank = ranks

    def prepare(self, h, inp, note):
        super().prepare(h, inp, note)
        _check_channels(h, inp, note, "num_features")

    def params(self, h, inp, out, per_neuron):
        return f.normalization_parameters(inp[0], h["affine"])


class GroupNormRule(Rule):
    rank = (2, 3, 4, 5)

    def prepare(self, h, inp, note):
        super().prepare(h, inp, note)
        _check_channels(h, inp, note, "num_channels")
        groups, channels = h["num_groups"], inp[0]
        note.divides(groups, channels, lambda: f"the channels ({to_text(channels)}) must be "
                     f"divisible by num_groups={to_text(groups)}", "num_groups")  # fmt: skip

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


class PReLURule(Rule):
    def prepare(self, h, inp, note):
        n = h["num_parameters"]
        if n != 1:
            note.same(n, inp[0], lambda: f"num_parameters={to_text(n)} must be 1 or the number "
                      f"of channels ({to_text(inp[0])})", "num_parameters")  # fmt: skip

    def params(self, h, inp, out, per_neuron):
        return h["num_parameters"]


RULES = {
    **{f"{kind}pool{n}d": PoolRule(n) for kind in ("max", "avg") for n in (1, 2, 3)},
    **{
        f"adaptive_{kind}pool{n}d": AdaptivePoolRule(n)
        for kind in ("avg", "max")
        for n in (1, 2, 3)
    },
    "batchnorm1d": BatchNormRule((1, 2)),
    "batchnorm2d": BatchNormRule((3,)),
    "batchnorm3d": BatchNormRule((4,)),
    "instance_norm1d": BatchNormRule((2,)),
    "instance_norm2d": BatchNormRule((3,)),
    "instance_norm3d": BatchNormRule((4,)),
    "group_norm": GroupNormRule(),
    "layernorm": LayerNormRule(),
    "local_response_norm": LocalResponseNormRule(),
    "prelu": PReLURule(),
}
