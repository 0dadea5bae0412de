"""Field types of the spec language: integers or expressions, sizes, padding, names.

Every integer field takes an ``int`` or an expression string over the declared
symbols; the strings are parsed at load time (so a syntax error is reported then)
and evaluated during elaboration. The rules themselves are plain functions in
:mod:`archcalc.language.values`; each type here carries a :class:`Kind` naming its
rule, from which the fast reader's table is generated.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator

from archcalc.language.checks import ITEM_CHECKS
from archcalc.language.values import (
    ACTIVATION_TYPES,
    FIELD_MINIMUM,
    PADDING_WORDS,
    Kind,
    SpecObject,
    _activation_value,
    _int_or_expression,
    _int_or_list,
    _padding,
    _probability,
    suggest,
)

__all__ = [
    "ACTIVATION_TYPES", "FIELD_MINIMUM", "PADDING_WORDS", "ActivationName", "ActivationRef",
    "IntExpr", "Model", "item_check", "Padding", "Probability", "SizeExpr", "SymbolName", "TensorName", "suggest",
]  # fmt: skip

EXPRESSION_SCHEMA = {
    "type": "string",
    "description": "integer expression over declared symbols: + - * / // % **, min, max, floor, "
    "ceil, make_divisible",
}


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
        Kind("int_expr", minimum),
    ]


def SizeExpr(minimum: int = 1) -> Any:
    """An int/expression, or a list of them (one per spatial dimension)."""
    one = {"anyOf": [{"type": "integer", "minimum": minimum}, EXPRESSION_SCHEMA]}
    return Annotated[
        Any,
        PlainValidator(lambda value: _int_or_list(value, minimum)),
        WithJsonSchema({"anyOf": [*one["anyOf"], {"type": "array", "items": one, "maxItems": 3}]}),
        Kind("size_expr", minimum),
    ]


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
    Kind("padding"),
]


#: A probability in [0, 1), or an expression that may be a fraction (``"0.2 * k // 1"`` is not
#: needed: ``"k / 80"``), evaluated where the item is elaborated.
Probability = Annotated[
    Any,
    PlainValidator(_probability),
    WithJsonSchema(
        {"anyOf": [{"type": "number", "minimum": 0, "exclusiveMaximum": 1}, EXPRESSION_SCHEMA]}
    ),  # fmt: skip
    Kind("probability"),
]

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
    Kind("activation_ref"),
]


class _ModelMeta(type(BaseModel)):  # type: ignore[misc]
    """``isinstance(item, Conv)`` also holds for the fast reader's item of that model (its
    class records the model's names, :mod:`archcalc.language.fast`)."""

    def __instancecheck__(cls, instance: Any) -> bool:
        if super().__instancecheck__(instance):
            return True
        return cls.__name__ in getattr(type(instance), "MODEL_NAMES", ())


class Model(BaseModel, SpecObject, metaclass=_ModelMeta):
    """Base of every spec model: frozen, unknown keys rejected."""

    # Deferred: the recursive layer union is then generated once, inside Spec, not once per
    # composite model (that alone was ~60% of the CLI's start-up time).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def item_check(name: str) -> Any:
    """A model validator (after the fields) running ``ITEM_CHECKS[name]``; the fast
    reader's table records the name and runs the same function."""
    check = ITEM_CHECKS[name]

    def run(self: Any) -> Any:
        check(self)
        return self

    run.fast_check = name  # type: ignore[attr-defined]
    return model_validator(mode="after")(run)
