"""A spec's YAML read straight from libyaml's events, for the usual document.

PyYAML's constructor walks a tree of node objects in Python, resolving each plain
scalar's type with a list of regular expressions; for a spec that is half of the time
to read it. The usual spec needs none of that machinery: no anchors, aliases, explicit
tags or merge keys, and a few dozen distinct scalars repeated many times. This builder
takes the parser's events, resolves each distinct plain scalar once with PyYAML's own
resolver and constructor (so ``yes``, ``1_000``, ``0x1f``, ``.inf`` and ``2026-01-01``
mean what they mean to ``yaml.safe_load``), and remembers each mapping's line.

It answers only when it is sure: a document using anything else returns ``None`` and
the caller reads it the standard way, which also gives every error message (a duplicate
key is such a case: the standard path reports a syntax error further on first).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import (
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import ScalarNode

_STR = "tag:yaml.org,2002:str"


class _NotSure(Exception):
    """Something the standard reader must handle (an anchor, a tag, a merge key...)."""


class _Builder:
    """Builds the document from events. With no aliases every node is read once, so the
    loader's size and depth check is done here, on the way: containers count their depth,
    and every value counts towards the size (the loader counts the top mapping and every
    value in it, at any depth, but not the keys)."""

    def __init__(self, loader: Any, max_depth: int, max_nodes: int):
        self.loader = loader
        self.max_depth = max_depth
        self.max_values = max_nodes - 1  # the top mapping is the one more
        self.next = loader.get_event
        self.lines: dict[int, int] = {}
        self.plain: dict[str, Any] = {}  # plain scalar text -> its value (all immutable)
        self.depth = 0
        self.values = 0

    def scalar(self, event: ScalarEvent) -> Any:
        if event.anchor is not None or (event.tag is not None and event.tag != "!"):
            raise _NotSure
        if not event.implicit[0]:  # quoted or block text: a string
            if event.tag == "!":
                raise _NotSure
            return event.value
        value = event.value
        try:
            return self.plain[value]
        except KeyError:
            pass
        tag = self.loader.resolve(ScalarNode, value, (True, False))
        if tag == _STR:
            result: Any = value
        elif tag in ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"):
            raise _NotSure
        else:
            node = ScalarNode(tag, value, event.start_mark, event.end_mark)
            try:
                result = self.loader.yaml_constructors[tag](self.loader, node)
            except (ValueError, OverflowError):  # 2026-13-45: the standard path says why
                raise _NotSure from None
        self.plain[value] = result
        return result

    def value(self, event: Any) -> Any:
        self.values += 1
        if self.values > self.max_values:
            raise _NotSure  # the standard path's document check says what is wrong
        kind = type(event)
        if kind is ScalarEvent:
            return self.scalar(event)
        if self.depth >= self.max_depth:
            raise _NotSure  # likewise
        self.depth += 1
        if kind is MappingStartEvent:
            result: Any = self.mapping(event)
        elif kind is SequenceStartEvent:
            result = self.sequence(event)
        else:
            raise _NotSure  # an alias
        self.depth -= 1
        return result

    def mapping(self, start: MappingStartEvent) -> dict:
        if start.anchor is not None or (start.tag is not None and start.tag != "!"):
            raise _NotSure
        result: dict = {}
        self.lines[id(result)] = start.start_mark.line + 1
        while True:
            event = self.next()
            if type(event) is MappingEndEvent:
                return result
            if type(event) is not ScalarEvent:
                raise _NotSure  # a key that is a collection or an alias
            key = self.scalar(event)
            if key in result:  # refused by the standard path, after any syntax error
                raise _NotSure
            try:
                result[key] = self.value(self.next())
            except TypeError:  # an unhashable key: the standard reader says so
                raise _NotSure from None

    def sequence(self, start: SequenceStartEvent) -> list:
        if start.anchor is not None or (start.tag is not None and start.tag != "!"):
            raise _NotSure
        result: list = []
        append = result.append
        while True:
            event = self.next()
            if type(event) is SequenceEndEvent:
                return result
            append(self.value(event))


def read_events(text: str, max_depth: int = 100, max_nodes: int = 2_000_000
                ) -> tuple[Any, dict[int, int]] | None:  # fmt: skip
    """``(data, lines)`` for a document in the usual subset of YAML, or ``None``. A document
    it returns is nested at most ``max_depth`` deep and has at most ``max_nodes`` nodes.

    >>> read_events("a: [1, yes, '2']")[0]
    {'a': [1, True, '2']}
    >>> read_events("a: &x 1") is None  # an anchor: the standard reader decides
    True
    """
    loader = yaml.CSafeLoader(text) if hasattr(yaml, "CSafeLoader") else None
    if loader is None:
        return None
    try:
        builder = _Builder(loader, max_depth, max_nodes)
        events = [builder.next(), builder.next()]
        if type(events[0]) is not StreamStartEvent or type(events[1]) is not DocumentStartEvent:
            return None  # an empty stream
        first = builder.next()
        if type(first) is not MappingStartEvent:
            return None  # not a mapping: the standard path says what it is
        data = builder.mapping(first)
        if (
            type(builder.next()) is not DocumentEndEvent
            or type(builder.next()) is not StreamEndEvent
        ):
            return None  # a second document: the standard path refuses it
        return data, builder.lines
    except _NotSure:
        return None
    finally:
        loader.dispose()
