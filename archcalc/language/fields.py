"""Field types of the spec language: integers or expressions, sizes, padding, names.

Every integer field takes an ``int`` or an expression string over the declared
symbols; the strings are parsed here (so a syntax error is reported at load
time) and evaluated during elaboration.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema

from archcalc.errors import ArchcalcError
from archcalc.language import expr

#: Smallest legal value of each integer field (also applied after evaluating expressions).
FIELD_MINIMUM = {
    "out_channels": 1, "in_channels": 1, "out_features": 1, "in_features": 1,
    "kernel_size": 1, "stride": 1, "dilation": 1, "groups": 1, "padding": 0,
    "output_padding": 0, "output_size": 1, "size": 1, "times": 0, "num_features": 1,
    "normalized_shape": 1, "input": 1, "num_groups": 1, "num_channels": 1,
    "num_parameters": 1, "embed_dim": 1, "num_heads": 1, "upscale_factor": 1,
    "scale_factor": 1, "length": 1, "start": 0, "shape": 1,
}  # fmt: skip

EXPRESSION_SCHEMA = {
    "type": "string",
    "description": "integer expression over declared symbols: + - * / // % **, min, max, floor, "
    "ceil, make_divisible",
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


def IntExpr(minimum: int | None = 1) -> Any:
    """An int (>= minimum) or an expression string."""

    def validate(value: Any) -> int | str:
        return _int_or_expression(value, minimum)

    int_schema: dict[str, Any] = {"type": "integer"}
    if minimum is not None:
        int_schema["minimum"] = minimum
    return Annotated[
        Union[int, str],
        PlainValidator(validate),
        WithJsonSchema({"anyOf": [int_schema, EXPRESSION_SCHEMA]}),
    ]


def _int_or_list(value: Any, minimum: int) -> Any:
    if isinstance(value, (list, tuple)):
        if not 1 <= len(value) <= 3:
            raise ValueError("expected one value per spatial dimension (1 to 3 values)")
        return tuple(_int_or_expression(item, minimum) for item in value)
    return _int_or_expression(value, minimum)


def SizeExpr(minimum: int = 1) -> Any:
    """An int/expression, or a list of them (one per spatial dimension)."""
    one = {"anyOf": [{"type": "integer", "minimum": minimum}, EXPRESSION_SCHEMA]}
    return Annotated[
        Any,
        PlainValidator(lambda value: _int_or_list(value, minimum)),
        WithJsonSchema({"anyOf": [*one["anyOf"], {"type": "array", "items": one, "maxItems": 3}]}),
    ]


#: Padding words of a convolution: PyTorch's ``same`` (stride 1) and ``valid``, and
#: TensorFlow/Keras/ONNX SAME for any stride (the odd pixel after or before).
PADDING_WORDS = ("same", "valid", "same_upper", "same_lower")


def _pairs(value: Any) -> Any:
    """Per-side padding: one ``[before, after]`` pair per spatial dimension."""
    if not 1 <= len(value) <= 3:
        raise ValueError("expected one [before, after] pair per spatial dimension (1 to 3 pairs)")
    pairs = []
    for pair in value:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(
                f"expected [before, after] for each spatial dimension. Received: {pair!r}"
            )
        pairs.append(tuple(_int_or_expression(item, 0) for item in pair))
    return ("pairs", tuple(pairs))


def _padding(value: Any) -> Any:
    if value in PADDING_WORDS:
        return value
    if isinstance(value, (list, tuple)) and any(isinstance(v, (list, tuple)) for v in value):
        return _pairs(value)
    return _int_or_list(value, 0)


_PAIR_SCHEMA = {"type": "array", "minItems": 2, "maxItems": 2,
                "items": {"anyOf": [{"type": "integer", "minimum": 0}, EXPRESSION_SCHEMA]}}  # fmt: skip
Padding = Annotated[
    Any,
    PlainValidator(_padding),
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": list(PADDING_WORDS)},
                {"type": "integer", "minimum": 0},
                EXPRESSION_SCHEMA,
                {"type": "array", "items": {"anyOf": [{"type": "integer"}, EXPRESSION_SCHEMA]}},
                {"type": "array", "items": _PAIR_SCHEMA, "maxItems": 3},
            ],
            "description": "per side, one value or one per dimension; [[before, after], ...] "
            "pairs; 'same' / 'valid' (PyTorch) or 'same_upper' / 'same_lower' (TF/ONNX SAME)",
        }
    ),
]


def _probability(value: Any) -> float | str:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("expected a probability in [0, 1) or an expression string")
    if isinstance(value, str):
        try:
            expr.parse(value)
        except ArchcalcError as err:
            raise ValueError(err.message) from None
        return value
    if not 0 <= value < 1:
        raise ValueError(f"expected a probability in [0, 1). Received: {value}")
    return float(value)


#: A probability in [0, 1), or an expression that may be a fraction (``"0.2 * k // 1"`` is not
#: needed: ``"k / 80"``), evaluated where the item is elaborated.
Probability = Annotated[
    Any,
    PlainValidator(_probability),
    WithJsonSchema(
        {"anyOf": [{"type": "number", "minimum": 0, "exclusiveMaximum": 1}, EXPRESSION_SCHEMA]}
    ),  # fmt: skip
]

#: Element-wise activations (also the values of the ``activation:`` shorthand).
ACTIVATION_TYPES = (
    "relu", "leaky_relu", "tanh", "sigmoid", "gelu", "elu", "selu", "softmax", "identity",
    "relu6", "hardswish", "hardsigmoid", "silu", "mish", "softplus", "hardtanh", "log_softmax",
)  # fmt: skip
ActivationName = Literal[ACTIVATION_TYPES]  # type: ignore[valid-type]

SymbolName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=64)]
TensorName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*$",
        max_length=100,
        description="The name of an earlier item's output (`input`: the network's or block's input).",
    ),
]


def _activation_value(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected an activation name. Received: {value!r}")
    if value in ACTIVATION_TYPES:
        return value
    if not value.isidentifier():
        raise ValueError(f"expected an activation name. Received: {value!r}")
    return value  # a block parameter holding an activation name; checked by references


ActivationRef = Annotated[
    str,
    PlainValidator(_activation_value),
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": list(ACTIVATION_TYPES)},
                {"type": "string", "description": "a block parameter holding an activation name"},
            ]
        }
    ),
]


class Model(BaseModel):
    """Base of every spec model: frozen, unknown keys rejected."""

    # Deferred: the recursive layer union is then generated once, inside Spec, not once per
    # composite model (that alone was ~60% of the CLI's start-up time).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def suggest(name: str, choices, *, meaning: dict[str, str] | None = None) -> str:
    """`` (did you mean 'x'?)`` when a close match exists, else ''.

    ``meaning`` maps words to what they mean in the language (``swish`` ->
    ``silu``) and is consulted first, so a suggestion by spelling never beats one
    by meaning.

    >>> suggest("kernal_size", ["kernel_size", "stride"])
    " (did you mean 'kernel_size'?)"
    """
    if meaning and name.lower() in meaning:
        return f" (did you mean {meaning[name.lower()]!r}?)"
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
