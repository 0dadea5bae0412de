"""The rule functions of ``archcalc conventions``: what one layer adds to archcalc's MACs.

Each function takes one graph node as a hooking tool sees its module (:class:`Layer`: one
``torch.nn`` module per node, batch 1, evaluation mode, as ``verify.build`` builds it) and
returns the count the tool adds to (negative: leaves out of) archcalc's MACs for it; the
formula is in its docstring. The tables of which tool applies which rule to which layer
type are in :mod:`archcalc.quantities.tool_rules`. No torch import here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Mapping


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
            raise NoRule(f"upsample mode {mode!r}")
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


class NoRule(Exception):
    """Raised by a rule where the tool's behaviour for this layer is not known to archcalc."""
