"""What the importer's parts share: the torch.nn layers and functions the spec language has,
and small helpers for sizes, dimensions and refusals."""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

#: torch.nn layers that are one spec item each (traced as leaves).
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_ACTIVATIONS = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.LeakyReLU: "leaky_relu", nn.ELU: "elu",
    nn.SELU: "selu", nn.GELU: "gelu", nn.SiLU: "silu", nn.Mish: "mish",
    nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid", nn.Hardtanh: "hardtanh",
    nn.Softplus: "softplus", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.Softmax: "softmax",
    nn.LogSoftmax: "log_softmax", nn.Identity: "identity", nn.PReLU: "prelu",
}  # fmt: skip
_FUNCTIONS = {
    F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", F.leaky_relu: "leaky_relu",
    F.elu: "elu", F.selu: "selu", F.gelu: "gelu", F.silu: "silu", F.mish: "mish",
    F.hardswish: "hardswish", F.hardsigmoid: "hardsigmoid", F.hardtanh: "hardtanh",
    torch.tanh: "tanh", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", F.tanh: "tanh",
    F.softplus: "softplus",
}  # fmt: skip
_METHODS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}
_POOLS = {nn.MaxPool1d: "maxpool1d", nn.MaxPool2d: "maxpool2d", nn.MaxPool3d: "maxpool3d",
          nn.AvgPool1d: "avgpool1d", nn.AvgPool2d: "avgpool2d", nn.AvgPool3d: "avgpool3d"}  # fmt: skip
_ADAPTIVE = {nn.AdaptiveAvgPool1d: "adaptive_avgpool1d", nn.AdaptiveAvgPool2d: "adaptive_avgpool2d",
             nn.AdaptiveAvgPool3d: "adaptive_avgpool3d", nn.AdaptiveMaxPool1d: "adaptive_maxpool1d",
             nn.AdaptiveMaxPool2d: "adaptive_maxpool2d", nn.AdaptiveMaxPool3d: "adaptive_maxpool3d"}  # fmt: skip
_NORMS = {nn.BatchNorm1d: "batchnorm1d", nn.BatchNorm2d: "batchnorm2d", nn.BatchNorm3d: "batchnorm3d",
          nn.InstanceNorm1d: "instance_norm1d", nn.InstanceNorm2d: "instance_norm2d",
          nn.InstanceNorm3d: "instance_norm3d"}  # fmt: skip
_LEAF_TYPES = (*_CONV, *_CONV_T, nn.Linear, nn.MultiheadAttention, nn.LayerNorm, nn.GroupNorm,
               nn.LocalResponseNorm, nn.Dropout, nn.Dropout2d, nn.Flatten, nn.Upsample,
               nn.PixelShuffle, nn.ChannelShuffle, nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d,
               *_ACTIVATIONS, *_POOLS, *_ADAPTIVE, *_NORMS)  # fmt: skip
#: Leaves known by class name (so that torchvision need not be importable here).
_LEAF_NAMES = {"StochasticDepth", "Permute"}
_SKIP_FUNCTIONS = {torch._assert, getattr, operator.eq, operator.ne, operator.floordiv,
                   operator.mul, operator.sub, operator.truediv, len}  # fmt: skip


def _size(values: Any) -> Any:
    """A size tuple as the spec writes it: one int when all are equal."""
    values = tuple(values) if isinstance(values, (tuple, list)) else (values,)
    return values[0] if len(set(values)) == 1 else list(values)


def _dim(d: int, rank: int) -> int:
    """A torch dimension (with the batch) as a per-sample one; negative ones stay."""
    return d if d < 0 else d - 1


class _Node:
    """A stand-in fx node for the extra item an operation becomes (a select's reshape)."""

    def __init__(self, name: str):
        self.name = name


class _Unsupported(Exception):
    pass


def _is_tensor_tuple(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in value)


def _where(n: fx.Node) -> str:
    """A node as a problem names it: a module call its path, an operation its name and the
    innermost of your modules it sits in (``roll in body.0``)."""
    if n.op == "call_module":
        return str(n.target)
    stack = (getattr(n, "meta", {}).get("nn_module_stack") or {}).values()
    mine = [path for path, kind in stack if path and not str(getattr(kind, "__module__", kind))
            .startswith("torch.nn")]  # fmt: skip
    return f"{n.name} in {mine[-1]}" if mine else n.name


def _describe(n: fx.Node) -> str:
    if n.op == "call_module":
        return "module"
    target = n.target
    name = (
        str(target)
        if isinstance(target, torch._ops.OpOverload)
        else getattr(target, "__name__", str(target))
    )
    return f"{'method' if n.op == 'call_method' else 'function'} {name}"
