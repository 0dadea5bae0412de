"""Reuse elaboration already done where nothing it depends on differs.

A network repeats itself: ResNet-152's third stage is 36 bottlenecks, 35 of them the same
block called with the same arguments on the same shape. Two levels are reused:

* a leaf item: its resolved hyperparameters and output shape are a function of the item
  (frozen), the shapes it reads and the values of the names its expressions use (and of a
  block parameter naming its activation). Items whose elaboration looks elsewhere (a
  linear layer notes the layer before it, a ``center_crop`` with ``like`` reads another
  tensor, merges and sources) are never reused;
* a whole block call: its nodes and items are a function of the block, its input shape and
  its environment (the symbols and the call's arguments); a block sees no other tensor.

Only elaboration that produced no warning, assumption or deferred error is reused (those
carry the path they were found at). ``tests/test_graph.py`` compares every shipped spec's
graph, rows and warnings with and without, numeric and symbolic.
"""

from __future__ import annotations

from typing import Any, Mapping

from archcalc.errors import ArchcalcError
from archcalc.language import expr
from archcalc.language.values import ACTIVATION_TYPES, PADDING_WORDS

_UNSEEN, _ONCE = object(), object()
#: Off only in tests, which check that it changes nothing.
ENABLED = True
#: An item or block whose first this-many lookups all missed stops being remembered: keys and
#: copies cost about a quarter of a fresh elaboration, and a block called with different
#: arguments every time (EfficientNet's MBConv layers, each with its own widths) never hits.
GIVE_UP_AFTER = 8


def _counted(misses: dict, owner: Any, found: Any) -> Any:
    """``found``, after counting a miss for ``owner`` (until its first hit, -1: never again)."""
    count = misses.get(owner, 0)
    if found is not None:
        misses[owner] = -1  # it hits: never give up on it
    elif count >= 0:
        misses[owner] = count + 1
    return found


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
    """Answers by (item, input shapes, values of the names it uses), kept from an item's
    second visit on (a block's or a repeat's layers are visited again; a chain's are not)."""

    def __init__(self) -> None:
        self.names: dict[int, Any] = {}
        self.answers: dict[tuple, tuple] = {}
        self.misses: dict[int, int] = {}  # id(item) -> lookups that missed, while none hit

    def lookup(self, key: tuple, layer: Any) -> tuple | None:
        """The remembered answer of ``key``; counts the misses of an item that never hit."""
        return _counted(self.misses, id(layer), self.answers.get(key))

    def key(self, layer: Any, env: Mapping[str, Any], shapes: tuple) -> tuple | None:
        if not ENABLED or self.misses.get(id(layer), 0) >= GIVE_UP_AFTER:
            return None
        names = self.names.get(id(layer), _UNSEEN)
        if names is _UNSEEN:  # a first visit: most items (a chain's) are visited only once
            self.names[id(layer)] = _ONCE
            return None
        if names is _ONCE:
            names = self.names[id(layer)] = names_used(layer)
        if names is None:
            return None
        try:
            key = (id(layer), shapes, tuple(env[name] for name in names))
            hash(key)
        except (ArchcalcError, KeyError, TypeError):
            return None  # resolution will say what is wrong, or the values are unhashable
        return key


class CallMemo:
    """Whole block calls, by (block, input shape, the block's environment): the nodes and
    items of the first call, copied with their paths and node numbers moved."""

    def __init__(self) -> None:
        self.calls: dict[tuple, tuple] = {}
        self.misses: dict[str, int] = {}  # block -> calls that missed, while none hit

    def key(self, block: str, shape: tuple, inner: Mapping[str, Any]) -> tuple | None:
        if not ENABLED or self.misses.get(block, 0) >= GIVE_UP_AFTER:
            return None
        key = (block, shape, tuple(inner.items()))
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def lookup(self, key: tuple, block: str) -> tuple | None:
        """The remembered call of ``key``; counts the misses of a block that never hit."""
        return _counted(self.misses, block, self.calls.get(key))

    def remember(self, key: tuple, path: str, nodes: list, first: int, x: int, out: int,
                 groups: tuple) -> None:  # fmt: skip
        """Keep a call whose nodes read only each other and its input ``x``, and whose paths
        all lie under ``path`` (so that moving them is a change of prefix)."""
        end, inside = len(nodes), path + "."
        for node in nodes[first:end]:
            if not node.path.startswith(inside):
                return
            if any(not (first <= i < end or i == x) for i in node.inputs):
                return
        self.calls[key] = (path, first, end, x, out, groups)


def moved(stored: tuple, nodes: list, x: int, path: str) -> tuple[int, tuple]:
    """Append the nodes of a remembered call, read from ``x`` at ``path``; its output node
    and its items (:class:`~archcalc.graph.graph.Group`), moved likewise."""
    from archcalc.graph.graph import Group, Node

    old_path, first, end, old_x, out, groups = stored
    offset, cut = len(nodes) - first, len(old_path)
    # Loops written out (no generator per node or group): a hit's copy is most of what
    # elaborating a repeated block costs, ViT's encoder blocks for one.
    append = nodes.append
    for node in nodes[first:end]:
        inputs = node.inputs
        if len(inputs) == 1:
            i = inputs[0]
            inputs = (i + offset if first <= i < end else x,)
        else:
            inputs = tuple([i + offset if first <= i < end else x for i in inputs])
        append(Node(node.id + offset, path + node.path[cut:], node.name, node.type, node.hyper,
                    inputs, node.shape, node.shown, node.line))  # fmt: skip

    def group(g: Group) -> Group:
        children = g.children
        if children:
            children = tuple([tuple([group(c) for c in items]) for items in children])
        o = g.output
        inputs = g.inputs
        if inputs:
            inputs = tuple([i + offset if first <= i < end else x for i in inputs])
        return Group(path + g.path[cut:], g.name, g.type, g.first + offset, g.end + offset,
                     o + offset if first <= o < end else x, g.expect, g.env, children, g.line,
                     inputs)  # fmt: skip

    return (out + offset if first <= out < end else x), tuple([group(g) for g in groups])
