"""Reuse a leaf item's elaboration where nothing it depends on differs.

A network repeats itself: ResNet-152's third stage is 36 bottlenecks, 35 of them the same
layers reading the same shapes with the same block arguments. A leaf item's resolved
hyperparameters and output shape are a function of the item (frozen), the shapes it reads
and the values of the names its expressions use (and of a block parameter naming its
activation), so where all of those are equal the earlier answer is the answer. Only answers
that produced no warning, assumption or deferred error are kept (those carry the path they
were found at); items whose elaboration looks elsewhere (a linear layer notes the layer
before it, a ``center_crop`` with ``like`` reads another tensor, merges and sources) are
never reused.
"""

from __future__ import annotations

from typing import Any, Mapping

from archcalc.errors import ArchcalcError
from archcalc.language import expr
from archcalc.language.values import ACTIVATION_TYPES, PADDING_WORDS

_UNSEEN = object()
#: Off only in tests, which check that it changes nothing.
ENABLED = True


def names_used(layer: Any) -> tuple[str, ...] | None:
    """The names a leaf item's resolution reads from its environment, or None where its
    elaboration depends on more than its fields, its input shapes and those names."""
    if layer.type == "linear" or layer.ARITY != "one" or layer.__dict__.get("like") is not None:
        return None
    found: set[str] = set()
    for field in (*layer.EXPR_FIELDS, *layer.PROBABILITY_FIELDS):
        for text in _strings(getattr(layer, field)):
            found |= expr.names(expr.parse(text))
    activation = layer.__dict__.get("activation")
    if activation is not None and activation not in ACTIVATION_TYPES:
        found.add(activation)  # a block parameter holding an activation name
    return tuple(sorted(found))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [] if value in PADDING_WORDS else [value]
    if isinstance(value, (tuple, list)):
        return [text for item in value for text in _strings(item)]
    return []


class LeafMemo:
    """Answers by (item, input shapes, values of the names it uses)."""

    def __init__(self) -> None:
        self.names: dict[int, Any] = {}
        self.answers: dict[tuple, tuple] = {}

    def key(self, layer: Any, env: Mapping[str, Any], shapes: tuple) -> tuple | None:
        if not ENABLED:
            return None
        names = self.names.get(id(layer), _UNSEEN)
        if names is _UNSEEN:
            names = self.names[id(layer)] = names_used(layer)
        if names is None:
            return None
        try:
            key = (id(layer), shapes, tuple(env[name] for name in names))
            hash(key)
        except (ArchcalcError, KeyError, TypeError):
            return None  # resolution will say what is wrong, or the values are unhashable
        return key
