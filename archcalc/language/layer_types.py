"""The layer types of the spec language: one frozen pydantic model per family.

Field names follow ``torch.nn`` so that every layer maps one-to-one onto a
PyTorch module. Layers are a discriminated union on ``type``; a ``type`` that is
not built in names a user-defined block (:class:`BlockCall`).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import ConfigDict, Discriminator, Field, Tag

from archcalc.language.fields import (
    ActivationName,
    ActivationRef,
    IntExpr,
    Model,
    Padding,
    Probability,
    SizeExpr,
    TensorName,
    item_check,
)


class Approx(Model):
    """A published figure, rounded: the value must equal it to ``digits`` significant digits."""

    approx: float = Field(
        gt=0, description="The figure as published, e.g. 1.81e9 for '1.81 GFLOPS'."
    )
    digits: int = Field(ge=1, le=15, description="Significant digits it was published with.")


Expected = Union[IntExpr(0), Approx]


class LayerExpect(Model):
    """Expected values for one layer item (composites: summed over their layers)."""

    output: Optional[list[IntExpr(None)]] = Field(None, description="Expected output shape.")
    weights_per_neuron: Optional[Expected] = Field(None, description="Fan-in plus bias.")
    neurons: Optional[Expected] = Field(None, description="Output units of weighted layers.")
    connections: Optional[Expected] = Field(None, description="Neurons x weights per neuron.")
    params: Optional[Expected] = Field(None, description="Independent trainable parameters.")
    macs: Optional[Expected] = Field(None, description="Multiply-accumulates, bias excluded.")


_ACTIVATION_FIELD = Field(
    None,
    description="Shorthand for an activation layer of this type right after this one (or a "
    "block parameter holding an activation name).",
)


class Layer(Model):
    """Fields every layer item has."""

    #: Fields holding integers or expressions, resolved before any arithmetic.
    EXPR_FIELDS: ClassVar[tuple[str, ...]] = ()
    #: Fields holding a probability or an expression that may be a fraction.
    PROBABILITY_FIELDS: ClassVar[tuple[str, ...]] = ()
    #: "none" for a source that reads no tensor (``parameter``).
    ARITY: ClassVar[str] = "one"
    name: Optional[str] = Field(
        None, description="Name shown in reports; later items can read this output by it."
    )
    expect: Optional[LayerExpect] = Field(None, description="Expected values, checked by `check`.")
    input: Optional[TensorName] = Field(
        None,
        description="Read this named earlier tensor instead of the previous item's output "
        "(`input` is the network's input, or inside a block the block's).",
    )
    when: Optional[str] = Field(
        None,
        description="Include the item only where this condition holds: comparisons, and/or/not "
        "over symbols, block parameters and the input sizes C_in, H_in, W_in, L_in, D_in.",
    )


# ----------------------------------------------------------------------------- weighted layers


class Conv(Layer):
    """Convolution (torch.nn.Conv1d/2d/3d)."""

    EXPR_FIELDS: ClassVar = ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                             "dilation", "groups")  # fmt: skip
    type: Literal["conv1d", "conv2d", "conv3d"]
    in_channels: Optional[IntExpr()] = Field(None, description="Checked against the input.")
    out_channels: IntExpr() = Field(description="Number of filters (output channels).")
    kernel_size: SizeExpr() = Field(description="Filter size: one value or one per dimension.")
    stride: SizeExpr() = Field(1, description="Step between filter positions.")
    padding: Padding = Field(0, description="Zero padding per side, pairs, or a padding word.")
    dilation: SizeExpr() = Field(1, description="Spacing between filter taps.")
    groups: IntExpr() = Field(1, description="Channel groups; must divide both channel counts.")
    bias: bool = Field(True, description="Add a learnable bias per output channel.")
    connection_table: Optional[list[list[Annotated[int, Field(strict=True, ge=0)]]]] = Field(
        None,
        description="For each output map, the input maps it sees (LeNet-5's C3); groups are the "
        "special case of contiguous equal blocks. Needs groups = 1.",
    )
    activation: Optional[ActivationRef] = _ACTIVATION_FIELD


class ConvTranspose(Layer):
    """Transposed convolution (torch.nn.ConvTranspose1d/2d/3d)."""

    EXPR_FIELDS: ClassVar = ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                             "output_padding", "dilation", "groups")  # fmt: skip
    type: Literal["conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
    in_channels: Optional[IntExpr()] = Field(None, description="Checked against the input.")
    out_channels: IntExpr() = Field(description="Output channels.")
    kernel_size: SizeExpr() = Field(description="Filter size: one value or one per dimension.")
    stride: SizeExpr() = Field(1, description="Upsampling step.")
    padding: SizeExpr(0) = Field(0, description="Implicit padding removed from each side.")
    output_padding: SizeExpr(0) = Field(0, description="Extra size added on one side.")
    dilation: SizeExpr() = Field(1, description="Spacing between filter taps.")
    groups: IntExpr() = Field(1, description="Channel groups; must divide both channel counts.")
    bias: bool = Field(True, description="Add a learnable bias per output channel.")
    activation: Optional[ActivationRef] = _ACTIVATION_FIELD


class Linear(Layer):
    """Fully connected layer (torch.nn.Linear) on the last dimension."""

    EXPR_FIELDS: ClassVar = ("in_features", "out_features")
    type: Literal["linear"]
    in_features: Optional[IntExpr()] = Field(None, description="Checked against the input.")
    out_features: IntExpr() = Field(description="Number of output units.")
    bias: bool = Field(True, description="Add a learnable bias per output unit.")
    activation: Optional[ActivationRef] = _ACTIVATION_FIELD


class MultiheadAttention(Layer):
    """Self-attention on tokens [L, E] (torch.nn.MultiheadAttention, batch_first)."""

    EXPR_FIELDS: ClassVar = ("embed_dim", "num_heads")
    PROBABILITY_FIELDS: ClassVar = ("dropout",)
    type: Literal["multihead_attention"]
    embed_dim: Optional[IntExpr()] = Field(None, description="E; checked against the input.")
    num_heads: IntExpr() = Field(description="Heads; must divide embed_dim.")
    bias: bool = Field(True, description="Biases on the input and output projections.")
    dropout: Probability = Field(0.0, description="Dropout on the attention weights.")


# ----------------------------------------------------------------------------- pooling


class MaxPool(Layer):
    """Max pooling (torch.nn.MaxPool1d/2d/3d)."""

    EXPR_FIELDS: ClassVar = ("kernel_size", "stride", "padding", "dilation")
    type: Literal["maxpool1d", "maxpool2d", "maxpool3d"]
    kernel_size: SizeExpr() = Field(description="Window size F.")
    stride: Optional[SizeExpr()] = Field(None, description="Window step; defaults to kernel_size.")
    padding: SizeExpr(0) = Field(0, description="Implicit -inf padding per side (<= F/2).")
    dilation: SizeExpr() = Field(1, description="Spacing between window taps.")
    ceil_mode: bool = Field(False, description="Round the output size up instead of down.")


class AvgPool(Layer):
    """Average pooling (torch.nn.AvgPool1d/2d/3d)."""

    EXPR_FIELDS: ClassVar = ("kernel_size", "stride", "padding")
    type: Literal["avgpool1d", "avgpool2d", "avgpool3d"]
    kernel_size: SizeExpr() = Field(description="Window size F.")
    stride: Optional[SizeExpr()] = Field(None, description="Window step; defaults to kernel_size.")
    padding: SizeExpr(0) = Field(0, description="Implicit zero padding per side (<= F/2).")
    ceil_mode: bool = Field(False, description="Round the output size up instead of down.")
    count_include_pad: bool = Field(True, description="Count padding zeros in the average.")


class Subsample(Layer):
    """LeNet-5's subsampling (S2, S4): each unit sums a window of its map, times a trainable
    coefficient, plus a trainable bias (2 parameters per map)."""

    EXPR_FIELDS: ClassVar = ("kernel_size", "stride")
    type: Literal["subsample"]
    kernel_size: SizeExpr() = Field(2, description="Window size (LeNet-5: 2x2).")
    stride: Optional[SizeExpr()] = Field(None, description="Window step; defaults to kernel_size.")
    activation: Optional[ActivationRef] = _ACTIVATION_FIELD


class RBF(Layer):
    """Euclidean radial basis function units with fixed centres (LeNet-5's output layer):
    y_i = Σ_j (x_j - w_ij)²; connections but no trainable parameters."""

    EXPR_FIELDS: ClassVar = ("out_features",)
    type: Literal["rbf"]
    out_features: IntExpr() = Field(description="Number of RBF units (classes).")


class AdaptivePool(Layer):
    """Adaptive pooling to a fixed output size (torch.nn.AdaptiveAvgPool2d etc.)."""

    EXPR_FIELDS: ClassVar = ("output_size",)
    type: Literal[
        "adaptive_avgpool1d", "adaptive_avgpool2d", "adaptive_avgpool3d",
        "adaptive_maxpool1d", "adaptive_maxpool2d", "adaptive_maxpool3d",
    ]  # fmt: skip
    output_size: SizeExpr() = Field(description="Output size: one value or one per dimension.")


# ----------------------------------------------------------------------------- normalisation


class BatchNorm(Layer):
    """Batch normalisation over channels (torch.nn.BatchNorm1d/2d/3d)."""

    EXPR_FIELDS: ClassVar = ("num_features",)
    type: Literal["batchnorm1d", "batchnorm2d", "batchnorm3d"]
    num_features: Optional[IntExpr()] = Field(None, description="Checked against the channels.")
    eps: float = Field(1e-5, gt=0, description="Added to the variance for stability.")
    momentum: float = Field(0.1, ge=0, le=1, description="Running-statistics momentum.")
    affine: bool = Field(True, description="Learn gamma and beta (2 parameters per channel).")
    activation: Optional[ActivationRef] = _ACTIVATION_FIELD


class InstanceNorm(Layer):
    """Instance normalisation per sample and channel (torch.nn.InstanceNorm1d/2d/3d)."""

    EXPR_FIELDS: ClassVar = ("num_features",)
    type: Literal["instance_norm1d", "instance_norm2d", "instance_norm3d"]
    num_features: Optional[IntExpr()] = Field(None, description="Checked against the channels.")
    eps: float = Field(1e-5, gt=0, description="Added to the variance for stability.")
    momentum: float = Field(0.1, ge=0, le=1, description="Running-statistics momentum.")
    affine: bool = Field(False, description="Learn gamma and beta (PyTorch's default: no).")
    track_running_stats: bool = Field(False, description="Keep running statistics (buffers).")
    activation: Optional[ActivationRef] = _ACTIVATION_FIELD


class GroupNorm(Layer):
    """Group normalisation (torch.nn.GroupNorm): channels split into groups."""

    EXPR_FIELDS: ClassVar = ("num_groups", "num_channels")
    type: Literal["group_norm"]
    num_groups: IntExpr() = Field(description="Groups; must divide the channels.")
    num_channels: Optional[IntExpr()] = Field(None, description="Checked against the channels.")
    eps: float = Field(1e-5, gt=0, description="Added to the variance for stability.")
    affine: bool = Field(True, description="Learn gamma and beta per channel.")
    activation: Optional[ActivationRef] = _ACTIVATION_FIELD


class LayerNorm(Layer):
    """Layer normalisation over the trailing dimensions (torch.nn.LayerNorm)."""

    EXPR_FIELDS: ClassVar = ("normalized_shape",)
    type: Literal["layernorm"]
    normalized_shape: Optional[SizeExpr()] = Field(
        None, description="Trailing dimensions to normalise over; default: the whole input shape."
    )
    eps: float = Field(1e-5, gt=0, description="Added to the variance for stability.")
    elementwise_affine: bool = Field(True, description="Learn a gain and a bias per element.")
    activation: Optional[ActivationRef] = _ACTIVATION_FIELD


class LocalResponseNorm(Layer):
    """Local response normalisation across channels (torch.nn.LocalResponseNorm)."""

    EXPR_FIELDS: ClassVar = ("size",)
    type: Literal["local_response_norm"]
    size: IntExpr() = Field(description="Number of neighbouring channels.")
    alpha: float = Field(1e-4, description="Scale.")
    beta: float = Field(0.75, description="Exponent.")
    k: float = Field(1.0, description="Additive constant.")


class Dropout(Layer):
    """Dropout (torch.nn.Dropout / Dropout2d): no parameters, shape unchanged."""

    PROBABILITY_FIELDS: ClassVar = ("p",)
    type: Literal["dropout", "dropout2d"]
    p: Probability = Field(0.5, description="Probability of zeroing an element (or a channel).")


class StochasticDepth(Layer):
    """Stochastic depth (torchvision.ops.StochasticDepth): drops whole samples ('row') or the
    whole batch ('batch') in training; no parameters, shape unchanged."""

    PROBABILITY_FIELDS: ClassVar = ("p",)
    type: Literal["stochastic_depth"]
    p: Probability = Field(description="Probability of dropping.")
    mode: Literal["row", "batch"] = Field("row", description="Drop per sample or per batch.")


# ----------------------------------------------------------------------------- activations


class Activation(Layer):
    """An element-wise activation function (softmax, log_softmax: over ``dim``)."""

    type: ActivationName
    negative_slope: Optional[float] = Field(None, description="leaky_relu only (default 0.01).")
    alpha: Optional[float] = Field(None, description="elu only (default 1.0).")
    beta: Optional[float] = Field(None, description="softplus only (default 1.0).")
    threshold: Optional[float] = Field(None, description="softplus only (default 20).")
    min_val: Optional[float] = Field(None, description="hardtanh only (default -1).")
    max_val: Optional[float] = Field(None, description="hardtanh only (default 1).")
    dim: Optional[int] = Field(
        None, description="softmax / log_softmax: the per-sample dimension (default 0)."
    )

    _fields_match_type = item_check("activation_fields")


class PReLU(Layer):
    """Parametric ReLU (torch.nn.PReLU): one learned slope, or one per channel."""

    EXPR_FIELDS: ClassVar = ("num_parameters",)
    type: Literal["prelu"]
    num_parameters: IntExpr() = Field(1, description="1, or the number of channels.")
    init: float = Field(0.25, description="Initial slope.")


# ----------------------------------------------------------------------------- shape only


class Flatten(Layer):
    """Flatten per-sample dimensions start_dim..end_dim into one (torch.nn.Flatten, whose
    start_dim=1 counts the batch: here 0 is the first per-sample dimension)."""

    type: Literal["flatten"]
    start_dim: int = Field(0, description="First per-sample dimension to flatten.")
    end_dim: int = Field(-1, description="Last per-sample dimension to flatten.")


class Reshape(Layer):
    """Reshape the per-sample dimensions (torch.reshape); one entry may be -1."""

    EXPR_FIELDS: ClassVar = ("shape",)
    type: Literal["reshape"]
    shape: list[IntExpr(-1)] = Field(min_length=1, max_length=6, description="The new shape.")


class Permute(Layer):
    """Reorder the per-sample dimensions (torch.permute without the batch)."""

    type: Literal["permute"]
    dims: list[int] = Field(min_length=1, max_length=6, description="A permutation of 0..n-1.")


class Transpose(Layer):
    """Swap two per-sample dimensions (torch.transpose)."""

    type: Literal["transpose"]
    dim0: int = Field(description="First dimension.")
    dim1: int = Field(description="Second dimension.")


class Unsqueeze(Layer):
    """Insert a dimension of size 1 (torch.unsqueeze)."""

    type: Literal["unsqueeze"]
    dim: int = Field(description="Where the new dimension goes.")


class Narrow(Layer):
    """A slice ``start .. start + length - 1`` of one dimension (torch.narrow)."""

    EXPR_FIELDS: ClassVar = ("start", "length")
    type: Literal["narrow"]
    dim: int = Field(description="The per-sample dimension.")
    start: IntExpr(0) = Field(description="First index kept.")
    length: IntExpr() = Field(description="How many indices are kept.")


class ChannelShuffle(Layer):
    """Interleave channel groups (torch.nn.ChannelShuffle, ShuffleNet)."""

    EXPR_FIELDS: ClassVar = ("groups",)
    type: Literal["channel_shuffle"]
    groups: IntExpr() = Field(description="Groups; must divide the channels.")


class Upsample(Layer):
    """Upsampling (torch.nn.Upsample): to ``size``, or by an integer ``scale_factor``."""

    EXPR_FIELDS: ClassVar = ("size", "scale_factor")
    type: Literal["upsample"]
    size: Optional[SizeExpr()] = Field(None, description="Output size per spatial dimension.")
    scale_factor: Optional[SizeExpr()] = Field(None, description="Integer factor per dimension.")
    mode: Literal["nearest", "linear", "bilinear", "bicubic", "trilinear"] = Field(
        "nearest", description="Interpolation."
    )
    align_corners: Optional[bool] = Field(None, description="As in torch (linear modes only).")

    _one_of = item_check("size_or_scale_factor")


class PixelShuffle(Layer):
    """Rearrange [C·r², H, W] into [C, H·r, W·r] (torch.nn.PixelShuffle)."""

    EXPR_FIELDS: ClassVar = ("upscale_factor",)
    type: Literal["pixel_shuffle"]
    upscale_factor: IntExpr() = Field(description="r.")


class ZeroPad(Layer):
    """Zero padding of the spatial dimensions (torch.nn.ZeroPad1d/2d/3d)."""

    EXPR_FIELDS: ClassVar = ("padding",)
    type: Literal["zero_pad"]
    padding: Padding = Field(description="Per side: one value, one per dimension, or pairs.")


class CenterCrop(Layer):
    """Crop the spatial dimensions around the centre (torchvision's center_crop; U-Net's skips)."""

    EXPR_FIELDS: ClassVar = ("size",)
    type: Literal["center_crop"]
    size: Optional[SizeExpr()] = Field(
        None, description="Output size: one value or one per spatial dimension."
    )
    like: Optional[TensorName] = Field(
        None,
        description="Crop to the spatial size of this named tensor (U-Net: the up-sampled map).",
    )

    _one_of = item_check("size_or_like")


class Mean(Layer):
    """Mean over per-sample dimensions (torch.mean)."""

    type: Literal["mean"]
    dims: list[int] = Field(min_length=1, max_length=6, description="Dimensions to average.")
    keepdim: bool = Field(False, description="Keep them with size 1.")


# ----------------------------------------------------------------------------- sources and merges


class Parameter(Layer):
    """A learned tensor of a given shape (a class token, a position embedding); reads no input."""

    ARITY: ClassVar = "none"
    EXPR_FIELDS: ClassVar = ("shape",)
    type: Literal["parameter"]
    shape: list[IntExpr()] = Field(min_length=1, max_length=6, description="Its shape.")
    init: float = Field(
        0.0, description="The value every element starts at (ConvNeXt's layer scale: 1e-6)."
    )
    std: float = Field(
        0.0,
        ge=0,
        description="Plus Gaussian noise of this std at the start (ViT's position "
        "embedding: 0.02); used by init propagation and verify.",
    )


_INPUTS = Field(min_length=2, description="Names of the tensors it merges.")


class Add(Layer):
    """Element-wise sum with PyTorch broadcasting."""

    ARITY: ClassVar = "many"
    type: Literal["add"]
    inputs: list[TensorName] = _INPUTS
    activation: Optional[ActivationRef] = _ACTIVATION_FIELD


class Mul(Layer):
    """Element-wise product with PyTorch broadcasting (a [C,1,1] gate times [C,H,W])."""

    ARITY: ClassVar = "many"
    type: Literal["mul"]
    inputs: list[TensorName] = _INPUTS


class MatMul(Layer):
    """torch.matmul on the per-sample dimensions."""

    ARITY: ClassVar = "many"
    type: Literal["matmul"]
    inputs: list[TensorName] = Field(min_length=2, max_length=2, description="The two factors.")


LayerList = list["AnyLayer"]


class Concat(Layer):
    """Concatenation along ``dim``: of named ``inputs``, or of ``branches`` applied to the same
    input (the short form)."""

    type: Literal["concat"]
    branches: Optional[list[LayerList]] = Field(
        None, min_length=1, description="Layer lists; [] = identity. All dims but `dim` must match."
    )
    inputs: Optional[list[TensorName]] = Field(
        None, min_length=2, description="Names of the tensors to concatenate."
    )
    dim: int = Field(0, description="The per-sample dimension (0: channels).")

    _one_form = item_check("branches_or_inputs")


class Residual(Layer):
    """``body(x) + shortcut(x)``; the two shapes must match."""

    type: Literal["residual"]
    body: LayerList = Field(min_length=1, description="The residual branch F(x).")
    shortcut: LayerList = Field(
        default_factory=list, description="Shortcut layers; [] or omitted = identity."
    )
    activation: Optional[ActivationRef] = Field(None, description="Applied after the sum.")


class Repeat(Layer):
    """``layers`` applied ``times`` times in sequence (0: not at all)."""

    EXPR_FIELDS: ClassVar = ("times",)
    type: Literal["repeat"]
    times: IntExpr(0) = Field(description="How many times (must be a number once substituted).")
    layers: LayerList = Field(min_length=1, description="The repeated layers.")


class BlockCall(Layer):
    """A user-defined block (template) from ``blocks``; its params are given as fields."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)
    __pydantic_extra__: dict[str, IntExpr(None)] = Field(init=False)
    type: str = Field(description="The name of a block defined under `blocks`.")


LAYER_CLASSES: tuple[type[Layer], ...] = (
    Conv, ConvTranspose, Linear, MultiheadAttention, MaxPool, AvgPool, Subsample, RBF,
    AdaptivePool, BatchNorm, InstanceNorm, GroupNorm, LayerNorm, LocalResponseNorm, Dropout,
    StochasticDepth, Activation, PReLU, Flatten, Reshape, Permute, Transpose, Unsqueeze, Narrow,
    ChannelShuffle, Upsample, PixelShuffle, ZeroPad, CenterCrop, Mean, Parameter, Add, Mul, MatMul,
    Concat, Residual, Repeat,
)  # fmt: skip
#: type name -> model class, for every built-in layer type.
BUILTIN_TYPES: dict[str, type[Layer]] = {
    name: cls for cls in LAYER_CLASSES for name in cls.model_fields["type"].annotation.__args__
}
COMPOSITE_TYPES = frozenset({"residual", "repeat"})
_TAGS = {name: cls.__name__ for name, cls in BUILTIN_TYPES.items()}
UNION_TAGS = frozenset(_TAGS.values()) | {"BlockCall"}


def _layer_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("type")
    else:
        kind = getattr(value, "type", None)
    if not isinstance(kind, str):
        return None
    return _TAGS.get(kind, "BlockCall")


AnyLayer = Annotated[
    Union[tuple(Annotated[cls, Tag(cls.__name__)] for cls in (*LAYER_CLASSES, BlockCall))],
    Discriminator(
        _layer_tag,
        custom_error_type="missing_type",
        custom_error_message="each layer needs a 'type' (a built-in layer type or a block name)",
    ),
]
