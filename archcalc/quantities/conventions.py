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

from dataclasses import dataclass, field
from typing import Any

from archcalc.errors import ArchcalcError
from archcalc.quantities.resnet_paper import is_resnet, v1_bottlenecks
from archcalc.quantities.tool_formulas import (
    Layer,
    NoRule,
    all_macs_left_out,
    bias_per_output,
    numel,
)
from archcalc.quantities.tool_rules import (
    NEEDS_PARAMETERS,
    PARTIAL_TOOLS,
    PARTIAL_TYPES,
    TOOL_RULES,
    VERSIONS,
)

__all__ = ["TOOL_RULES", "VERSIONS", "Because", "Figure", "Layer", "conventions", "tool_figure"]


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
    #: The exception the tool raises instead of printing a total (calflops without parameters).
    raises: str | None = None
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
        if self.raises:
            data["raises"] = self.raises
        return data


def layers_of(analysis) -> list[Layer]:
    """Every node of the graph as a module the tools hook: merges included, batch dropped."""
    if analysis.symbolic:
        raise analysis.needs_numbers("conventions")
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
    """The total ``tool`` prints for the built spec at batch 1 (MACs; FLOPs for
    ``calflops-flops``), with the reasons."""
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
            except NoRule as err:
                missing[f"{layer.type} ({err})"] = 1
                continue
            share = shares.setdefault(name, [why, 0, 0])
            share[1] += count
            share[2] += 1
    because = [Because(name, count, why, n) for name, (why, count, n) in shares.items() if count]
    because.sort(key=lambda share: -abs(share.count))
    what = "FLOPs" if tool.endswith("-flops") else "MACs"
    figure = Figure(tool, VERSIONS[tool], macs, because, what=what)
    if tool in NEEDS_PARAMETERS and not int(analysis.totals["params"]):
        return Figure(tool, VERSIONS[tool], macs, because, what=what, raises="StopIteration",
                      reason=f"{tool.split('-')[0]} raises StopIteration on a model without "
                      "parameters (it reads next(model.parameters()))")  # fmt: skip
    if not missing:
        return figure
    listed = ", ".join(f"{name} ({n})" if n > 1 else name for name, n in missing.items())
    if tool in PARTIAL_TOOLS:
        return Figure(tool, VERSIONS[tool], macs, because, known=figure.value, what=what,
                      reason=f"prints a partial total: no rule for {listed}")  # fmt: skip
    return Figure(tool, VERSIONS[tool], macs, because, what=what,
                  reason=f"archcalc does not know how {tool} counts {listed}")  # fmt: skip


#: Layer families with a bias added once per output element.
BIASED = ("conv", "conv_transpose", "table_conv", "subsample", "linear")


def published_figures(analysis) -> list[Figure]:
    """The published conventions users compare against."""
    layers = layers_of(analysis)
    macs = int(analysis.totals["macs"])
    biases = sum(bias_per_output(x) for x in layers if x.kind in BIASED)
    elementwise = sum(elementwise_ops(x) for x in layers)
    multiply = [Because("multiply-accumulates", macs, "a MAC is a multiply and an add", 0)]
    with_ops = [
        *multiply,
        Because("bias", biases, "1 add per output element of a biased conv/linear", 0),
        Because("element-wise", elementwise, "1 per output element of add, mul, activations", 0),
    ]  # fmt: skip
    return [
        Figure("torchvision GFLOPS", "", macs, _eval_mode_outputs(analysis), what="GFLOPS x 1e9"),
        *resnet_paper_figures(analysis),
        Figure("FLOPs = 2 x MACs", "", macs, multiply, what="FLOPs"),
        Figure(
            "FLOPs with bias and element-wise ops",
            "",
            macs,
            [b for b in with_ops if b.count],
            what="FLOPs",
        ),  # fmt: skip
    ]


def _eval_mode_outputs(analysis) -> list[Because]:
    """torchvision measures its GFLOPS in eval mode, where a network with auxiliary outputs
    (Inception-v3's aux head) computes its first output only: the layers no other output
    needs are left out."""
    graph = analysis.graph
    if len(graph.outputs) < 2:
        return []
    main = graph.live(graph.outputs[:1])
    extra = [row for row in analysis.rows if not main[row.node] and row.macs]
    if not extra:
        return []
    return [Because("auxiliary outputs", -sum(int(row.macs) for row in extra),
                    "not computed in eval mode, where only the first output is", len(extra))]  # fmt: skip


def resnet_paper_figures(analysis) -> list[Figure]:
    """The ResNet paper's "FLOPs" (He et al. 2015, Table 1: multiply-adds of the v1 layout)
    for a network of the ResNet family (:func:`is_resnet`); none for other networks."""
    if not is_resnet(analysis):
        return []
    blocks = v1_bottlenecks(analysis)
    macs = int(analysis.totals["macs"])
    if not blocks:
        return [Figure(PAPER, "", macs, [], what="multiply-adds")]
    moved = Because("stride on the first 1x1", -sum(b.saved for b in blocks),
                    "v1 downsampling bottleneck: the 1x1 at stride s, the 3x3 at stride 1",
                    len(blocks))  # fmt: skip
    return [Figure(PAPER, "", macs, [moved], what="multiply-adds")]


PAPER = "ResNet paper FLOPs (v1 layout)"

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
