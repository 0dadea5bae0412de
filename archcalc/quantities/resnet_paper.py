"""The ResNet paper's "FLOPs": multiply-adds of the v1 layout, rebuilt from the graph.

He et al. (2015), Table 1, give ResNet-18/34/50/101/152 as 1.8, 3.6, 3.8, 7.6 and 11.3
x 10^9 "FLOPs", which are multiply-adds. Their downsampling bottleneck puts the stride on
the first 1x1 convolution; torchvision (and most specs, "v1.5") put it on the 3x3. For
each such bottleneck, the 1x1 convolution evaluated with stride s has the strided map's
output positions, so its MACs scale by ``positions(3x3 output) / positions(1x1 output)``
(1/s² where s divides the size); the 3x3 at stride 1 on that smaller map has the same
output size, so the same MACs. Basic-block ResNets (18, 34) are the same in both layouts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Single-input layers that keep the shape and may sit between the two convolutions.
_BETWEEN = {"batchnorm2d", "relu", "relu6", "leaky_relu", "gelu", "silu", "elu", "selu",
            "prelu", "tanh", "sigmoid", "hardswish", "mish", "identity", "dropout"}  # fmt: skip


@dataclass(frozen=True)
class Bottleneck:
    """A downsampling bottleneck: its first 1x1 convolution and its strided convolution."""

    first: str  # path of the 1x1 convolution
    strided: str  # path of the 3x3 convolution
    macs: int  # the 1x1's MACs at stride 1 (as the spec has it)
    v1_macs: int  # at stride s, the 3x3 at stride 1

    @property
    def saved(self) -> int:
        return self.macs - self.v1_macs


def _positions(shape: tuple) -> int:
    return math.prod(int(v) for v in shape[1:])


def _is_first_1x1(node) -> bool:
    h = node.hyper
    return (node.type == "conv2d" and not h.get("table") and all(int(k) == 1 for k in h["kernel_size"])
            and all(int(s) == 1 for s in h["stride"]) and not any(int(p) for p in h["padding"])
            and not any(int(p) for p in h.get("padding_end") or ()))  # fmt: skip


def _v1_size(size: int, stride: int, kernel: int, padding: int, end: int, dilation: int) -> int:
    """The 3x3's output size at stride 1 on the map the 1x1 gives at ``stride``."""
    strided = (size - 1) // stride + 1
    return strided + padding + end - dilation * (kernel - 1)


def v1_bottlenecks(analysis) -> list[Bottleneck]:
    """Every residual bottleneck whose first convolution is 1x1 stride 1 and whose next
    convolution (through batch norms and activations only) has stride s > 1: the 1x1 reads
    the block's input, which the shortcut reads too."""
    nodes = analysis.graph.nodes
    readers = analysis.graph.consumers()
    found = []
    for node in nodes[1:]:
        h = node.hyper
        if node.type != "conv2d" or h.get("table") or all(int(s) == 1 for s in h["stride"]):
            continue
        first = nodes[node.inputs[0]]
        while first.type in _BETWEEN and len(readers[first.id]) == 1 and first.inputs:
            first = nodes[first.inputs[0]]
        if not _is_first_1x1(first) or len(readers[first.inputs[0]]) < 2:
            continue
        size = [_v1_size(int(i), int(s), int(k), int(p), int(e), int(d))
                for i, s, k, p, e, d in zip(first.shape[1:], h["stride"], h["kernel_size"],
                                            h["padding"], h["padding_end"], h["dilation"])]  # fmt: skip
        if tuple(size) != tuple(int(v) for v in node.shape[1:]):
            continue  # at stride 1 on the smaller map the 3x3 would not give this output
        row = analysis.row_of(first)
        macs = int(row.macs)
        v1 = macs // _positions(first.shape) * _positions(node.shape)
        found.append(Bottleneck(first.path, node.path, macs, v1))
    return found


def is_resnet(analysis) -> bool:
    """The ResNet family: some ``add`` merges a branch that ends in a 2-d convolution or its
    batch norm, and no convolution is grouped or depthwise (which leaves out ResNeXt, RegNet
    and MobileNet, whose papers count their own layout)."""
    nodes = analysis.graph.nodes
    residual = any(node.type == "add" and any(nodes[i].type in ("conv2d", "batchnorm2d")
                                              for i in node.inputs)
                   for node in nodes)  # fmt: skip
    return residual and all(int(n.hyper.get("groups", 1)) == 1 for n in nodes if n.type == "conv2d")
