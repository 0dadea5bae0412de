"""Other tools' MAC/FLOP totals, rebuilt from the spec: what each tool prints and why.

Every peer tool agrees with archcalc's parameters; their MAC totals differ by convention
only. For each tool, a table maps a layer type to the terms that tool adds to (or leaves
out of) archcalc's MACs; each term is a plain rule function over one layer as the tool
sees it (one ``torch.nn`` module per graph node, batch 1, evaluation mode, as
``verify.build`` builds the spec). A tool's figure is archcalc's MACs plus the sum of its
terms, so every difference is attributed to layer types with counts.

Versions whose rules these are (found by reading their source and running them on the
built models): see :data:`VERSIONS`. No torch import here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Mapping

from archcalc.errors import ArchcalcError

VERSIONS = {
    "torchinfo": "1.8.0",
    "fvcore": "0.1.5.post20221221",
    "ptflops": "0.7.5",
    "ptflops-aten": "0.7.5",
    "thop": "0.1.1.post2209072238",
    "calflops": "0.3.2",
    "torchscan": "0.2.0",
}


@dataclass(frozen=True)
class Layer:
    """One graph node as a hooking tool sees its module: shapes without the batch."""

    path: str
    type: str
    hyper: Mapping[str, Any]
    inputs: tuple[tuple[int, ...], ...]
    output: tuple[int, ...]
    macs: int

    @property
    def input(self) -> tuple[int, ...]:
        return self.inputs[0] if self.inputs else ()

    @property
    def kind(self) -> str:
        """The type without its dimension suffix: ``conv2d`` -> ``conv``."""
        for family in ("conv_transpose", "conv", "batchnorm", "maxpool", "avgpool",
                       "adaptive_avgpool", "adaptive_maxpool", "instance_norm"):  # fmt: skip
            if self.type.startswith(family) and self.type[len(family) :] in ("1d", "2d", "3d"):
                return family
        return self.type


@dataclass(frozen=True)
class Because:
    """A layer type's share of a difference: ``count`` added to archcalc's MACs."""

    type: str
    count: int
    rule: str
    layers: int

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "count": self.count, "rule": self.rule, "layers": self.layers}


@dataclass(frozen=True)
class Figure:
    """What one tool prints (``value``), or None and ``reason`` where it prints no total."""

    tool: str
    version: str
    macs: int
    because: list[Because]
    reason: str | None = None
    known: int | None = None
    what: str = "MACs"
    value: int | None = field(init=False)

    def __post_init__(self) -> None:
        total = self.macs + sum(b.count for b in self.because)
        object.__setattr__(self, "value", None if self.reason else total)
        if self.reason and self.known is None:
            object.__setattr__(self, "known", None)

    @property
    def difference(self) -> int | None:
        return None if self.value is None else self.value - self.macs

    def to_dict(self) -> dict[str, Any]:
        data = {"tool": self.tool, "version": self.version, "what": self.what,
                "value": self.value, "difference": self.difference,
                "because": [b.to_dict() for b in self.because]}  # fmt: skip
        if self.reason:
            data["reason"] = self.reason
        if self.known is not None:
            data["known"] = self.known
        return data


def numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


# -- the rules: each returns the count one layer adds to archcalc's MACs


def bias_per_output(layer: Layer) -> int:
    """One add per output element of a conv or linear layer with a bias: ``numel(output)``."""
    return numel(layer.output) if layer.hyper.get("bias", True) else 0


def bias_once(layer: Layer) -> int:
    """A linear layer's bias counted once per sample, not per position: ``out_features``."""
    return int(layer.hyper["out_features"]) if layer.hyper.get("bias", True) else 0


def conv_bias_per_position(layer: Layer) -> int:
    """The bias as one more weight per output position: ``C_out · H_out · W_out``."""
    return numel(layer.output) if layer.hyper.get("bias", True) else 0


def linear_weights_once(layer: Layer) -> int:
    """Linear on tokens [L, n] -> [L, m]: the weights counted once, not per token:
    ``n·m − L·n·m``."""
    return int(layer.input[-1]) * int(layer.hyper["out_features"]) - layer.macs


def one_per_input(layer: Layer) -> int:
    """One operation per input element: ``numel(input)``."""
    return numel(layer.input)


def two_per_input(layer: Layer) -> int:
    """Two per input element: ``2·numel(input)``."""
    return 2 * numel(layer.input)


def one_per_output(layer: Layer) -> int:
    """One operation per output element: ``numel(output)``."""
    return numel(layer.output)


def affine_norm(per_element: int, plain: int, flag: str = "affine") -> Callable[[Layer], int]:
    """A normalisation: ``per_element`` per input element with an affine transform,
    ``plain`` without."""

    def rule(layer: Layer) -> int:
        return numel(layer.input) * (per_element if layer.hyper.get(flag, True) else plain)

    rule.__doc__ = f"{per_element} per input element with affine parameters, else {plain}"
    return rule


def norm_parameters(layer: Layer) -> int:
    """A batch norm's learnable parameters once per sample: ``2·C`` (γ, β), 0 without affine."""
    return 2 * int(layer.input[0]) if layer.hyper.get("affine", True) else 0


def layernorm_parameters(layer: Layer) -> int:
    """A layer norm's parameters once per sample: ``2·numel(normalized_shape)``."""
    if not layer.hyper.get("elementwise_affine", True):
        return 0
    return 2 * numel(tuple(int(v) for v in layer.hyper["normalized_shape"]))


def learned_tensor(layer: Layer) -> int:
    """A learned tensor (class token, position embedding): its elements, once."""
    return numel(layer.output)


def window(layer: Layer) -> int:
    """The elements of a pooling window: ``Π kernel_size``."""
    kernel = layer.hyper["kernel_size"]
    return numel(tuple(int(k) for k in kernel)) if isinstance(kernel, tuple) else int(kernel)


def max_pool_compares(layer: Layer) -> int:
    """Max pooling, comparisons per window: ``numel(output)·(Π kernel − 1)``."""
    return numel(layer.output) * (window(layer) - 1)


def avg_pool_adds_and_divides(layer: Layer) -> int:
    """Average pooling, adds then one divide per spatial dimension:
    ``numel(output)·(Π kernel − 1 + spatial dims)``."""
    return numel(layer.output) * (window(layer) - 1 + len(layer.input) - 1)


def adaptive_kernel(layer: Layer) -> tuple[int, ...]:
    """torchscan's adaptive window per dimension: ``i // o`` if o divides i, else ``i % o + 1``."""
    return tuple(i // o if i % o == 0 else i % o + 1
                 for i, o in zip(layer.input[1:], layer.output[1:]))  # fmt: skip


def adaptive_max_compares(layer: Layer) -> int:
    """Adaptive max pooling: ``numel(output)·(Π kernel − 1)``, kernel from :func:`adaptive_kernel`."""
    return numel(layer.output) * (numel(adaptive_kernel(layer)) - 1)


def adaptive_avg_adds(layer: Layer) -> int:
    """Adaptive average pooling: ``numel(output)·(Π kernel − 1 + dims)``, kernel from
    :func:`adaptive_kernel`."""
    kernel = adaptive_kernel(layer)
    return numel(layer.output) * (numel(kernel) - 1 + len(kernel))


def adaptive_avg_ratio(layer: Layer) -> int:
    """thop's adaptive average pooling: ``int((Π input/output ratio + 1)·numel(output))``."""
    ratio = Fraction(numel(layer.input[1:]), numel(layer.output[1:]))
    return math.floor((ratio + 1) * numel(layer.output))


def softmax_exp_add_divide(layer: Layer) -> int:
    """Softmax over n values: n exponentials, n − 1 adds, n divides: ``rows·(3n − 1)``."""
    dim = int(layer.hyper.get("dim") or 0) % len(layer.input)
    n = int(layer.input[dim])
    return numel(layer.input) // n * (3 * n - 1)


def lrn_functional_ops(layer: Layer) -> int:
    """LRN as torch computes it, counted by ptflops' patches: ``x·x``, ``·alpha``, ``+k`` one
    each per element, and the average pool over the channel-padded square:
    ``3·numel(input) + (C + size − 1)·H·W``."""
    channels, spatial = int(layer.input[0]), numel(layer.input[1:])
    return 3 * channels * spatial + (channels + int(layer.hyper["size"]) - 1) * spatial


def upsample_per_output(per_element: Mapping[str, int]) -> Callable[[Layer], int]:
    """Upsampling: a number of operations per output element that depends on the mode."""

    def rule(layer: Layer) -> int:
        mode = layer.hyper.get("mode", "nearest")
        if mode not in per_element:
            raise _NoRule(f"upsample mode {mode!r}")
        return numel(layer.output) * per_element[mode]

    rule.__doc__ = "per output element: " + ", ".join(f"{m} {n}" for m, n in per_element.items())
    return rule


def attention_projections_left_out(layer: Layer) -> int:
    """Attention whose in- and out-projections are not counted (F.linear unpatched, the
    out-projection a Linear subclass): only the two matmuls ``2·L²·E`` remain: ``−4·L·E²``."""
    length, width = int(layer.input[0]), int(layer.input[1])
    return -4 * length * width * width


def attention_out_projection_once(layer: Layer) -> int:
    """Attention counted as its out-projection's parameters once (torchinfo's leaf Linear):
    ``E² + E − MACs`` (``E²`` without bias)."""
    width = int(layer.input[1])
    return width * width + (width if layer.hyper.get("bias", True) else 0) - layer.macs


def attention_biases(layer: Layer) -> int:
    """The projections' biases as adds, one per output element: ``4·L·E`` (0 without bias)."""
    return 4 * numel(layer.input) if layer.hyper.get("bias", True) else 0


def out_projection_only(layer: Layer) -> int:
    """Attention of which only the out-projection (a Linear child) is counted:
    ``L·E² − MACs``."""
    length, width = int(layer.input[0]), int(layer.input[1])
    return length * width * width - layer.macs


def all_macs_left_out(layer: Layer) -> int:
    """A layer the tool has no rule for counts 0: ``−MACs``."""
    return -layer.macs


class _NoRule(Exception):
    """Raised by a rule where the tool's behaviour for this layer is not known to archcalc."""


Term = tuple[str, str, Callable[[Layer], int]]  # (type shown, why, rule)
NOTHING: list[Term] = []


def _shape_only(*kinds: str) -> dict[str, list[Term]]:
    return {kind: NOTHING for kind in kinds}


#: Types every tool counts as archcalc does (nothing, or the same MACs).
_COMMON = _shape_only(
    "flatten",
    "dropout",
    "dropout2d",
    "identity",
    "reshape",
    "permute",
    "transpose",
    "narrow",
    "unsqueeze",
    "concat",
    "parameter",
    "zero_pad",
    "center_crop",
    "channel_shuffle",
    "pixel_shuffle",
    "add",
    "mul",
    "matmul",
    "relu",
    "relu6",
    "tanh",
    "sigmoid",
    "stochastic_depth",
    "leaky_relu",
)

TOOL_RULES: dict[str, dict[str, list[Term]]] = {
    "torchinfo": {
        **_COMMON,
        "conv": [
            ("conv bias", "bias as a weight at every output position", conv_bias_per_position)
        ],
        "linear": [
            ("linear bias", "once per sample", bias_once),
            ("linear on tokens", "weights counted once, not per token", linear_weights_once),
        ],
        "batchnorm": [("batch norm", "its 2·C parameters", norm_parameters)],
        "layernorm": [("layer norm", "its parameters", layernorm_parameters)],
        "parameter": [("learned tensor", "its elements", learned_tensor)],
        "multihead_attention": [
            (
                "attention",
                "only the out-projection's parameters, once",
                attention_out_projection_once,
            )
        ],
        **_shape_only(
            "maxpool",
            "avgpool",
            "adaptive_avgpool",
            "adaptive_maxpool",
            "softmax",
            "local_response_norm",
            "gelu",
            "silu",
            "upsample",
        ),
    },  # fmt: skip
    "fvcore": {
        **_COMMON,
        "conv": NOTHING,
        "linear": NOTHING,
        "multihead_attention": NOTHING,
        "batchnorm": [("batch norm", "2 per input element", affine_norm(2, 1))],
        "layernorm": [
            ("layer norm", "5 per input element", affine_norm(5, 4, "elementwise_affine"))
        ],
        "group_norm": [("group norm", "5 per input element", affine_norm(5, 4))],
        "adaptive_avgpool": [("adaptive pool", "1 per input element", one_per_input)],
        "upsample": [
            ("upsample", "per output element", upsample_per_output({"nearest": 1, "bilinear": 4}))
        ],
        **_shape_only(
            "maxpool",
            "avgpool",
            "adaptive_maxpool",
            "softmax",
            "local_response_norm",
            "gelu",
            "silu",
        ),
    },  # fmt: skip
    "ptflops": {
        **_COMMON,
        "conv": [("conv bias", "1 per output element", bias_per_output)],
        "linear": [("linear bias", "1 per output element", bias_per_output)],
        "batchnorm": [("batch norm", "2 per input element", affine_norm(2, 1))],
        "layernorm": [("layer norm", "1 per input element (no `affine` attribute)", one_per_input)],
        "relu": [("ReLU", "counted twice: module hook and functional patch", two_per_input)],
        "gelu": [("GELU", "counted twice: module hook and functional patch", two_per_input)],
        "relu6": [("ReLU6", "1 per element (module hook)", one_per_output)],
        "leaky_relu": [("leaky ReLU", "1 per element (module hook)", one_per_output)],
        "silu": [("SiLU", "1 per element (functional patch)", one_per_input)],
        "maxpool": [
            ("max pool", "2 per input element: module hook and functional patch", two_per_input)
        ],
        "avgpool": [
            ("avg pool", "2 per input element: module hook and functional patch", two_per_input)
        ],
        "adaptive_avgpool": [
            ("adaptive pool", "2 per input element: hook and patch", two_per_input)
        ],
        "adaptive_maxpool": [
            ("adaptive pool", "2 per input element: hook and patch", two_per_input)
        ],
        "softmax": [("softmax", "1 per element (functional patch)", one_per_input)],
        "local_response_norm": [("LRN", "its torch ops, through the patches", lrn_functional_ops)],
        "upsample": [
            ("upsample", "per output element, hook and patch", upsample_per_output({"nearest": 2}))
        ],
        "multihead_attention": [
            ("attention", "in- and out-projections not counted", attention_projections_left_out)
        ],
    },  # fmt: skip
    "ptflops-aten": {
        **_COMMON,
        "conv": [("conv bias", "1 per output element", bias_per_output)],
        "linear": [("linear bias", "1 per output element", bias_per_output)],
        "multihead_attention": [("attention bias", "1 per projection output", attention_biases)],
        **_shape_only(
            "batchnorm",
            "layernorm",
            "maxpool",
            "avgpool",
            "adaptive_avgpool",
            "adaptive_maxpool",
            "softmax",
            "local_response_norm",
            "gelu",
            "silu",
            "upsample",
        ),
    },  # fmt: skip
    "thop": {
        **_COMMON,
        "conv": NOTHING,
        "linear": NOTHING,
        "batchnorm": [("batch norm", "4 per input element", affine_norm(4, 2))],
        "layernorm": [
            ("layer norm", "4 per input element", affine_norm(4, 2, "elementwise_affine"))
        ],
        "avgpool": [("avg pool", "1 per output element", one_per_output)],
        "adaptive_avgpool": [
            ("adaptive pool", "(input/output + 1) per output element", adaptive_avg_ratio)
        ],
        "softmax": [("softmax", "3n − 1 per row of n", softmax_exp_add_divide)],
        "multihead_attention": [
            ("attention", "no rule for the module or its out-projection", all_macs_left_out)
        ],
        "upsample": [
            (
                "upsample",
                "per output element",
                upsample_per_output({"nearest": 1, "linear": 5, "bilinear": 11}),
            )
        ],
        **_shape_only("maxpool", "adaptive_maxpool", "local_response_norm", "gelu", "silu"),
    },  # fmt: skip
    "calflops": {
        **_COMMON,
        **_shape_only(
            "conv",
            "linear",
            "multihead_attention",
            "batchnorm",
            "layernorm",
            "maxpool",
            "avgpool",
            "adaptive_avgpool",
            "adaptive_maxpool",
            "softmax",
            "local_response_norm",
            "gelu",
            "silu",
            "upsample",
            "group_norm",
        ),
    },  # fmt: skip
    "torchscan": {
        **_shape_only(
            "flatten",
            "dropout",
            "identity",
            "relu",
            "relu6",
            "tanh",
            "sigmoid",
            "leaky_relu",
            "elu",
            "conv",
            "linear",
        ),
        "batchnorm": [("batch norm", "2 per input element", affine_norm(2, 1))],
        "maxpool": [("max pool", "Π kernel − 1 per output element", max_pool_compares)],
        "avgpool": [
            ("avg pool", "Π kernel + 1 per output element (2-d)", avg_pool_adds_and_divides)
        ],
        "adaptive_avgpool": [
            ("adaptive pool", "Π kernel − 1 + dims per output element", adaptive_avg_adds)
        ],
        "adaptive_maxpool": [
            ("adaptive pool", "Π kernel − 1 per output element", adaptive_max_compares)
        ],
        "multihead_attention": [
            ("attention", "only the out-projection counted", out_projection_only)
        ],
    },  # fmt: skip
}

#: Tools that, for a type they have no rule for, print a partial total (torchscan) rather
#: than counting it as 0.
PARTIAL_TOOLS = {"torchscan"}
#: Types that make a tool's total partial although some of their work is counted.
PARTIAL_TYPES = {"torchscan": {"multihead_attention"}}


def layers_of(analysis) -> list[Layer]:
    """Every node of the graph as a module the tools hook: merges included, batch dropped."""
    if analysis.symbolic:
        raise ArchcalcError("other tools' figures need numbers; give every symbol a value (--set)")
    nodes = analysis.graph.nodes
    layers = []
    for node in nodes[1:]:
        row = analysis.row_of(node)
        layers.append(Layer(
            path=node.path, type=node.type, hyper=dict(node.hyper),
            inputs=tuple(_ints(nodes[i].shape) for i in node.inputs), output=_ints(node.shape),
            macs=int(row.macs) if row is not None else 0,
        ))  # fmt: skip
    return layers


def _ints(shape) -> tuple[int, ...]:
    return tuple(int(v) for v in shape)


def tool_figure(analysis, tool: str) -> Figure:
    """The MAC total ``tool`` prints for the built spec at batch 1, with the reasons."""
    if tool not in TOOL_RULES:
        raise ArchcalcError(f"unknown tool {tool!r}; expected one of: {', '.join(TOOL_RULES)}")
    layers = layers_of(analysis)
    rules, macs = TOOL_RULES[tool], int(analysis.totals["macs"])
    shares: dict[str, list] = {}
    missing: dict[str, int] = {}
    for layer in layers:
        terms = rules.get(layer.kind)
        if layer.kind in PARTIAL_TYPES.get(tool, ()):
            missing[layer.type] = missing.get(layer.type, 0) + 1
        if terms is None:
            missing[layer.type] = missing.get(layer.type, 0) + 1
            if tool in PARTIAL_TOOLS:
                terms = [(layer.type, "no rule: left out", all_macs_left_out)]
            else:
                continue
        for name, why, rule in terms:
            try:
                count = rule(layer)
            except _NoRule as err:
                missing[f"{layer.type} ({err})"] = 1
                continue
            share = shares.setdefault(name, [why, 0, 0])
            share[1] += count
            share[2] += 1
    because = [Because(name, count, why, n) for name, (why, count, n) in shares.items() if count]
    because.sort(key=lambda share: -abs(share.count))
    figure = Figure(tool, VERSIONS[tool], macs, because)
    if not missing:
        return figure
    listed = ", ".join(f"{name} ({n})" if n > 1 else name for name, n in missing.items())
    if tool in PARTIAL_TOOLS:
        return Figure(tool, VERSIONS[tool], macs, because, known=figure.value,
                      reason=f"prints a partial total: no rule for {listed}")  # fmt: skip
    return Figure(tool, VERSIONS[tool], macs, because,
                  reason=f"archcalc does not know how {tool} counts {listed}")  # fmt: skip


def published_figures(analysis) -> list[Figure]:
    """The published conventions users compare against."""
    layers = layers_of(analysis)
    macs = int(analysis.totals["macs"])
    biases = sum(bias_per_output(x) for x in layers if x.kind in ("conv", "linear"))
    elementwise = sum(elementwise_ops(x) for x in layers)
    multiply = [Because("multiply-accumulates", macs, "a MAC is a multiply and an add", 0)]
    with_ops = [
        *multiply,
        Because("bias", biases, "1 add per output element of a biased conv/linear", 0),
        Because("element-wise", elementwise, "1 per output element of add, mul, activations", 0),
    ]  # fmt: skip
    return [
        Figure("torchvision GFLOPS", "", macs, [], what="GFLOPS x 1e9"),
        Figure("FLOPs = 2 x MACs", "", macs, multiply, what="FLOPs"),
        Figure(
            "FLOPs with bias and element-wise ops",
            "",
            macs,
            [b for b in with_ops if b.count],
            what="FLOPs",
        ),  # fmt: skip
    ]


ELEMENTWISE = {"add", "mul", "relu", "relu6", "leaky_relu", "gelu", "silu", "tanh", "sigmoid",
               "elu", "selu", "hardswish", "hardsigmoid", "mish", "softplus", "prelu"}  # fmt: skip


def elementwise_ops(layer: Layer) -> int:
    """One operation per output element of an element-wise layer (a sum or product of n
    inputs: ``(n − 1)`` per element); 0 otherwise."""
    if layer.type not in ELEMENTWISE:
        return 0
    return numel(layer.output) * max(len(layer.inputs) - 1, 1)


def conventions(analysis) -> list[Figure]:
    """Every tool's figure, then the published conventions."""
    return [tool_figure(analysis, tool) for tool in TOOL_RULES] + published_figures(analysis)
