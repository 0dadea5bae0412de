"""The elaborated network: a small graph of nodes in topological order.

A spec is elaborated once (:func:`archcalc.graph.elaborate.elaborate`) into a
:class:`Graph`; every question archcalc answers (counts, explain, init
propagation, verify's model) is a pass over it, and none reads the YAML again.

- A :class:`Node` is one tensor-producing operation: its spec path and name, its
  layer type, its hyperparameters with every expression evaluated and every size
  normalised (one value per spatial dimension), the nodes it reads and its output
  shape (channels first, no batch). Node 0 is the network input.
- A :class:`Group` is a layer item as the user wrote it (a leaf, or a composite:
  residual, concat, repeat, block call) with the range of nodes it expanded to.
  Groups carry ``expect:`` entries, answer ``--layer`` for composites, and keep the
  spec's nesting for display and for verify's module names.

The sugar of the tree language becomes plain nodes: a residual is its body and
shortcut nodes plus an ``add`` node, a concat of branches a ``concat`` node.
Those merge nodes are not *shown* (they are no row of the table, as before);
merges the user writes (``type: add``) are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from archcalc.errors import SpecWarning

Shape = tuple  # of values (int or sympy), channels first, no batch


#: Nodes and groups are records that no pass changes; they are not frozen because creating a
#: frozen dataclass costs five times as much, and elaboration makes one per layer.
@dataclass(slots=True, eq=False)
class Node:
    """One operation of the elaborated network."""

    id: int
    path: str
    name: str | None
    type: str
    #: Resolved hyperparameters: the layer's fields, expressions evaluated, sizes as
    #: one value per spatial dimension (normalised by the layer's rule).
    hyper: Mapping[str, Any]
    inputs: tuple[int, ...]
    shape: Shape
    #: False for the merges that a residual or a concat of branches implies: they are
    #: computed like any node but are not a row of the table.
    shown: bool = True
    #: 1-based line of the item in its YAML file, where known.
    line: int | None = None


@dataclass(slots=True, eq=False)
class Group:
    """A layer item as written, with the nodes ``[first, end)`` it expanded to."""

    path: str
    name: str | None
    type: str
    first: int
    end: int
    #: The node holding the item's output (its activation's, where it has one).
    output: int
    expect: Any
    env: Mapping[str, Any] = field(repr=False)
    #: Child item lists: residual (body, shortcut); concat one per branch; a repeat one
    #: per iteration; a block call one; leaves none.
    children: tuple[tuple[Group, ...], ...] = field(default=(), repr=False)
    line: int | None = None
    #: The nodes the item reads (a block call's input, a merge's inputs).
    inputs: tuple[int, ...] = ()


@dataclass(eq=False)
class Graph:
    """The elaborated network: nodes in topological order (node 0: the input)."""

    spec: Any
    #: Symbol values in force (ints only; free symbols are absent).
    values: dict[str, int]
    env: Mapping[str, Any] = field(repr=False)
    nodes: list[Node]
    #: Nodes whose tensors the network returns (the top-level ``outputs:``).
    outputs: tuple[int, ...]
    #: The top-level items, each with its nested items.
    tree: list[Group]
    warnings: list[SpecWarning]
    assumptions: list[tuple[str, str]]
    file: str | None = None

    @property
    def input(self) -> Node:
        return self.nodes[0]

    def groups(self) -> list[Group]:
        """Every item, depth first, children before their parent (execution order)."""
        found: list[Group] = []

        def visit(items) -> None:
            for group in items:
                for child in group.children:
                    visit(child)
                found.append(group)

        visit(self.tree)
        return found

    def consumers(self) -> list[list[int]]:
        """For each node, the nodes that read it, in order."""
        readers: list[list[int]] = [[] for _ in self.nodes]
        for node in self.nodes:
            for i in node.inputs:
                readers[i].append(node.id)
        return readers

    def live(self, outputs: tuple[int, ...] | None = None) -> list[bool]:
        """For each node, whether some output (of ``outputs``, default all) depends on it."""
        alive = [False] * len(self.nodes)
        stack = list(self.outputs if outputs is None else outputs)
        while stack:
            i = stack.pop()
            if not alive[i]:
                alive[i] = True
                stack.extend(self.nodes[i].inputs)
        return alive
