"""The counting pass: every shown node of the graph becomes a row with its numbers.

:func:`analyze` elaborates a spec (:mod:`archcalc.graph.elaborate`) and asks
each node's rule the counting questions; rows are the table's lines in
execution order, totals their sums. Nodes that no output depends on are left
out (with a warning).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from archcalc import collector
from archcalc.errors import ArchcalcError, SpecWarning
from archcalc.graph.elaborate import MAX_EXPANDED_LAYERS, elaborate
from archcalc.graph.graph import Graph, Group, Node
from archcalc.language import expr
from archcalc.layers.registry import answer, rule_for

if TYPE_CHECKING:
    from archcalc.language.spec import Spec

Value = expr.Value
TOTAL_KEYS = ("params", "neurons", "connections", "macs", "flops")
ROW_KEYS = ("weights_per_neuron", "neurons", "connections", "params", "macs")
__all__ = ["MAX_EXPANDED_LAYERS", "Analysis", "Row", "analyze"]


#: A record no pass changes, not frozen for the reason a graph node is not (a frozen
#: dataclass costs four times as much to create, and the counting pass makes one per row);
#: hashable by its compared fields, as a frozen one would be.
@dataclass(slots=True, unsafe_hash=True)
class Row:
    """One shown node of the network: a line of the table."""

    path: str
    name: str | None
    type: str
    input: tuple
    output: tuple
    weights_per_neuron: Value | None
    neurons: Value | None
    connections: Value | None
    params: Value
    macs: Value
    fan_in: Value | None
    fan_out: Value | None
    hyper: dict = field(repr=False, compare=False)
    node: int = field(default=0, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "type": self.type,
            "input": [_json(v) for v in self.input],
            "output": [_json(v) for v in self.output],
            **{key: _json(getattr(self, key)) for key in ROW_KEYS},
        }


@dataclass
class Analysis:
    """The result of :func:`analyze`: the graph, its rows and totals, warnings, assumptions."""

    graph: Graph
    rows: list[Row]
    totals: dict[str, Value] = field(init=False)

    def __post_init__(self) -> None:
        self.totals = {key: 0 for key in TOTAL_KEYS}
        for key in ("params", "neurons", "connections", "macs"):
            present = [getattr(row, key) for row in self.rows if getattr(row, key) is not None]
            self.totals[key] = expr.total(present)
        self.totals["flops"] = expr.simplify(2 * self.totals["macs"])
        self._row_nodes = [row.node for row in self.rows]

    # -- what the graph knows

    @property
    def spec(self) -> Spec:
        return self.graph.spec

    @property
    def values(self) -> dict[str, int]:
        return self.graph.values

    @property
    def env(self) -> Mapping[str, Value]:
        return self.graph.env

    @property
    def warnings(self) -> list[SpecWarning]:
        return self.graph.warnings

    @property
    def assumptions(self) -> list[tuple[str, str]]:
        return self.graph.assumptions

    @property
    def input(self) -> tuple:
        return self.graph.input.shape

    @property
    def outputs(self) -> list[tuple]:
        """The shape of every output, in ``outputs:`` order."""
        return [self.graph.nodes[i].shape for i in self.graph.outputs]

    @property
    def output(self) -> tuple:
        """The (first) output's shape."""
        return self.outputs[0]

    @property
    def tree(self) -> list[Group]:
        return self.graph.tree

    @property
    def items(self) -> list[Group]:
        """Every item as written, children before their parent."""
        return self.graph.groups()

    @property
    def symbolic(self) -> bool:
        """True when any result depends on a free symbol."""
        shapes = [v for shape in self.outputs for v in shape]
        return any(expr.is_symbolic(v) for v in (*self.totals.values(), *shapes))

    @property
    def free_symbols(self) -> list[str]:
        """The symbols without a value, in declaration order."""
        return [name for name, value in self.env.items() if not isinstance(value, int)]

    def needs_numbers(self, what: str) -> ArchcalcError:
        """The error for ``what`` (a command or pass) on a spec with free symbols, naming them.

        >>> net = analyze({"name": "n", "symbols": {"H": None}, "input": [3, "H", "H"],
        ...                "layers": [{"type": "conv2d", "out_channels": 4, "kernel_size": 3}]})
        >>> str(net.needs_numbers("draw"))
        'draw needs numbers; give H a value (--set H=VALUE)'
        """
        names = self.free_symbols or ["every symbol"]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
        values = "a value" if len(names) == 1 else "values"
        sets = " ".join(f"--set {name}=VALUE" for name in names[:2]) if self.free_symbols else (
            "--set NAME=VALUE")  # fmt: skip
        sets += " ..." if len(names) > 2 else ""
        return ArchcalcError(f"{what} needs numbers; give {listed} {values} ({sets})")

    def rows_of(self, group: Group) -> list[Row]:
        """The rows of an item (a composite's: all its layers')."""
        lo = bisect_left(self._row_nodes, group.first)
        hi = bisect_left(self._row_nodes, group.end)
        return self.rows[lo:hi]

    def row_of(self, node: Node | int) -> Row | None:
        """The row of a node (None for nodes that are not shown)."""
        i = node if isinstance(node, int) else node.id
        j = bisect_left(self._row_nodes, i)
        return self.rows[j] if j < len(self.rows) and self._row_nodes[j] == i else None

    def row(self, path: str) -> Row:
        """The row at ``path`` (or with that name)."""
        for row in self.rows:
            if path in (row.path, row.name):
                return row
        raise ArchcalcError(f"no layer with path or name {path!r}{self._nearest(path)}")

    def select(self, layer: str) -> list[Row]:
        """The rows of ``layer``: a row's path or name, or an item's (a residual, a repeat, a
        block call), whose rows are all its layers.

        >>> a = analyze({"name": "n", "input": [4], "blocks": {"mlp": {"layers": [
        ...     {"type": "linear", "out_features": 3}, {"type": "relu"}]}},
        ...     "layers": [{"type": "mlp", "name": "head"}]})
        >>> [row.path for row in a.select("head")]
        ['layers[0].layers[0]', 'layers[0].layers[1]']
        """
        for row in self.rows:
            if layer in (row.path, row.name):
                return [row]
        for group in self.items:
            if layer in (group.path, group.name):
                rows = self.rows_of(group)
                if rows:
                    return rows
        raise ArchcalcError(f"no layer with path or name {layer!r}{self._nearest(layer)}")

    def _nearest(self, text: str) -> str:
        import difflib

        names = [n for row in self.rows for n in (row.path, row.name) if n]
        names += [n for group in self.items for n in (group.path, group.name) if n]
        close = difflib.get_close_matches(text, list(dict.fromkeys(names)), n=3, cutoff=0.6)
        if close:
            return "; nearest: " + ", ".join(close)
        named = [row.name for row in self.rows if row.name][:5]
        hint = f" or a name ({', '.join(named)}, ...)" if named else ""
        return f"; give a path such as {self.rows[0].path!r}{hint}" if self.rows else ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data: numbers as ints, symbolic values as strings in Python syntax."""
        data = {
            "name": self.spec.name,
            "input": [_json(v) for v in self.input],
            "output": [_json(v) for v in self.output],
            "layers": [row.to_dict() for row in self.rows],
            "totals": {key: _json(value) for key, value in self.totals.items()},
            "warnings": [{"path": w.path, "message": w.message} for w in self.warnings],
            "assumptions": [{"path": p, "condition": c} for p, c in self.assumptions],
            "values": dict(self.values),
        }
        if len(self.graph.outputs) > 1:
            data["outputs"] = [
                {"name": name, "path": self.graph.nodes[i].path,
                 "shape": [_json(v) for v in self.graph.nodes[i].shape]}
                for name, i in zip(self.spec.outputs or (), self.graph.outputs)
            ]  # fmt: skip
        return data


def _json(value: Value | None) -> int | str | None:
    if value is None or isinstance(value, int):
        return value
    return expr.to_text(value)


def count(graph: Graph) -> Analysis:
    """The counting pass over an elaborated graph."""
    live = graph.live()
    nodes = graph.nodes
    rows: list[Row] = []
    dead: list[str] = []
    # Nodes replayed from an equal leaf item share their hyperparameter dict: one answer.
    answers: dict[tuple, Any] = {}
    for node in nodes:
        if not node.shown or node.type == "input":
            continue
        if not live[node.id]:
            dead.append(node.path)
            continue
        rule = rule_for(node.type)
        if rule.merge:
            inp: Any = tuple(nodes[i].shape for i in node.inputs)
            first = inp[0]
        elif rule.source:
            inp = first = ()
        else:
            inp = first = nodes[node.inputs[0]].shape
        key = (id(node.hyper), inp)
        a = answers.get(key)
        if a is None:
            a = answers[key] = answer(rule, node.hyper, inp, node.shape)
        rows.append(Row(node.path, node.name, node.type, first, node.shape, a.weights_per_neuron,
                        a.neurons, a.connections, a.params, a.macs, a.fan_in, a.fan_out,
                        node.hyper, node.id))  # fmt: skip
    if dead:
        shown = ", ".join(dead[:3]) + (f" and {len(dead) - 3} more" if len(dead) > 3 else "")
        graph.warnings.append(SpecWarning(
            dead[0], f"{shown}: no output depends on {'them' if len(dead) > 1 else 'it'}; left "
            "out of the rows and totals (name it under outputs: to keep it)",
        ))  # fmt: skip
    return Analysis(graph, rows)


def analyze(spec: Any, *, symbolic: bool = False, **values: int) -> Analysis:
    """Analyse a spec (path, text, dict or Spec), substituting ``values`` for symbols.

    ``symbolic=True`` ignores the symbols' default values, so every symbol
    not given in ``values`` stays free.

    >>> a = analyze({"name": "n", "input": [10], "layers": [{"type": "linear", "out_features": 3}]})
    >>> a.totals["params"], a.rows[0].connections
    (33, 33)
    """
    graph = elaborate(spec, symbolic=symbolic, **values)
    with collector.paused():  # every row survives: see archcalc.collector
        return count(graph)
