"""The quiz answer with the working shown: formula, then numbers, then value.

Notation follows the course: an input J×K×L (L channels), i filters of
M×N, stride s, padding P, dilation d, groups g; a pooling window F.

    width = 1 + (K + 2P - N)/s = 1 + (224 + 4 - 11)/4 = 55 (floor of 55.25)
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from archcalc.language.expr import is_symbolic, product, to_text
from archcalc.language.printing import number
from archcalc.layers.registry import shape_text
from archcalc.layers.rules import exact_quotient
from archcalc.quantities.analysis import Analysis, Row
from archcalc.questions import explain_ops as ops

_DIM_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_IN_LETTERS = {1: ("J",), 2: ("J", "K"), 3: ("D", "J", "K")}
_K_LETTERS = {1: ("M",), 2: ("M", "N"), 3: ("T", "M", "N")}
_LABEL_WIDTH = 19


def explain(analysis: Analysis, layer: str | None = None, *, rf: bool = False) -> str:
    """Working for every row (or the one at path/name ``layer``); ``rf``: with the receptive
    field recurrence under each."""
    rows = analysis.select(layer) if layer else analysis.rows
    nodes = analysis.graph.nodes
    blocks = [_explain_row(row, nodes) for row in rows]
    if rf:
        from archcalc.quantities.receptive import receptive_fields
        from archcalc.render.fields import rf_working

        fields = receptive_fields(analysis.graph)
        blocks = ["\n".join([block, *rf_working(analysis, fields, row)])
                  for block, row in zip(blocks, rows)]  # fmt: skip
    if not layer:
        t = analysis.totals
        blocks.append(
            "\n".join([
                f"network {analysis.spec.name}: input {_shape(analysis.input)} -> output "
                f"{_shape(analysis.output)}",
                _line("parameters", "sum over layers", None, t["params"]),
                _line("neurons", "sum over weighted layers", None, t["neurons"]),
                _line("connections", "sum over weighted layers", None, t["connections"]),
                _line("MACs", "sum over weighted layers", None, t["macs"]),
                _line("FLOPs", "2 × MACs", f"2 × {number(t['macs'])}", t["flops"]),
            ])
        )  # fmt: skip
        if analysis.spec.published and not analysis.symbolic:
            blocks.append("\n".join(["published figures:"] + [
                "  " + published_text(p, t) for p in analysis.spec.published]))  # fmt: skip
    return "\n\n".join(blocks) + "\n"


#: A published figure this close to a total is that total, rounded loosely.
LOOSE = 0.02
_CONVENTIONS = (("parameters", "params"), ("neurons", "neurons"), ("connections", "connections"),
                ("MACs", "macs"), ("FLOPs", "flops"))  # fmt: skip


def significant(value: float) -> int:
    """Significant digits a figure is written with: 6.3e8 -> 2, 60965224 -> 8.

    >>> significant(6.3e8), significant(6e7), significant(650000), significant(1.5)
    (2, 1, 2, 2)
    """
    digits = f"{value:.15g}".replace(".", "").lstrip("0").split("e")[0].rstrip("0")
    return max(len(digits), 1)


def _rounded(value: float, digits: int) -> float:
    return float(f"{value:.{digits - 1}e}")


def published_text(published, totals) -> str:
    """Which of archcalc's conventions a published figure matches, to its own precision."""
    digits = published.digits or significant(published.value)
    figure = f"{published.value:,.0f}" if published.value >= 1 else f"{published.value:g}"
    head = f"{figure} {published.says}" + (f" ({published.source})" if published.source else "")
    precision = f"{digits} significant digit{'s' * (digits != 1)}"
    matches = [(label, totals[key]) for label, key in _CONVENTIONS
               if _rounded(totals[key], digits) == _rounded(published.value, digits)]  # fmt: skip
    if matches:
        found = ", ".join(f"{label} {value:,}" for label, value in matches)
        return f"{head}: matches {found} (to {precision})"
    candidates = ", ".join(f"{label} {totals[key]:,}" for label, key in _CONVENTIONS)
    label, key = min(_CONVENTIONS, key=lambda c: abs(totals[c[1]] / published.value - 1))
    off = totals[key] / published.value - 1
    side = "above" if off > 0 else "below"
    if abs(off) <= LOOSE:
        return (f"{head}: {label} {totals[key]:,}, loosely rounded ({abs(off):.1%} {side} the "
                f"figure; not equal to {precision})")  # fmt: skip
    return (
        f"{head}: matches no convention archcalc counts ({candidates}; to {precision}); "
        f"the nearest, {label}, is {abs(off):.0%} {side} it"
    )


def _shape(shape: tuple) -> str:
    texts = (to_text(v) for v in shape)
    return "×".join(f"({t})" if " " in t else t for t in texts)


def _each(values: tuple) -> str:
    """One value when all dimensions agree (``4``), else ``4×2``."""
    return to_text(values[0]) if len(set(values)) == 1 else _shape(values)


def _line(label: str, formula: str, numbers: str | None, value: Any, remark: str = "") -> str:
    parts = [formula]
    if (
        numbers is not None
        and numbers != formula
        and (isinstance(value, str) or not is_symbolic(value))
    ):
        parts.append(numbers)
    shown = value if isinstance(value, str) else number(value)
    if shown != parts[-1]:
        parts.append(shown)
    text = f"  {label.ljust(_LABEL_WIDTH)}= " + " = ".join(parts)
    return text + (f" ({remark})" if remark else "")


_SHAPE_OPS = frozenset({"flatten", "reshape", "permute", "transpose", "unsqueeze", "narrow",
                        "channel_shuffle", "pixel_shuffle", "upsample", "zero_pad", "center_crop",
                        "mean"})  # fmt: skip


def _explain_row(row: Row, nodes: list) -> str:
    title = f"{row.path}" + (f" {row.name}" if row.name else "") + f": {row.type}"
    kind = row.type
    node = nodes[row.node]
    if kind in _SHAPE_OPS and not (kind == "flatten" and len(row.output) == 1):
        body = ops.shape_op(row, node, nodes, _line)
    elif kind in ("add", "mul", "concat", "matmul"):
        body = ops.merge(row, node, nodes, _line)
    elif kind in ("parameter", "prelu", "group_norm") or kind.startswith("instance_norm"):
        body = ops.with_parameters(row, _line)
    elif kind == "multihead_attention":
        body = ops.attention(row, _line)
    elif kind.startswith("adaptive_"):
        body = ops.adaptive_pool(row, _line)
    elif kind == "linear" and len(row.input) > 1:
        body = ops.linear_tokens(row, _line)
    elif kind.startswith("conv_transpose"):
        body = _conv_transpose(row)
    elif kind.startswith("conv") and row.hyper.get("table"):
        body = _table_conv(row)
    elif kind == "subsample":
        body = _subsample(row)
    elif kind == "rbf":
        body = _rbf(row)
    elif kind.startswith("conv"):
        body = _conv(row)
    elif "pool" in kind and not kind.startswith("adaptive"):
        body = _pool(row)
    elif kind == "linear":
        body = _linear(row)
    else:
        body = _other(row)
    return "\n".join([title, *body])


def _size_lines(row: Row, formula, numbers, window_word: str) -> list[str]:
    dims = len(row.input) - 1
    h = row.hyper
    lines = []
    for axis in range(dims):
        n, k, s, p = (row.input[axis + 1], h["kernel_size"][axis], h["stride"][axis],
                      h["padding"][axis])  # fmt: skip
        q = h.get("padding_end", h["padding"])[axis]
        d = h.get("dilation", (1,) * dims)[axis]
        letters = (_IN_LETTERS[dims][axis], _K_LETTERS[dims][axis] if window_word == "M" else "F")
        value = row.output[axis + 1]
        padded = p != 0 or q != 0 or window_word == "M"
        text_formula = formula(*letters, d != 1, padded, p != q)
        text_numbers, exact = numbers(n, k, s, p, d, padded, q)
        remark = ""
        if exact is not None and exact != value:
            rounding = "ceil" if h.get("ceil_mode") else "floor"
            remark = f"{rounding} of {exact_quotient(exact.numerator, exact.denominator)}"
        lines.append(_line(_DIM_NAMES[dims][axis], text_formula, text_numbers, value, remark))
    return lines


def _window_formula(n: str, k: str, dilated: bool, padded: bool, uneven: bool = False) -> str:
    pad = (" + P_before + P_after" if uneven else " + 2P") if padded else ""
    window = f"d({k}-1) - 1" if dilated else k
    return f"1 + ({n}{pad} - {window})/s"


def _window_numbers(n, k, s, p, d, padded, q=None):
    q = p if q is None else q
    if any(is_symbolic(v) for v in (n, k, s, p, d, q)):
        return None, None
    window = f"{d}({k}-1) - 1" if d != 1 else f"{k}"
    pad = f" + {p + q}" if padded else ""
    exact = Fraction(n + p + q - d * (k - 1) - 1, s) + 1
    return f"1 + ({n}{pad} - {window})/{s}", exact


def _padding_text(h: dict) -> str:
    if h.get("same"):
        return "same"
    before, after = h["padding"], h.get("padding_end", h["padding"])
    text = _each(before) if before == after else f"{_shape(before)} before, {_shape(after)} after"
    mode = h.get("padding_mode")
    return f"{text} ({mode})" if mode in ("same_upper", "same_lower") else text


def _conv(row: Row) -> list[str]:
    h, dims = row.hyper, len(row.input) - 1
    c_in, filters, g = row.input[0], row.output[0], h["groups"]
    kernel = "·".join(_K_LETTERS[dims])
    header = (f"  input {_shape(row.input[1:])}×{to_text(c_in)} ({'×'.join(_IN_LETTERS[dims])}×L), "
              f"i = {to_text(filters)} filters {_shape(h['kernel_size'])} ({'×'.join(_K_LETTERS[dims])}), "
              f"stride s = {_each(h['stride'])}, padding P = "
              + _padding_text(h))  # fmt: skip
    if any(d != 1 for d in h["dilation"]):
        header += f", dilation d = {_each(h['dilation'])}"
    if g != 1:
        header += f", groups g = {to_text(g)}"
    lines = [header]
    if h.get("same"):
        lines += [_line(name, "input size (padding 'same')", None, size)
                  for name, size in zip(_DIM_NAMES[dims], row.output[1:])]  # fmt: skip
    else:
        lines += _size_lines(row, _window_formula, _window_numbers, "M")
    per_in = "(L/g)" if g != 1 else "L"
    fan_formula = f"{per_in}·{kernel}"
    fan_numbers = "·".join(number(v) for v in ((c_in if g == 1 else c_in // g), *h["kernel_size"])) \
        if not any(map(is_symbolic, (c_in, g, *h["kernel_size"]))) else None  # fmt: skip
    bias = h["bias"]
    sizes = "·".join(_DIM_NAMES[dims])
    lines += [
        _line("output", f"{'×'.join(_DIM_NAMES[dims])}×i", _shape((*row.output[1:], filters)),
              _shape((*row.output[1:], filters)), f"channels first: [{', '.join(map(to_text, row.output))}]"),
        _line("weights per neuron", f"1 + {fan_formula}" if bias else fan_formula,
              (f"1 + {fan_numbers}" if bias else fan_numbers) if fan_numbers else None,
              row.weights_per_neuron),
        _line("neurons", f"{sizes}·i", "·".join(number(v) for v in (*row.output[1:], filters)),
              row.neurons),
        _line("connections", "neurons × weights per neuron",
              f"{number(row.neurons)} × {number(row.weights_per_neuron)}", row.connections),
        _line("parameters", "i × weights per neuron",
              f"{number(filters)} × {number(row.weights_per_neuron)}", row.params, "weight sharing"),
        _line("MACs", f"neurons × {fan_formula}", f"{number(row.neurons)} × {number(row.fan_in)}",
              row.macs, "bias excluded"),
    ]  # fmt: skip
    return lines


def _pool(row: Row) -> list[str]:
    h, dims = row.hyper, len(row.input) - 1
    header = (f"  input {_shape(row.input[1:])}×{to_text(row.input[0])}, window F = "
              f"{_each(h['kernel_size'])}, stride s = {_each(h['stride'])}")  # fmt: skip
    if any(p != 0 for p in h["padding"]):
        header += f", padding P = {_each(h['padding'])}"
    if h.get("ceil_mode"):
        header += ", ceil_mode"
    lines = [header, *_size_lines(row, _window_formula, _window_numbers, "F")]
    lines.append(_line("output", f"{'×'.join(_DIM_NAMES[dims])}×channels",
                       None, _shape((*row.output[1:], row.output[0]))))  # fmt: skip
    lines.append(_line("parameters", "0", None, 0, "pooling has no weights"))
    return lines


def _linear(row: Row) -> list[str]:
    n, m = row.input[0], row.output[0]
    bias = row.hyper["bias"]
    per_neuron = "n + 1" if bias else "n"
    return [
        f"  n = {number(n)} inputs, m = {number(m)} outputs",
        _line("weights per neuron", per_neuron, f"{number(n)} + 1" if bias else None,
              row.weights_per_neuron),
        _line("neurons", "m", None, row.neurons),
        _line("connections", f"m({per_neuron})" if bias else "m·n",
              f"{number(m)} × {number(row.weights_per_neuron)}", row.connections),
        _line("parameters", f"m({per_neuron})" if bias else "m·n",
              f"{number(m)} × {number(row.weights_per_neuron)}", row.params, "no sharing"),
        _line("MACs", "m·n", f"{number(m)} × {number(n)}", row.macs, "bias excluded"),
    ]  # fmt: skip


def _conv_transpose(row: Row) -> list[str]:
    h = row.hyper
    return [
        f"  input {_shape(row.input)}, {to_text(row.output[0])} output channels, kernel "
        f"{_shape(h['kernel_size'])}, stride {_shape(h['stride'])}, padding {_shape(h['padding'])}",
        _line("output size", "(n-1)s - 2P + d(k-1) + output_padding + 1", None,
              _shape(row.output)),
        _line("neurons", "output units", None, row.neurons),
        _line("parameters", "C_in·(C_out/g)·Πk + C_out·bias", None, row.params),
        _line("MACs", "input units × (C_out/g)·Πk", None, row.macs, "bias excluded"),
        _line("connections", "MACs + neurons·bias", None, row.connections),
    ]  # fmt: skip


def _table_conv(row: Row) -> list[str]:
    h = row.hyper
    taps = number(len(h["table"]) and int(row.macs // max(1, int(row.neurons // row.output[0]))))
    sizes = sorted({len(maps) for maps in h["table"]})
    k = "·".join(to_text(v) for v in h["kernel_size"])
    taps_per_map = product(h["kernel_size"])
    per_map = ", ".join(f"1 + {n}·{k}" for n in sizes)
    maps_seen = sum(len(maps) for maps in h["table"])
    positions = "·".join(to_text(v) for v in row.output[1:])
    return [
        f"  connection table: output maps see {', '.join(map(str, sizes))} of {to_text(row.input[0])} input maps "
        f"({maps_seen} in all)",
        _line("output", "height×width×i", None, _shape((*row.output[1:], row.output[0]))),
        _line("weights per neuron", "1 + |S_j|·M·N, per output map j", None,
              f"{per_map} = " + " or ".join(number(1 + n * int(taps_per_map)) for n in sizes)),
        _line("parameters", "Σ_j (|S_j|·M·N + 1)", f"{maps_seen}·{k} + {len(h['table'])}", row.params),
        _line("neurons", "height·width·i", None, row.neurons),
        _line("connections", "positions × parameters", f"{positions} × {number(row.params)}", row.connections),
        _line("MACs", "positions × Σ_j |S_j|·M·N", f"{positions} × {taps}", row.macs, "bias excluded"),
    ]  # fmt: skip


def _subsample(row: Row) -> list[str]:
    window = "·".join(to_text(v) for v in row.hyper["kernel_size"])
    return [
        f"  each unit sums a {window} window of its map, times a trainable coefficient, plus a bias",
        _line("output", "height×width×maps", None, _shape((*row.output[1:], row.output[0]))),
        _line("weights per neuron", f"{window} inputs + bias", None, row.weights_per_neuron),
        _line("neurons", "height·width·maps", None, row.neurons),
        _line("connections", "neurons × weights per neuron",
              f"{number(row.neurons)} × {number(row.weights_per_neuron)}", row.connections),
        _line("parameters", "2 × maps", f"2 × {number(row.output[0])}", row.params, "coefficient and bias"),
    ]  # fmt: skip


def _rbf(row: Row) -> list[str]:
    n, m = row.input[0], row.output[0]
    return [
        f"  {number(m)} Euclidean RBF units over n = {number(n)} inputs, y_i = Σ_j (x_j − w_ij)²",
        _line("connections", "m·n", f"{number(m)} × {number(n)}", row.connections),
        _line("parameters", "0", None, 0, "the centres w_ij are fixed, not trained"),
    ]


def _other(row: Row) -> list[str]:
    kind = row.type
    if kind == "flatten":
        return [_line("output", "product of the input shape",
                      "·".join(number(v) for v in row.input), row.output[0])]  # fmt: skip
    if kind.startswith("batchnorm"):
        return [_line("parameters", "2 × channels", f"2 × {number(row.input[0])}", row.params,
                      "gamma and beta; running mean and variance are buffers")]  # fmt: skip
    if kind == "layernorm":
        shape = row.hyper["normalized_shape"]
        if not row.hyper["elementwise_affine"]:
            return [_line("parameters", "0", None, row.params, "no elementwise affine")]
        dims = "the last dimension" if len(shape) == 1 else f"the last {len(shape)} dimensions"
        return [_line("parameters", "2 × normalised elements",
                      f"2 × {'·'.join(number(v) for v in shape)}", row.params,
                      f"a weight and a bias per element of {dims}")]  # fmt: skip
    if kind in ("dropout", "dropout2d", "stochastic_depth"):
        return [
            f"  output {shape_text(row.output)} (same as input), no parameters; p = {row.hyper['p']}"
        ]
    return [f"  output {shape_text(row.output)} (same as input), no parameters"]
