"""Field values of the spec language, checked without pydantic.

The rules every field value follows (integers or expressions with a minimum, sizes,
padding, probabilities, activation names) and the checks a whole item must pass,
as plain functions: the pydantic models (:mod:`archcalc.language.fields`) call them
as validators, and the fast reader (:mod:`archcalc.language.fast`) calls the same
functions, so the two cannot drift apart.
"""

from __future__ import annotations

import difflib
from typing import Any

from archcalc.errors import ArchcalcError
from archcalc.language import expr


class SpecObject:
    """Base of every item of a read spec, whichever reader made it (pydantic's models and the
    fast reader's items have the same attributes)."""

    __slots__ = ()


def is_spec(value: Any) -> bool:
    """Whether ``value`` is a read spec (the top-level item)."""
    return isinstance(value, SpecObject) and type(value).__name__ == "Spec"


class Kind:
    """Marks an ``Annotated`` field type with the rule that checks it, for the fast reader's
    table (pydantic ignores metadata it does not know)."""

    def __init__(self, name: str, *args: Any) -> None:
        self.name, self.args = name, args

    def __repr__(self) -> str:
        return f"Kind({self.name!r}, *{self.args!r})"


#: Smallest legal value of each integer field (also applied after evaluating expressions).
FIELD_MINIMUM = {
    "out_channels": 1, "in_channels": 1, "out_features": 1, "in_features": 1,
    "kernel_size": 1, "stride": 1, "dilation": 1, "groups": 1, "padding": 0,
    "output_padding": 0, "output_size": 1, "size": 1, "times": 0, "num_features": 1,
    "normalized_shape": 1, "input": 1, "num_groups": 1, "num_channels": 1,
    "num_parameters": 1, "embed_dim": 1, "num_heads": 1, "upscale_factor": 1,
    "scale_factor": 1, "length": 1, "start": 0, "shape": 1,
}  # fmt: skip


def _expression(text: str) -> str:
    """An expression string, parsed now so that a syntax error is reported at load time."""
    try:
        expr.parse(text)
    except ArchcalcError as err:
        raise ValueError(err.message) from None
    return text


def _int_or_expression(value: Any, minimum: int | None) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(_expected(minimum))
    if isinstance(value, str):
        return _expression(value)
    if minimum is not None and value < minimum:
        raise ValueError(_expected(minimum))
    if abs(value) > expr.MAX_VALUE:
        raise ValueError(f"expected an integer of at most {expr.MAX_VALUE:.0e}")
    return value


def _expected(minimum: int | None) -> str:
    bound = f" >= {minimum}" if minimum is not None else ""
    return f"expected an integer{bound} or an expression string"


def _int_or_list(value: Any, minimum: int) -> Any:
    if isinstance(value, (list, tuple)):
        if not 1 <= len(value) <= 3:
            raise ValueError("expected one value per spatial dimension (1 to 3 values)")
        return tuple(_int_or_expression(item, minimum) for item in value)
    return _int_or_expression(value, minimum)


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


def _probability(value: Any) -> float | str:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("expected a probability in [0, 1) or an expression string")
    if isinstance(value, str):
        return _expression(value)
    if not 0 <= value < 1:
        raise ValueError(f"expected a probability in [0, 1). Received: {value}")
    return float(value)


#: Element-wise activations (also the values of the ``activation:`` shorthand).
ACTIVATION_TYPES = (
    "relu", "leaky_relu", "tanh", "sigmoid", "gelu", "elu", "selu", "softmax", "identity",
    "relu6", "hardswish", "hardsigmoid", "silu", "mish", "softplus", "hardtanh", "log_softmax",
)  # fmt: skip


def _activation_value(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected an activation name. Received: {value!r}")
    if value in ACTIVATION_TYPES:
        return value
    if not value.isidentifier():
        raise ValueError(f"expected an activation name. Received: {value!r}")
    return value  # a block parameter holding an activation name; checked by references


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


# ----------------------------------------------------------------------------- item checks
# Each check takes the item (a pydantic model or a fast reader's item) and raises ValueError.


def exactly_one(item: Any, first: str, second: str) -> None:
    """Exactly one of two optional fields is given."""
    if (getattr(item, first) is None) == (getattr(item, second) is None):
        raise ValueError(f"give exactly one of {first} and {second}")


#: Activation fields and the activation types they belong to.
ACTIVATION_FIELD_OWNERS = {
    "negative_slope": ("leaky_relu",), "alpha": ("elu",), "beta": ("softplus",),
    "threshold": ("softplus",), "min_val": ("hardtanh",), "max_val": ("hardtanh",),
    "dim": ("softmax", "log_softmax"),
}  # fmt: skip


def activation_fields(item: Any) -> None:
    """An activation's optional fields are given only for the type they belong to."""
    for name, owners in ACTIVATION_FIELD_OWNERS.items():
        if getattr(item, name) is not None and item.type not in owners:
            raise ValueError(f"{name} applies to {' and '.join(owners)} only, not {item.type}")
