"""The working for layers without a window: tokens, attention, shape operations, merges,
norms and learned tensors (the windowed ones are in :mod:`.explain`).

Each function takes a row (and the graph's node, for merges and crops) and returns
the lines under its title: ``label = formula = numbers = value``.
"""

from __future__ import annotations

from typing import Any, Callable

from archcalc.language.expr import is_symbolic, product
from archcalc.language.printing import number
from archcalc.layers.rules import shape_text
from archcalc.quantities.analysis import Row

Line = Callable[..., str]


def _dims(values) -> str:
    return "·".join(number(v) for v in values)


def linear_tokens(row: Row, line: Line) -> list[str]:
    """A linear layer on the last dimension of tokens [L, n]."""
    tokens, n, m = product(row.input[:-1]), row.input[-1], row.output[-1]
    bias = row.hyper["bias"]
    per_neuron = "n + 1" if bias else "n"
    return [
        f"  {number(tokens)} positions ({shape_text(row.input[:-1])}) × n = {number(n)} "
        f"inputs each, m = {number(m)} outputs (the same weights at every position)",
        line("weights per neuron", per_neuron, f"{number(n)} + 1" if bias else None,
             row.weights_per_neuron),
        line("neurons", "positions × m", f"{number(tokens)} × {number(m)}", row.neurons),
        line("connections", "neurons × weights per neuron",
             f"{number(row.neurons)} × {number(row.weights_per_neuron)}", row.connections),
        line("parameters", f"m({per_neuron})" if bias else "m·n",
             f"{number(m)} × {number(row.weights_per_neuron)}", row.params, "shared by positions"),
        line("MACs", "neurons × n", f"{number(row.neurons)} × {number(n)}", row.macs,
             "bias excluded"),
    ]  # fmt: skip


def attention(row: Row, line: Line) -> list[str]:
    length, width = row.input
    heads = row.hyper["num_heads"]
    both = row.hyper["bias"]
    numbers = None
    if not any(map(is_symbolic, (length, width))):
        numbers = (f"4·{length}·{width}² + 2·{length}²·{width} = "
                   f"{4 * length * width * width:,} + {2 * length * length * width:,}")  # fmt: skip
    return [
        f"  self-attention over L = {number(length)} tokens of E = {number(width)}, "
        f"{number(heads)} heads of {number(width // heads if isinstance(width, int) else width / heads)}",
        line("parameters", "4E² + 4E" if both else "4E²",
             f"4·{number(width)}² + 4·{number(width)}" if both else f"4·{number(width)}²",
             row.params, "Q, K, V and output projections"),
        line("MACs", "4·L·E² + 2·L²·E", numbers, row.macs,
             "projections; scores QKᵀ and the weighted sum of V; softmax counts 0"),
    ]  # fmt: skip


def adaptive_pool(row: Row, line: Line) -> list[str]:
    from archcalc.layers.formulas import adaptive_window_counts

    lines = []
    for axis, (n, out) in enumerate(zip(row.input[1:], row.output[1:])):
        if any(map(is_symbolic, (n, out))):
            continue
        counts = adaptive_window_counts(n, out)
        window = " or ".join(f"{size} ({count}×)" if len(counts) > 1 else f"{size}"
                             for size, count in sorted(counts.items()))  # fmt: skip
        lines.append(f"  dimension {axis + 1}: {n} -> {out}, windows of {window} "
                     "(PyTorch's [floor(o·n/out), ceil((o+1)·n/out)))")  # fmt: skip
    lines.append(line("output", "channels × output_size", None, shape_text(row.output),
                      "no parameters"))  # fmt: skip
    return lines


def shape_op(row: Row, node: Any, nodes: list, line: Line) -> list[str]:
    """Shape-only layers: what the output is made of, and that nothing is counted."""
    h, kind, inp, out = row.hyper, row.type, row.input, row.output
    formula, numbers = {
        "flatten": lambda: (f"dimensions {h['start_dim']}..{h['end_dim']} multiplied",
                            _dims(inp[h["start_dim"] : h["end_dim"] + 1])),
        "reshape": lambda: (f"{shape_text(inp)} rearranged, {number(product(inp))} elements",
                            None),
        "permute": lambda: (f"dimensions in the order {list(h['dims'])}", None),
        "transpose": lambda: (f"dimensions {h['dim0']} and {h['dim1']} swapped", None),
        "unsqueeze": lambda: (f"a dimension of 1 at {h['dim']}", None),
        "narrow": lambda: (f"indices {number(h['start'])}..{number(h['start'] + h['length'] - 1)} "
                           f"of dimension {h['dim']}", None),
        "channel_shuffle": lambda: (f"channels interleaved from {number(h['groups'])} groups", None),
        "pixel_shuffle": lambda: ("[C/r², H·r, W·r]", f"r = {number(h['upscale_factor'])}"),
        "upsample": lambda: (("size" if h.get("size") is not None else "n × scale_factor")
                             + f" ({h['mode']})", None),
        "zero_pad": lambda: ("n + padding before + padding after", ", ".join(
            f"{number(n)} + {number(a)} + {number(b)}"
            for n, a, b in zip(inp[1:], h["padding"], h["padding_end"]))),
        "center_crop": lambda: ("size, starting at round((n - size)/2)", ", ".join(
            f"{number(n)} -> {number(s)} from {number(o) if o is not None else '?'}"
            for n, s, o in zip(inp[1:], h["size"], h["offsets"]))),
        "mean": lambda: (f"mean over dimensions {list(h['dims'])}"
                         + (" (kept as 1)" if h["keepdim"] else ""), None),
    }[kind]()  # fmt: skip
    return [line("output", formula, numbers, shape_text(out), "no parameters, no MACs")]


def merge(row: Row, node: Any, nodes: list, line: Line) -> list[str]:
    ins = [nodes[i] for i in node.inputs]
    names = ", ".join(f"{n.path} {shape_text(n.shape)}" for n in ins)
    kind = row.type
    if kind == "concat":
        dim = node.hyper["dim"]
        sizes = " + ".join(number(n.shape[dim]) for n in ins)
        return [f"  inputs: {names}",
                line("output", f"sizes along dimension {dim} added", sizes, shape_text(row.output),
                     "no parameters")]  # fmt: skip
    if kind == "matmul":
        a, b = ins
        k = a.shape[-1]
        return [f"  inputs: {names}",
                line("output", "[..., n, k] @ [..., k, m] = [..., n, m]", None, shape_text(row.output)),
                line("MACs", "output elements × k", f"{_dims(row.output)} × {number(k)}", row.macs)]  # fmt: skip
    word = "sum" if kind == "add" else "product"
    return [f"  inputs: {names}",
            line("output", f"element-wise {word}, sizes of 1 broadcast", None,
                 shape_text(row.output), "no parameters, no MACs: nothing is weighted")]  # fmt: skip


def with_parameters(row: Row, line: Line) -> list[str]:
    kind, h = row.type, row.hyper
    if kind == "parameter":
        return [line("parameters", "product of its shape", _dims(row.output), row.params,
                     "a learned tensor; it reads no input")]  # fmt: skip
    if kind == "prelu":
        return [line("parameters", "num_parameters (1, or one slope per channel)", None,
                     row.params)]  # fmt: skip
    if kind == "group_norm":
        return [f"  {number(row.input[0])} channels in {number(h['num_groups'])} groups",
                line("parameters", "2 × channels" if h["affine"] else "0",
                     f"2 × {number(row.input[0])}" if h["affine"] else None, row.params)]  # fmt: skip
    # instance norm
    return [line("parameters", "2 × channels" if h["affine"] else "0 (affine=False)",
                 f"2 × {number(row.input[0])}" if h["affine"] else None, row.params)]  # fmt: skip
