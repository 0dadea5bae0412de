"""Rules of the layers with weights: convolutions, linear layers, attention, LeNet's
subsampling and RBF output."""

from __future__ import annotations

from archcalc.language.expr import floor_div, is_symbolic, product, to_text
from archcalc.layers import formulas as f
from archcalc.layers.rules import (
    Rule,
    check_output,
    check_window,
    div,
    per_dim,
    require_rank,
    shape_text,
    warn_uncovered,
)


def spatial_padding(h: dict, dims: int, note, *, words: bool = True) -> None:
    """Normalise ``h["padding"]`` to per-dimension ``padding`` (before) and ``padding_end``.

    Takes an int or one per dimension (both sides), ``[before, after]`` pairs, and the
    words ``valid``, ``same`` (PyTorch: stride 1, the odd pixel after), ``same_upper``
    and ``same_lower`` (TensorFlow/ONNX SAME for any stride: output ``ceil(n/s)``).
    Needs ``kernel_size``, ``stride`` and ``dilation`` already per dimension.
    """
    value, kind = h["padding"], h["type"]
    h["padding_mode"] = value if isinstance(value, str) else None
    if value in ("same_upper", "same_lower") or value == "same":
        if value == "same" and any(s != 1 for s in h["stride"]):
            raise note.error(
                "padding='same' is not supported for strided convolutions (as in PyTorch; "
                "'same_upper' gives TensorFlow's SAME for any stride). "
                f"Received: stride={shape_text(h['stride'])}", "padding",
            )  # fmt: skip
        if value == "same":  # PyTorch pads d(k-1) in total, the odd one after
            begin = tuple(
                floor_div(d * (k - 1), 2) for k, d in zip(h["kernel_size"], h["dilation"])
            )
            end = tuple(d * (k - 1) - b for k, d, b in zip(h["kernel_size"], h["dilation"], begin))
            h["same"] = True
        else:
            # needs the input size: resolved in output_shape
            begin = end = None
    elif value == "valid":
        begin = end = (0,) * dims
    elif isinstance(value, tuple) and len(value) == 2 and value[0] == "pairs":
        pairs = value[1]
        if len(pairs) != dims:
            raise note.error(f"expected {dims} [before, after] pairs for {kind}. Received: "
                             f"{len(pairs)}", "padding")  # fmt: skip
        begin, end = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
    else:
        begin = end = per_dim(h, "padding", dims, kind, note)
    h["padding"], h["padding_end"] = begin, end


def resolve_same(h: dict, inp: tuple) -> None:
    """SAME_UPPER / SAME_LOWER padding from the input size (TensorFlow, Keras, ONNX)."""
    if h.get("padding_mode") in ("same_upper", "same_lower") and h["padding"] is None:
        lower = h["padding_mode"] == "same_lower"
        pads = [f.same_padding(n, k, s, d, lower)
                for n, k, s, d in zip(inp[1:], h["kernel_size"], h["stride"], h["dilation"])]  # fmt: skip
        h["padding"], h["padding_end"] = tuple(p[0] for p in pads), tuple(p[1] for p in pads)


class ConvRule(Rule):
    def __init__(self, dims: int):
        self.dims, self.rank = dims, dims + 1

    def prepare(self, h, inp, note):
        super().prepare(h, inp, note)
        kind, dims = h["type"], self.dims
        for name in ("kernel_size", "stride", "dilation"):
            h[name] = per_dim(h, name, dims, kind, note)
        spatial_padding(h, dims, note)
        channels, groups = inp[0], h["groups"]
        if h.get("in_channels") is not None:
            declared = h["in_channels"]
            note.declared(
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
        resolve_same(h, inp)
        k, s, p, d, pe = (
            h["kernel_size"],
            h["stride"],
            h["padding"],
            h["dilation"],
            h["padding_end"],
        )
        check_window(inp, k, p, d, note, pe)
        out = (h["out_channels"], *map(f.conv_output_size, inp[1:], k, s, p, d, pe))
        warn_uncovered(h["type"], inp[1:], k, s, p, d, note, pe)
        for ki, pi, di in zip(k, (*p, *pe), d * 2):
            if not is_symbolic(pi) and not is_symbolic(ki) and pi > (di * (ki - 1) + 1) // 2:
                note.warn(f"padding={pi} is more than half the kernel ({ki}): the outermost "
                          "outputs see mostly padding")  # fmt: skip
                break
        return out

    def fan_in(self, h, inp):
        if h.get("table"):  # the average over output maps; the sums below are exact
            return div(f.table_taps(h["table"], h["kernel_size"]), len(h["table"]))
        return f.conv_fan_in(inp[0], h["groups"], h["kernel_size"])

    def fan_out(self, h, inp):
        if h.get("table"):
            return div(f.table_taps(h["table"], h["kernel_size"]), inp[0])
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


class ConvTransposeRule(ConvRule):
    """Transposed convolution: MACs count every input unit times its filter taps."""

    def prepare(self, h, inp, note):
        h["output_padding"] = per_dim(h, "output_padding", self.dims, h["type"], note)
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
    """torch.nn.Linear on the last dimension: [F] -> [m], tokens [L, E] -> [L, m]."""

    def prepare(self, h, inp, note):
        if len(inp) > 1 and h["type"] == "linear":
            # Legal in PyTorch (it acts on the last dimension), but on a feature map straight
            # from a convolution or pooling it is almost always a missing flatten: say so.
            producer = h.get("_producer", "")
            if len(inp) >= 3 and (
                producer.startswith(("conv", "subsample", "input")) or "pool" in producer
            ):
                note.warn(
                    f"linear acts on the last dimension of {shape_text(inp)} (as torch.nn.Linear "
                    "does); to connect every input, add {type: flatten} before it"
                )
        elif len(inp) > 1:
            require_rank(inp, 1, h["type"], note)
        if h.get("in_features") is not None:
            declared = h["in_features"]
            note.declared(
                declared, inp[-1],
                lambda: f"in_features={to_text(declared)} but the input has {to_text(inp[-1])} "
                + ("features" if len(inp) == 1 else f"in its last dimension ({shape_text(inp)})")
                + (f" ({'·'.join(to_text(v) for v in h['_flattened'])})" if h.get("_flattened") else ""),
                "in_features",
            )  # fmt: skip

    def output_shape(self, h, inp, note):
        return (*inp[:-1], h["out_features"])

    def fan_in(self, h, inp):
        return inp[-1]

    def fan_out(self, h, inp):
        return h["out_features"]

    def params(self, h, inp, out, per_neuron):
        return f.shared_parameters(h["out_features"], per_neuron)


class AttentionRule(Rule):
    """Self-attention on [L, E] (torch.nn.MultiheadAttention, batch_first): params
    ``4E² + 4E`` with bias; MACs ``4·L·E²`` (projections) ``+ 2·L²·E`` (scores, weighted sum)."""

    rank = 2

    def prepare(self, h, inp, note):
        super().prepare(h, inp, note)
        length, width = inp
        if h.get("embed_dim") is not None:
            declared = h["embed_dim"]
            note.declared(declared, width, lambda: f"embed_dim={to_text(declared)} but the tokens "
                      f"have {to_text(width)} features ({shape_text(inp)})", "embed_dim")  # fmt: skip
        h["embed_dim"] = width
        heads = h["num_heads"]
        note.divides(heads, width, lambda: f"embed_dim={to_text(width)} must be divisible by "
                     f"num_heads={to_text(heads)}", "num_heads")  # fmt: skip

    def params(self, h, inp, out, per_neuron):
        return f.attention_parameters(inp[1], h["bias"])

    def macs(self, h, inp, out, neurons, fan_in):
        return f.attention_macs(inp[0], inp[1])


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
        h["padding"], h["padding_end"], h["dilation"], h["bias"] = (0, 0), (0, 0), (1, 1), True

    def output_shape(self, h, inp, note):
        k, s = h["kernel_size"], h["stride"]
        check_window(inp, k, (0, 0), (1, 1), note)
        warn_uncovered("subsample", inp[1:], k, s, (0, 0), (1, 1), note)
        return (inp[0], *(f.pool_output_size(n, ki, si) for n, ki, si in zip(inp[1:], k, s)))

    def fan_in(self, h, inp):
        return product(h["kernel_size"])  # each unit's inputs, all through the map's coefficient

    def fan_out(self, h, inp):
        return div(product(h["kernel_size"]), product(h["stride"]))

    def params(self, h, inp, out, per_neuron):
        return f.subsample_parameters(inp[0])


class RBFRule(LinearRule):
    """Euclidean RBF units with fixed centres: wired like a linear layer, but nothing trains."""

    def per_neuron(self, h, fan_in):
        return fan_in  # one fixed centre coordinate per input, no bias

    def params(self, h, inp, out, per_neuron):
        return 0  # the centres are fixed, not trained


RULES = {
    **{f"conv{n}d": ConvRule(n) for n in (1, 2, 3)},
    **{f"conv_transpose{n}d": ConvTransposeRule(n) for n in (1, 2, 3)},
    "linear": LinearRule(),
    "multihead_attention": AttentionRule(),
    "subsample": SubsampleRule(),
    "rbf": RBFRule(),
}
