"""Rules of the layers that only move, cut, pad or combine tensors, and of learned
tensors: no weights, no MACs (but ``matmul``'s), shapes as PyTorch computes them.

Dimensions are per-sample (the batch is never counted): ``dim: 0`` is the
channels of [C, H, W], the tokens of [L, E].
"""

from __future__ import annotations

from archcalc.language.expr import exact_div, product, to_text
from archcalc.layers import formulas as f
from archcalc.layers.rules import Rule, dim_index, per_dim, shape_text
from archcalc.layers.weighted import spatial_padding


def _spatial(inp, note, kind: str, least: int = 2) -> int:
    if len(inp) < least:
        raise note.error(f"{kind} needs spatial dimensions ([C, L], [C, H, W] or [C, D, H, W]). "
                         f"Received: input {shape_text(inp)}")  # fmt: skip
    return len(inp) - 1


class FlattenRule(Rule):
    def prepare(self, h, inp, note):
        h["start_dim"] = dim_index(h.get("start_dim", 0), len(inp), note, "start_dim")
        h["end_dim"] = dim_index(h.get("end_dim", -1), len(inp), note, "end_dim")
        if h["start_dim"] > h["end_dim"]:
            raise note.error(f"start_dim must not come after end_dim. Received: start_dim="
                             f"{h['start_dim']}, end_dim={h['end_dim']}", "start_dim")  # fmt: skip

    def output_shape(self, h, inp, note):
        a, b = h["start_dim"], h["end_dim"]
        return (*inp[:a], product(inp[a : b + 1]), *inp[b + 1 :])


class ReshapeRule(Rule):
    def output_shape(self, h, inp, note):
        shape = list(h["shape"])
        unknown = [i for i, v in enumerate(shape) if isinstance(v, int) and v == -1]
        if len(unknown) > 1:
            raise note.error(
                f"only one entry may be -1. Received: shape={shape_text(shape)}", "shape"
            )
        for v in shape:
            if isinstance(v, int) and v < -1 or v == 0:
                raise note.error(
                    f"sizes must be >= 1 (or one -1). Received: shape={shape_text(shape)}", "shape"
                )
        total = product(inp)
        if unknown:
            known = product(v for i, v in enumerate(shape) if i != unknown[0])
            note.divides(known, total, lambda: f"cannot reshape {shape_text(inp)} "
                         f"({to_text(total)} elements) to {shape}", "shape")  # fmt: skip
            shape[unknown[0]] = exact_div(total, known)
        note.same(product(shape), total, lambda: f"cannot reshape {shape_text(inp)} "
                  f"({to_text(total)} elements) to {shape_text(shape)}", "shape")  # fmt: skip
        return tuple(shape)


class PermuteRule(Rule):
    def prepare(self, h, inp, note):
        dims = [dim_index(d, len(inp), note, "dims") for d in h["dims"]]
        if sorted(dims) != list(range(len(inp))):
            raise note.error(f"dims must be a permutation of 0..{len(inp) - 1} for "
                             f"{shape_text(inp)}. Received: dims={h['dims']}", "dims")  # fmt: skip
        h["dims"] = tuple(dims)

    def output_shape(self, h, inp, note):
        return tuple(inp[d] for d in h["dims"])


class TransposeRule(Rule):
    def prepare(self, h, inp, note):
        h["dim0"] = dim_index(h["dim0"], len(inp), note, "dim0")
        h["dim1"] = dim_index(h["dim1"], len(inp), note, "dim1")

    def output_shape(self, h, inp, note):
        out = list(inp)
        out[h["dim0"]], out[h["dim1"]] = inp[h["dim1"]], inp[h["dim0"]]
        return tuple(out)


class UnsqueezeRule(Rule):
    def prepare(self, h, inp, note):
        h["dim"] = dim_index(h["dim"], len(inp), note, "dim", extra=1)

    def output_shape(self, h, inp, note):
        return (*inp[: h["dim"]], 1, *inp[h["dim"] :])


class NarrowRule(Rule):
    def prepare(self, h, inp, note):
        h["dim"] = dim_index(h["dim"], len(inp), note, "dim")
        size, start, length = inp[h["dim"]], h["start"], h["length"]
        note.at_least(size, start + length, lambda: f"narrow past the end: start + length = "
                      f"{to_text(start + length)} but dimension {h['dim']} has {to_text(size)}",
                      "length")  # fmt: skip

    def output_shape(self, h, inp, note):
        out = list(inp)
        out[h["dim"]] = h["length"]
        return tuple(out)


class ChannelShuffleRule(Rule):
    def prepare(self, h, inp, note):
        _spatial(inp, note, "channel_shuffle")
        groups = h["groups"]
        note.divides(groups, inp[0], lambda: f"the channels ({to_text(inp[0])}) must be divisible "
                     f"by groups={to_text(groups)}", "groups")  # fmt: skip


_MODE_RANK = {"linear": 2, "bilinear": 3, "bicubic": 3, "trilinear": 4}


class UpsampleRule(Rule):
    def prepare(self, h, inp, note):
        dims = _spatial(inp, note, "upsample")
        if dims > 3:
            raise note.error(
                f"upsample takes 1 to 3 spatial dimensions. Received: {shape_text(inp)}"
            )
        wanted = _MODE_RANK.get(h["mode"])
        if wanted is not None and len(inp) != wanted:
            raise note.error(f"mode={h['mode']} needs a {wanted - 1}-d input ([C, ...] with "
                             f"{wanted - 1} spatial dimensions). Received: {shape_text(inp)}",
                             "mode")  # fmt: skip
        if h["align_corners"] is not None and wanted is None:
            raise note.error("align_corners applies to the linear modes only (as in PyTorch)",
                             "align_corners")  # fmt: skip
        for name in ("size", "scale_factor"):
            if h.get(name) is not None:
                h[name] = per_dim(h, name, dims, "upsample", note)

    def output_shape(self, h, inp, note):
        if h.get("size") is not None:
            return (inp[0], *h["size"])
        return (inp[0], *(n * s for n, s in zip(inp[1:], h["scale_factor"])))


class PixelShuffleRule(Rule):
    """[..., C·r², H, W] -> [..., C, H·r, W·r] on the last three dimensions, as PyTorch."""

    def prepare(self, h, inp, note):
        if len(inp) < 3:
            raise note.error(f"pixel_shuffle needs [C, H, W]. Received: {shape_text(inp)}")
        r, c = h["upscale_factor"], inp[-3]
        note.divides(r * r, c, lambda: f"the channels ({to_text(c)}) must be divisible "
                     f"by upscale_factor² = {to_text(r * r)}", "upscale_factor")  # fmt: skip

    def output_shape(self, h, inp, note):
        r = h["upscale_factor"]
        return (*inp[:-3], exact_div(inp[-3], r * r), inp[-2] * r, inp[-1] * r)


class ZeroPadRule(Rule):
    def prepare(self, h, inp, note):
        dims = _spatial(inp, note, "zero_pad")
        if isinstance(h["padding"], str):
            raise note.error(f"zero_pad takes numbers or [before, after] pairs. Received: "
                             f"padding={h['padding']!r}", "padding")  # fmt: skip
        spatial_padding(h, dims, note)

    def output_shape(self, h, inp, note):
        sizes = (n + a + b for n, a, b in zip(inp[1:], h["padding"], h["padding_end"]))
        return (inp[0], *sizes)


class CenterCropRule(Rule):
    def prepare(self, h, inp, note):
        dims = _spatial(inp, note, "center_crop")
        h["size"] = per_dim(h, "size", dims, "center_crop", note)
        for n, size in zip(inp[1:], h["size"]):
            note.at_least(n, size, lambda n=n, size=size: f"center_crop to {to_text(size)} but "
                          f"the input {shape_text(inp)} is smaller", "size")  # fmt: skip
        h["offsets"] = tuple(f.crop_offset(n, size) for n, size in zip(inp[1:], h["size"]))

    def output_shape(self, h, inp, note):
        return (inp[0], *h["size"])


class MeanRule(Rule):
    def prepare(self, h, inp, note):
        dims = sorted({dim_index(d, len(inp), note, "dims") for d in h["dims"]})
        h["dims"] = tuple(dims)
        if len(dims) == len(inp) and not h["keepdim"]:
            raise note.error(
                f"mean over every dimension of {shape_text(inp)} leaves a scalar per sample, "
                "which later layers would read across the batch; use keepdim: true", "dims",
            )  # fmt: skip

    def output_shape(self, h, inp, note):
        if h["keepdim"]:
            return tuple(1 if i in h["dims"] else n for i, n in enumerate(inp))
        return tuple(n for i, n in enumerate(inp) if i not in h["dims"])


class ParameterRule(Rule):
    """A learned tensor: reads nothing, ``params = Π shape``."""

    source = True

    def output_shape(self, h, inp, note):
        return tuple(h["shape"])

    def params(self, h, inp, out, per_neuron):
        return product(out)


def wide_sizes(sizes) -> list:
    """The sizes of one broadcast dimension that are not a literal 1 (what must agree).

    >>> wide_sizes((1, 4, 4))
    [4, 4]
    """
    return [n for n in sizes if not (isinstance(n, int) and n == 1)]


def broadcast(shapes: tuple, note, kind: str) -> tuple:
    """PyTorch broadcasting of per-sample shapes of one rank: each size equal, or 1."""
    first = shapes[0]

    def message() -> str:
        return (f"{kind} needs shapes that broadcast (each size equal, or 1). Received: "
                f"{', '.join(shape_text(s) for s in shapes)}")  # fmt: skip

    if any(len(s) != len(first) for s in shapes):
        raise note.error(
            message() + " (ranks differ: the batch dimension is shared, so give every input "
            "the same rank, e.g. with unsqueeze or reshape)"
        )
    out = []
    for sizes in zip(*shapes):
        wide = wide_sizes(sizes)
        if not wide:
            out.append(1)
            continue
        for n in wide[1:]:
            note.same(n, wide[0], message)
        out.append(wide[0])
    return tuple(out)


class ElementwiseRule(Rule):
    """``add`` and ``mul``: element-wise with broadcasting; no MACs (a product of two tensors
    is no multiply-accumulate of weights, as in torchvision's published figures)."""

    merge = True

    def output_shape(self, h, inp, note):
        return broadcast(inp, note, h["type"])


class ConcatRule(Rule):
    merge = True

    def prepare(self, h, inp, note):
        rank = len(inp[0])
        h["dim"] = dim_index(h.get("dim", 0), rank, note, "dim")

    def output_shape(self, h, inp, note):
        dim, first = h["dim"], inp[0]

        def message() -> str:
            return (f"concat needs equal sizes in every dimension but {dim}. Received: "
                    f"{', '.join(shape_text(s) for s in inp)}")  # fmt: skip

        for shape in inp[1:]:
            if len(shape) != len(first):
                raise note.error(message)
            for i, (a, b) in enumerate(zip(shape, first)):
                if i != dim:
                    note.same(a, b, message)
        from archcalc.language.expr import simplify

        return (*first[:dim], simplify(sum(s[dim] for s in inp)), *first[dim + 1 :])


class MatMulRule(Rule):
    """torch.matmul of per-sample matrices [..., n, k] @ [..., k, m]: MACs ``Π(...)·n·k·m``."""

    merge = True

    def output_shape(self, h, inp, note):
        a, b = inp
        if len(a) < 2 or len(b) < 2:
            raise note.error(f"matmul needs per-sample matrices (rank >= 2). Received: "
                             f"{shape_text(a)}, {shape_text(b)}")  # fmt: skip
        note.same(a[-1], b[-2], lambda: f"matmul: {shape_text(a)} @ {shape_text(b)} needs "
                  f"{to_text(a[-1])} == {to_text(b[-2])}")  # fmt: skip
        lead = broadcast((a[:-2], b[:-2]), note, "matmul") if len(a) > 2 or len(b) > 2 else ()
        return (*lead, a[-2], b[-1])

    def macs(self, h, inp, out, neurons, fan_in):
        return f.matmul_macs(out, inp[0][-1])


RULES = {
    "flatten": FlattenRule(),
    "reshape": ReshapeRule(),
    "permute": PermuteRule(),
    "transpose": TransposeRule(),
    "unsqueeze": UnsqueezeRule(),
    "narrow": NarrowRule(),
    "channel_shuffle": ChannelShuffleRule(),
    "upsample": UpsampleRule(),
    "pixel_shuffle": PixelShuffleRule(),
    "zero_pad": ZeroPadRule(),
    "center_crop": CenterCropRule(),
    "mean": MeanRule(),
    "parameter": ParameterRule(),
    "add": ElementwiseRule(),
    "mul": ElementwiseRule(),
    "concat": ConcatRule(),
    "matmul": MatMulRule(),
}
