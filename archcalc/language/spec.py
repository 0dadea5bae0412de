"""The spec language: frozen pydantic models, one per layer family.

Field names follow ``torch.nn`` so that every layer maps one-to-one onto a
PyTorch module. Every integer field takes an ``int`` or an expression string
over the declared symbols (and, inside a block, the block's parameters).
Layers are a discriminated union on ``type``; a ``type`` that is not built in
names a user-defined block.
"""

import difflib
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    Tag,
    WithJsonSchema,
    model_validator,
)

from archcalc.errors import ArchcalcError
from archcalc.language import expr

# ----------------------------------------------------------------------------- field types

#: Smallest legal value of each integer field (also applied after evaluating expressions).
FIELD_MINIMUM = {
    "out_channels": 1, "in_channels": 1, "out_features": 1, "in_features": 1,
    "kernel_size": 1, "stride": 1, "dilation": 1, "groups": 1, "padding": 0,
    "output_padding": 0, "output_size": 1, "size": 1, "times": 1, "num_features": 1,
    "normalized_shape": 1, "input": 1,
}  # fmt: skip

_EXPRESSION_SCHEMA = {
    "type": "string",
    "description": "integer expression over declared symbols: + - * / // % **, min, max, floor, ceil",
}


def _int_or_expression(value: Any, minimum: int | None) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(_expected(minimum))
    if isinstance(value, str):
        try:
            expr.parse(value)
        except ArchcalcError as err:
            raise ValueError(err.message) from None
        return value
    if minimum is not None and value < minimum:
        raise ValueError(_expected(minimum))
    if abs(value) > expr.MAX_VALUE:
        raise ValueError(f"expected an integer of at most {expr.MAX_VALUE:.0e}")
    return value


def _expected(minimum: int | None) -> str:
    bound = f" >= {minimum}" if minimum is not None else ""
    return f"expected an integer{bound} or an expression string"


def IntExpr(minimum: int | None = 1, description: str = "") -> Any:
    """An int (>= minimum) or an expression string."""

    def validate(value: Any) -> int | str:
        return _int_or_expression(value, minimum)

    int_schema: dict[str, Any] = {"type": "integer"}
    if minimum is not None:
        int_schema["minimum"] = minimum
    return Annotated[
        Union[int, str],
        PlainValidator(validate),
        WithJsonSchema({"anyOf": [int_schema, _EXPRESSION_SCHEMA]}),
    ]


def _int_or_list(value: Any, minimum: int) -> Any:
    if isinstance(value, (list, tuple)):
        if not 1 <= len(value) <= 3:
            raise ValueError("expected one value per spatial dimension (1 to 3 values)")
        return tuple(_int_or_expression(item, minimum) for item in value)
    return _int_or_expression(value, minimum)


def SizeExpr(minimum: int = 1) -> Any:
    """An int/expression, or a list of them (one per spatial dimension)."""
    one = {"anyOf": [{"type": "integer", "minimum": minimum}, _EXPRESSION_SCHEMA]}
    return Annotated[
        Any,
        PlainValidator(lambda value: _int_or_list(value, minimum)),
        WithJsonSchema({"anyOf": [*one["anyOf"], {"type": "array", "items": one, "maxItems": 3}]}),
    ]


def _padding(value: Any) -> Any:
    return value if value in ("same", "valid") else _int_or_list(value, 0)


Padding = Annotated[
    Any,
    PlainValidator(_padding),
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": ["same", "valid"]},
                {"type": "integer", "minimum": 0},
                _EXPRESSION_SCHEMA,
                {"type": "array", "items": {"anyOf": [{"type": "integer"}, _EXPRESSION_SCHEMA]}},
            ]
        }
    ),
]

Probability = Annotated[float, Field(ge=0.0, lt=1.0)]
ActivationName = Literal[
    "relu", "leaky_relu", "tanh", "sigmoid", "gelu", "elu", "selu", "softmax", "identity"
]
_ACTIVATION_FIELD = Field(
    None, description="Shorthand for an activation layer of this type right after this one."
)


class _Model(BaseModel):
    # Deferred: the recursive layer union is then generated once, inside Spec, not once per
    # composite model (that alone was ~60% of the CLI's start-up time).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Approx(_Model):
    """A published figure, rounded: the value must equal it to ``digits`` significant digits."""

    approx: float = Field(
        gt=0, description="The figure as published, e.g. 1.81e9 for '1.81 GFLOPS'."
    )
    digits: int = Field(ge=1, le=15, description="Significant digits it was published with.")


Expected = Union[IntExpr(0), Approx]


class LayerExpect(_Model):
    """Expected values for one layer item (composites: summed over their layers)."""

    output: Optional[list[IntExpr(None)]] = Field(None, description="Expected output shape.")
    weights_per_neuron: Optional[Expected] = Field(None, description="Fan-in plus bias.")
    neurons: Optional[Expected] = Field(None, description="Output units of weighted layers.")
    connections: Optional[Expected] = Field(None, description="Neurons x weights per neuron.")
    params: Optional[Expected] = Field(None, description="Independent trainable parameters.")
    macs: Optional[Expected] = Field(None, description="Multiply-accumulates, bias excluded.")


class SpecExpect(LayerExpect):
    """Expected values for the whole network."""

    weights_per_neuron: None = Field(None, description="Not applicable to a whole network.")
    flops: Optional[Expected] = Field(None, description="2 x MACs.")


class _Layer(_Model):
    """Fields every layer item has."""

    #: Fields holding integers or expressions, resolved before any arithmetic.
    EXPR_FIELDS: ClassVar[tuple[str, ...]] = ()
    name: Optional[str] = Field(None, description="Name shown in reports.")
    expect: Optional[LayerExpect] = Field(None, description="Expected values, checked by `check`.")


# ----------------------------------------------------------------------------- weighted layers


class Conv(_Layer):
    """Convolution (torch.nn.Conv1d/2d/3d)."""

    EXPR_FIELDS: ClassVar = ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                             "dilation", "groups")  # fmt: skip
    type: Literal["conv1d", "conv2d", "conv3d"]
    in_channels: Optional[IntExpr()] = Field(None, description="Checked against the input.")
    out_channels: IntExpr() = Field(description="Number of filters (output channels).")
    kernel_size: SizeExpr() = Field(description="Filter size: one value or one per dimension.")
    stride: SizeExpr() = Field(1, description="Step between filter positions.")
    padding: Padding = Field(0, description="Zero padding per side, or 'same' / 'valid'.")
    dilation: SizeExpr() = Field(1, description="Spacing between filter taps.")
    groups: IntExpr() = Field(1, description="Channel groups; must divide both channel counts.")
    bias: bool = Field(True, description="Add a learnable bias per output channel.")
    connection_table: Optional[list[list[Annotated[int, Field(strict=True, ge=0)]]]] = Field(
        None,
        description="For each output map, the input maps it sees (LeNet-5's C3); groups are the "
        "special case of contiguous equal blocks. Needs groups = 1.",
    )
    activation: Optional[ActivationName] = _ACTIVATION_FIELD


class ConvTranspose(_Layer):
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
    activation: Optional[ActivationName] = _ACTIVATION_FIELD


class Linear(_Layer):
    """Fully connected layer (torch.nn.Linear) on a flat input."""

    EXPR_FIELDS: ClassVar = ("in_features", "out_features")
    type: Literal["linear"]
    in_features: Optional[IntExpr()] = Field(None, description="Checked against the input.")
    out_features: IntExpr() = Field(description="Number of output units.")
    bias: bool = Field(True, description="Add a learnable bias per output unit.")
    activation: Optional[ActivationName] = _ACTIVATION_FIELD


# ----------------------------------------------------------------------------- pooling


class MaxPool(_Layer):
    """Max pooling (torch.nn.MaxPool1d/2d/3d)."""

    EXPR_FIELDS: ClassVar = ("kernel_size", "stride", "padding", "dilation")
    type: Literal["maxpool1d", "maxpool2d", "maxpool3d"]
    kernel_size: SizeExpr() = Field(description="Window size F.")
    stride: Optional[SizeExpr()] = Field(None, description="Window step; defaults to kernel_size.")
    padding: SizeExpr(0) = Field(0, description="Implicit -inf padding per side (<= F/2).")
    dilation: SizeExpr() = Field(1, description="Spacing between window taps.")
    ceil_mode: bool = Field(False, description="Round the output size up instead of down.")


class AvgPool(_Layer):
    """Average pooling (torch.nn.AvgPool1d/2d/3d)."""

    EXPR_FIELDS: ClassVar = ("kernel_size", "stride", "padding")
    type: Literal["avgpool1d", "avgpool2d", "avgpool3d"]
    kernel_size: SizeExpr() = Field(description="Window size F.")
    stride: Optional[SizeExpr()] = Field(None, description="Window step; defaults to kernel_size.")
    padding: SizeExpr(0) = Field(0, description="Implicit zero padding per side (<= F/2).")
    ceil_mode: bool = Field(False, description="Round the output size up instead of down.")
    count_include_pad: bool = Field(True, description="Count padding zeros in the average.")


class Subsample(_Layer):
    """LeNet-5's subsampling (S2, S4): each unit sums a window of its map, times a trainable
    coefficient, plus a trainable bias (2 parameters per map)."""

    EXPR_FIELDS: ClassVar = ("kernel_size", "stride")
    type: Literal["subsample"]
    kernel_size: SizeExpr() = Field(2, description="Window size (LeNet-5: 2x2).")
    stride: Optional[SizeExpr()] = Field(None, description="Window step; defaults to kernel_size.")
    activation: Optional[ActivationName] = _ACTIVATION_FIELD


class RBF(_Layer):
    """Euclidean radial basis function units with fixed centres (LeNet-5's output layer):
    y_i = Σ_j (x_j - w_ij)²; connections but no trainable parameters."""

    EXPR_FIELDS: ClassVar = ("out_features",)
    type: Literal["rbf"]
    out_features: IntExpr() = Field(description="Number of RBF units (classes).")


class AdaptivePool(_Layer):
    """Adaptive pooling to a fixed output size (torch.nn.AdaptiveAvgPool2d etc.)."""

    EXPR_FIELDS: ClassVar = ("output_size",)
    type: Literal[
        "adaptive_avgpool1d", "adaptive_avgpool2d", "adaptive_avgpool3d",
        "adaptive_maxpool1d", "adaptive_maxpool2d", "adaptive_maxpool3d",
    ]  # fmt: skip
    output_size: SizeExpr() = Field(description="Output size: one value or one per dimension.")


# ----------------------------------------------------------------------------- shape and normalisation


class Flatten(_Layer):
    """Flatten everything but the batch (torch.nn.Flatten)."""

    type: Literal["flatten"]


class BatchNorm(_Layer):
    """Batch normalisation over channels (torch.nn.BatchNorm1d/2d/3d)."""

    EXPR_FIELDS: ClassVar = ("num_features",)
    type: Literal["batchnorm1d", "batchnorm2d", "batchnorm3d"]
    num_features: Optional[IntExpr()] = Field(None, description="Checked against the channels.")
    eps: float = Field(1e-5, gt=0, description="Added to the variance for stability.")
    momentum: float = Field(0.1, ge=0, le=1, description="Running-statistics momentum.")
    affine: bool = Field(True, description="Learn gamma and beta (2 parameters per channel).")


class LayerNorm(_Layer):
    """Layer normalisation over the trailing dimensions (torch.nn.LayerNorm)."""

    EXPR_FIELDS: ClassVar = ("normalized_shape",)
    type: Literal["layernorm"]
    normalized_shape: Optional[SizeExpr()] = Field(
        None, description="Trailing dimensions to normalise over; default: the whole input shape."
    )
    eps: float = Field(1e-5, gt=0, description="Added to the variance for stability.")
    elementwise_affine: bool = Field(True, description="Learn a gain and a bias per element.")


class LocalResponseNorm(_Layer):
    """Local response normalisation across channels (torch.nn.LocalResponseNorm)."""

    EXPR_FIELDS: ClassVar = ("size",)
    type: Literal["local_response_norm"]
    size: IntExpr() = Field(description="Number of neighbouring channels.")
    alpha: float = Field(1e-4, description="Scale.")
    beta: float = Field(0.75, description="Exponent.")
    k: float = Field(1.0, description="Additive constant.")


class Dropout(_Layer):
    """Dropout (torch.nn.Dropout / Dropout2d): no parameters, shape unchanged."""

    type: Literal["dropout", "dropout2d"]
    p: Probability = Field(0.5, description="Probability of zeroing an element (or a channel).")


class Activation(_Layer):
    """An element-wise activation function (softmax: over the channel/feature axis)."""

    type: ActivationName
    negative_slope: Optional[float] = Field(None, description="leaky_relu only (default 0.01).")
    alpha: Optional[float] = Field(None, description="elu only (default 1.0).")

    @model_validator(mode="after")
    def _fields_match_type(self) -> "Activation":
        if self.negative_slope is not None and self.type != "leaky_relu":
            raise ValueError(f"negative_slope applies to leaky_relu only, not {self.type}")
        if self.alpha is not None and self.type != "elu":
            raise ValueError(f"alpha applies to elu only, not {self.type}")
        return self


# ----------------------------------------------------------------------------- composites

LayerList = list["Layer"]


class Residual(_Layer):
    """``body(x) + shortcut(x)``; the two shapes must match."""

    type: Literal["residual"]
    body: LayerList = Field(min_length=1, description="The residual branch F(x).")
    shortcut: LayerList = Field(
        default_factory=list, description="Shortcut layers; [] or omitted = identity."
    )
    activation: Optional[ActivationName] = Field(None, description="Applied after the sum.")


class Concat(_Layer):
    """Branches applied to the same input, concatenated along channels."""

    type: Literal["concat"]
    branches: list[LayerList] = Field(
        min_length=1, description="Layer lists; [] = identity. All dims but channels must match."
    )


class Repeat(_Layer):
    """``layers`` applied ``times`` times in sequence."""

    EXPR_FIELDS: ClassVar = ("times",)
    type: Literal["repeat"]
    times: IntExpr() = Field(description="How many times (must be a number once substituted).")
    layers: LayerList = Field(min_length=1, description="The repeated layers.")


class BlockCall(_Layer):
    """A user-defined block (template) from ``blocks``; its params are given as fields."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)
    __pydantic_extra__: dict[str, IntExpr(None)] = Field(init=False)
    type: str = Field(description="The name of a block defined under `blocks`.")


LAYER_CLASSES: tuple[type[_Layer], ...] = (
    Conv, ConvTranspose, Linear, MaxPool, AvgPool, Subsample, RBF, AdaptivePool, Flatten, BatchNorm,
    LayerNorm, LocalResponseNorm, Dropout, Activation, Residual, Concat, Repeat,
)  # fmt: skip
#: type name -> model class, for every built-in layer type.
BUILTIN_TYPES: dict[str, type[_Layer]] = {
    name: cls for cls in LAYER_CLASSES for name in cls.model_fields["type"].annotation.__args__
}
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


Layer = Annotated[
    Union[tuple(Annotated[cls, Tag(cls.__name__)] for cls in (*LAYER_CLASSES, BlockCall))],
    Discriminator(
        _layer_tag,
        custom_error_type="missing_type",
        custom_error_message="each layer needs a 'type' (a built-in layer type or a block name)",
    ),
]

# ----------------------------------------------------------------------------- the spec

SymbolName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=64)]


class Block(_Model):
    """A user-defined layer type: a layer list with named parameters."""

    description: Optional[str] = Field(None, description="What the block is.")
    params: list[SymbolName] = Field(
        default_factory=list, description="Parameter names, usable as symbols inside the block."
    )
    layers: LayerList = Field(min_length=1, description="The block's layers.")


class Spec(_Model):
    """A network: input shape and a list of layers."""

    name: str = Field(description="Name of the network.")
    description: Optional[str] = Field(None, description="Free text.")
    symbols: dict[
        SymbolName, Optional[Annotated[int, Field(strict=True, ge=0, le=expr.MAX_VALUE)]]
    ] = Field(
        default_factory=dict,
        description="Names usable in expressions: an int (>= 0) is a default value, null a free symbol (a positive integer).",
    )
    input: list[IntExpr()] = Field(
        min_length=1, max_length=4, description="Input shape, channels first, no batch."
    )
    expect: Optional[SpecExpect] = Field(None, description="Expected totals, checked by `check`.")
    blocks: dict[SymbolName, Block] = Field(
        default_factory=dict, description="User-defined layer types (templates)."
    )
    layers: LayerList = Field(min_length=1, description="The layers, in execution order.")

    @model_validator(mode="after")
    def _check_names(self) -> "Spec":
        from archcalc.language.references import check_references

        check_references(self)
        return self


def suggest(name: str, choices) -> str:
    """`` (did you mean 'x'?)`` when a close match exists, else ''."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
