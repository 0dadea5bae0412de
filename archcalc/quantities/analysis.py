"""Walk a spec and compute every layer's numbers: :func:`analyze`.

Composites are flattened into leaf rows in execution order, each with its
path in the expanded network (``layers[4].body[2]``; a repeat's iteration
``k`` is ``layers[2][k].layers[0]``; a block call's layers are
``layers[3].layers[0]``; an ``activation:`` shorthand is
``layers[0].activation``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from archcalc.errors import ArchcalcError, SpecWarning
from archcalc.language import expr
from archcalc.language.loader import load_spec
from archcalc.language.references import child_lists
from archcalc.language.spec import BUILTIN_TYPES, FIELD_MINIMUM, Spec
from archcalc.quantities.layers import Answer, Note, answer, shape_text

Value = expr.Value
#: Leaf layers (and composites) a spec may expand to, repeats and blocks included.
MAX_EXPANDED_LAYERS = 100_000
TOTAL_KEYS = ("params", "neurons", "connections", "macs", "flops")
ROW_KEYS = ("weights_per_neuron", "neurons", "connections", "params", "macs")


@dataclass(frozen=True, slots=True)
class Row:
    """One leaf layer of the expanded network."""

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "type": self.type,
            "input": [_json(v) for v in self.input],
            "output": [_json(v) for v in self.output],
            **{key: _json(getattr(self, key)) for key in ROW_KEYS},
        }


@dataclass(frozen=True, slots=True)
class Item:
    """A layer item of the spec as it was expanded: leaf or composite, with its rows
    ``rows[first_row:end_row]`` (the item's own activation row last, if it has one)."""

    path: str
    type: str
    output: tuple
    first_row: int
    end_row: int
    expect: Any
    env: Mapping[str, Value] = field(repr=False, compare=False)
    #: Child item lists: residual (body, shortcut); concat one per branch; repeat and
    #: block calls one sequence; leaves none.
    children: tuple = field(default=(), repr=False, compare=False)


@dataclass
class Analysis:
    """The result of :func:`analyze`: rows, totals, warnings and assumptions."""

    spec: Spec
    values: dict[str, int]
    input: tuple
    output: tuple
    rows: list[Row]
    items: list[Item]
    tree: list[Item]
    warnings: list[SpecWarning]
    assumptions: list[tuple[str, str]]
    env: Mapping[str, Value] = field(repr=False)
    totals: dict[str, Value] = field(init=False)

    def __post_init__(self) -> None:
        self.totals = {key: 0 for key in TOTAL_KEYS}
        for row in self.rows:
            for key in ("params", "neurons", "connections", "macs"):
                value = getattr(row, key)
                if value is not None:
                    self.totals[key] = self.totals[key] + value
        self.totals["flops"] = 2 * self.totals["macs"]
        self.totals = {key: expr.simplify(value) for key, value in self.totals.items()}

    @property
    def symbolic(self) -> bool:
        """True when any result depends on a free symbol."""
        return any(expr.is_symbolic(v) for v in (*self.totals.values(), *self.output))

    def row(self, path: str) -> Row:
        """The row at ``path`` (or with that name)."""
        for row in self.rows:
            if path in (row.path, row.name):
                return row
        raise ArchcalcError(f"no layer with path or name {path!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data: numbers as ints, symbolic values as strings in Python syntax."""
        return {
            "name": self.spec.name,
            "input": [_json(v) for v in self.input],
            "output": [_json(v) for v in self.output],
            "layers": [row.to_dict() for row in self.rows],
            "totals": {key: _json(value) for key, value in self.totals.items()},
            "warnings": [{"path": w.path, "message": w.message} for w in self.warnings],
            "assumptions": [{"path": p, "condition": c} for p, c in self.assumptions],
            "values": dict(self.values),
        }


def _json(value: Value | None) -> int | str | None:
    if value is None or isinstance(value, int):
        return value
    return expr.to_text(value)


def analyze(spec: Any, *, symbolic: bool = False, **values: int) -> Analysis:
    """Analyse a spec (path, text, dict or Spec), substituting ``values`` for symbols.

    ``symbolic=True`` ignores the symbols' default values, so every symbol
    not given in ``values`` stays free.

    >>> a = analyze({"name": "n", "input": [10], "layers": [{"type": "linear", "out_features": 3}]})
    >>> a.totals["params"], a.rows[0].connections
    (33, 33)
    """
    spec = load_spec(spec)
    env = _environment(spec, values, symbolic)
    walker = _Walker(spec)
    walker.count(spec.layers, env, "layers", 0)
    inp = tuple(walker.evaluate(v, env, f"input[{i}]", "input") for i, v in enumerate(spec.input))
    out, tree = walker.run(spec.layers, inp, "layers", env)
    return Analysis(
        spec=spec,
        values={k: v for k, v in env.items() if isinstance(v, int)},
        input=inp,
        output=out,
        rows=walker.rows,
        items=walker.items,
        tree=tree,
        warnings=walker.warnings,
        assumptions=walker.assumptions,
        env=env,
    )


def _environment(spec: Spec, values: Mapping[str, Any], symbolic: bool) -> dict[str, Value]:
    unknown = sorted(set(values) - set(spec.symbols))
    if unknown:
        declared = ", ".join(spec.symbols) or "none"
        raise ArchcalcError(
            f"cannot set {unknown[0]!r}: not a declared symbol (declared: {declared})"
        )
    env: dict[str, Value] = {}
    for name, default in spec.symbols.items():
        value = values.get(name, None if symbolic else default)
        if value is None:
            env[name] = expr.symbol(name)
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 0 <= value <= expr.MAX_VALUE
        ):
            raise ArchcalcError(f"symbol values are integers >= 0. Received: {name}={value!r}")
        env[name] = value
    return env


class _Walker:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.rows: list[Row] = []
        self.items: list[Item] = []
        self.warnings: list[SpecWarning] = []
        self.assumptions: list[tuple[str, str]] = []
        self.globals = spec.symbols

    # -- expressions

    def evaluate(self, value: Any, env: Mapping[str, Value], path: str, name: str) -> Value:
        if isinstance(value, int):
            return value
        try:
            result = expr.evaluate_text(value, env)
        except ArchcalcError as err:
            raise err.at(path) from None
        minimum = FIELD_MINIMUM.get(name)
        if minimum is not None:
            Note(path, self.warnings, self.assumptions).at_least(
                result, minimum, f"expected {name} >= {minimum}. Received: {name}={value!r} = "
                f"{expr.to_text(result)}",
            )  # fmt: skip
        return result

    def resolve(self, layer: Any, env: Mapping[str, Value], path: str) -> dict[str, Any]:
        """A leaf layer's fields with every expression evaluated."""
        h = dict(layer.__dict__)
        for name in layer.EXPR_FIELDS:
            value = h[name]
            if value is None or isinstance(value, int) or value in ("same", "valid"):
                continue
            if isinstance(value, tuple):
                h[name] = tuple(
                    self.evaluate(v, env, f"{path}.{name}[{i}]", name) for i, v in enumerate(value)
                )
            else:
                h[name] = self.evaluate(value, env, f"{path}.{name}", name)
        return h

    def block_env(self, call: Any, env: Mapping[str, Value], path: str) -> dict[str, Value]:
        inner = {name: env[name] for name in self.globals}
        for param, value in (call.__pydantic_extra__ or {}).items():
            inner[param] = self.evaluate(value, env, f"{path}.{param}", param)
        return inner

    # -- expansion budget (checked before anything is expanded)

    def count(self, layers: list, env: Mapping[str, Value], path: str, total: int) -> int:
        """Leaf and composite items the list expands to, plus ``total``; stops at the limit."""
        for index, layer in enumerate(layers):
            here = f"{path}[{index}]"
            total += 1 + (layer.__dict__.get("activation") is not None)
            kind = layer.type
            if kind == "repeat":
                times = self.evaluate(layer.times, env, f"{here}.times", "times")
                if expr.is_symbolic(times):
                    raise ArchcalcError(
                        f"repeat count must be a number, not {expr.to_text(times)}; give the "
                        "symbol a value (--set NAME=VALUE)", path=f"{here}.times",
                    )  # fmt: skip
                once = self.count(layer.layers, env, f"{here}[0].layers", 0)
                total += times * once
            elif kind in ("residual", "concat"):
                for suffix, children in child_lists(layer):
                    total = self.count(children, env, here + suffix, total)
            elif kind not in BUILTIN_TYPES:
                inner = self.block_env(layer, env, here)
                total = self.count(self.spec.blocks[kind].layers, inner, f"{here}.layers", total)
            if total > MAX_EXPANDED_LAYERS:
                raise ArchcalcError(
                    f"the network expands to more than {MAX_EXPANDED_LAYERS:,} layers here "
                    "(repeats and blocks unrolled); refusing to analyse it",
                    path=here if len(here) < 80 else f"{here[:30]}...{here[-40:]}",
                )  # fmt: skip
        return total

    # -- the walk

    def run(
        self, layers: list, shape: tuple, prefix: str, env: Mapping[str, Value]
    ) -> tuple[tuple, list[Item]]:
        """Analyse a layer list; returns the output shape and the list's items (a tree)."""
        items: list[Item] = []
        for index, layer in enumerate(layers):
            path = f"{prefix}[{index}]"
            first = len(self.rows)
            kind = layer.type
            children: tuple = ()
            if kind == "residual":
                shape, children = self.residual(layer, shape, path, env)
            elif kind == "concat":
                shape, children = self.concat(layer, shape, path, env)
            elif kind == "repeat":
                times = self.evaluate(layer.times, env, f"{path}.times", "times")
                sequence: list[Item] = []
                for k in range(times):
                    shape, done = self.run(layer.layers, shape, f"{path}[{k}].layers", env)
                    sequence += done
                children = (sequence,)
            elif kind in BUILTIN_TYPES:
                shape = self.leaf(self.resolve(layer, env, path), layer.name, shape, path)
            else:
                inner = self.block_env(layer, env, path)
                block = self.spec.blocks[kind].layers
                shape, done = self.run(block, shape, f"{path}.layers", inner)
                children = (done,)
            # __dict__, not getattr: pydantic's __getattr__ is slow for fields a model lacks
            if layer.__dict__.get("activation") is not None and kind not in _LEAF_WITH_ACTIVATION:
                shape = self.activation(layer.activation, shape, path)
            item = Item(path, kind, shape, first, len(self.rows), layer.expect, env, children)
            self.items.append(item)
            items.append(item)
        return shape, items

    def leaf(self, h: dict, name: str | None, shape: tuple, path: str) -> tuple:
        note = Note(path, self.warnings, self.assumptions)
        try:
            result: Answer = answer(h, shape, note)
        except ArchcalcError as err:
            raise err.at(path) from None
        self.rows.append(
            Row(path, name, h["type"], shape, result.output, result.weights_per_neuron,
                result.neurons, result.connections, result.params, result.macs,
                result.fan_in, result.fan_out, h)
        )  # fmt: skip
        if h.get("activation") is not None:
            return self.activation(h["activation"], result.output, path)
        return result.output

    def activation(self, kind: str, shape: tuple, path: str) -> tuple:
        h = {"type": kind, "negative_slope": None, "alpha": None}
        return self.leaf(h, None, shape, f"{path}.activation")

    def residual(self, layer: Any, shape: tuple, path: str, env: Mapping[str, Value]):
        body, body_items = self.run(layer.body, shape, f"{path}.body", env)
        short, short_items = self.run(layer.shortcut, shape, f"{path}.shortcut", env)
        note = Note(path, self.warnings, self.assumptions)

        def message() -> str:
            return (f"residual body gives {shape_text(body)} but the shortcut gives "
                    f"{shape_text(short)}; they must match (add a projection to the shortcut)")  # fmt: skip

        if len(body) != len(short):
            raise note.error(message)
        for a, b in zip(body, short):
            note.same(a, b, message)
        return body, (body_items, short_items)

    def concat(self, layer: Any, shape: tuple, path: str, env: Mapping[str, Value]):
        runs = [
            self.run(branch, shape, f"{path}.branches[{i}]", env)
            for i, branch in enumerate(layer.branches)
        ]
        outs = [out for out, _ in runs]
        note = Note(path, self.warnings, self.assumptions)

        def message() -> str:
            shapes = ", ".join(shape_text(o) for o in outs)
            return f"concat branches must agree in every dimension but channels. Received: {shapes}"

        for out in outs[1:]:
            if len(out) != len(outs[0]):
                raise note.error(message)
            for a, b in zip(out[1:], outs[0][1:]):
                note.same(a, b, message)
        channels = expr.simplify(sum(o[0] for o in outs))
        return (channels, *outs[0][1:]), tuple(items for _, items in runs)


#: Leaves whose ``activation`` field is handled in :meth:`_Walker.leaf`.
_LEAF_WITH_ACTIVATION = frozenset(BUILTIN_TYPES) - {"residual", "concat", "repeat"}
