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
        if self.type.startswith("conv") and self.hyper.get("table"):
            return "table_conv"  # built as per-map F.conv2d calls, not an nn.Conv2d
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


def macs_again(layer: Layer) -> int:
    """The second FLOP of every multiply-accumulate (a MAC counted as 2 FLOPs): ``MACs``."""
    return layer.macs


def kernel_elements(layer: Layer) -> int:
    """The taps of a convolution kernel: ``Π kernel_size``."""
    return numel(tuple(int(k) for k in layer.hyper["kernel_size"]))


def conv_parameters(layer: Layer) -> int:
    """A (transposed) convolution's parameters: ``C_in·C_out/groups·Π kernel + C_out·bias``."""
    c_in, c_out = int(layer.input[0]), int(layer.output[0])
    weights = c_in * c_out // int(layer.hyper["groups"]) * kernel_elements(layer)
    return weights + (c_out if layer.hyper.get("bias", True) else 0)


def parameters_per_position(layer: Layer) -> int:
    """torchinfo's conv rule on a transposed convolution: every parameter once per output
    position, ``params·Π output spatial − MACs`` (the MACs are not that)."""
    return conv_parameters(layer) * numel(layer.output[1:]) - layer.macs


def transpose_as_conv(layer: Layer) -> int:
    """A transposed convolution counted like a convolution, per output element:
    ``numel(output)·C_in/groups·Π kernel − MACs``."""
    per_output = int(layer.input[0]) // int(layer.hyper["groups"]) * kernel_elements(layer)
    return numel(layer.output) * per_output - layer.macs


def transpose_as_conv_and_padding(layer: Layer) -> int:
    """torchscan: as :func:`transpose_as_conv`, plus 4 operations per spatial dimension for
    the output padding: ``+ 4·dims``."""
    return transpose_as_conv(layer) + 4 * (len(layer.input) - 1)


def _calflops_transpose(layer: Layer) -> tuple[int, int]:
    """calflops' transposed convolution (its MACs, its bias FLOPs): ``C_out`` read from the
    weight's second dimension (``C_out/groups``), positions from the input, and the bias
    over sizes from the *convolution* formula ``(i + 2p − d(k − 1) − 1)//s + 1``."""
    h = layer.hyper
    groups = int(h["groups"])
    c_out = int(layer.output[0]) // groups
    macs = kernel_elements(layer) * int(layer.input[0]) * (c_out // groups)
    macs *= numel(layer.input[1:])
    sizes = [(int(i) + 2 * int(p) - (int(d) * (int(k) - 1) + 1)) // int(s) + 1
             for i, p, d, k, s in zip(layer.input[1:], h["padding"], h["dilation"],
                                      h["kernel_size"], h["stride"])]  # fmt: skip
    return macs, c_out * numel(tuple(sizes)) if h.get("bias", True) else 0


def calflops_transpose_macs(layer: Layer) -> int:
    """calflops' MACs of a transposed convolution: ``C_in·((C_out/groups)//groups)·Π kernel
    ·Π input spatial − MACs`` (equal to archcalc's with one group)."""
    return _calflops_transpose(layer)[0] - layer.macs


def calflops_transpose_flops(layer: Layer) -> int:
    """calflops' FLOPs of a transposed convolution: twice its MACs plus
    ``C_out/groups·Π conv-formula sizes`` for the bias, ``− MACs``."""
    macs, bias = _calflops_transpose(layer)
    return 2 * macs + bias - layer.macs


def prelu_parameters(layer: Layer) -> int:
    """A PReLU's slopes once per sample (torchinfo): ``num_parameters``."""
    return int(layer.hyper.get("num_parameters", 1))


def subsample_parameters(layer: Layer) -> int:
    """LeNet's subsampling counted as its parameters (torchinfo): ``2·C − MACs``."""
    return 2 * int(layer.input[0]) - layer.macs


def table_parameters_per_map(layer: Layer) -> int:
    """torchinfo on a table convolution: the per-map weights (``weight_0``, ...) fall under
    its RNN rule (parameters × output channels), the bias under its conv rule (× output
    positions): ``bias·Π output spatial + weights·C_out − MACs``."""
    table = layer.hyper["table"]
    weights = sum(len(maps) for maps in table) * kernel_elements(layer)
    bias = len(table) * numel(layer.output[1:]) if layer.hyper.get("bias", True) else 0
    return bias + weights * int(layer.output[0]) - layer.macs


def output_positions(layer: Layer) -> int:
    """calflops' upsampling: the product of the ``size`` argument, the output's spatial
    sizes, channels not counted: ``Π output spatial``."""
    return numel(layer.output[1:])


def one_per_input_2d(layer: Layer) -> int:
    """fvcore's adaptive average pooling, handled for 2-d maps only (aten's
    ``adaptive_avg_pool2d``): ``numel(input)`` on a 2-d map, else 0."""
    return numel(layer.input) if len(layer.input) == 3 else 0


def fvcore_upsample(layer: Layer) -> int:
    """fvcore handles ``upsample_nearest2d`` (1 per output element) and
    ``upsample_bilinear2d`` (4); other modes and 1-d/3-d maps count 0."""
    per_element = {"nearest": 1, "bilinear": 4}.get(layer.hyper.get("mode", "nearest"), 0)
    return numel(layer.output) * per_element if len(layer.input) == 3 else 0


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
