"""Elaboration: a validated spec -> a :class:`~archcalc.graph.graph.Graph`.

The one walk over the spec tree. Blocks are called, ``repeat`` unrolled, ``when:``
decided, expressions evaluated (ints, or sympy where symbols are free), the
input sizes ``C_in``, ``H_in``, ``W_in`` (``L_in``, ``D_in``) bound, tensor names
resolved to nodes, and every node's shape inferred by its layer rule, with the
rule's checks (errors, warnings, symbolic assumptions) made once, here.

Paths name places in the expanded network: ``layers[4].body[2]``; iteration
``k`` of a repeat is ``layers[2][k].layers[0]``; a block call's layers are
``layers[3].layers[0]``; an ``activation:`` shorthand is ``layers[0].activation``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from archcalc import collector
from archcalc.errors import ArchcalcError, SpecWarning
from archcalc.graph.graph import Graph, Group, Node
from archcalc.graph.memo import CallMemo, LeafMemo, moved
from archcalc.graph.scope import InputEnv, Scope, environment
from archcalc.language import conditions, expr
from archcalc.language.fast import LAYER_TYPES as BUILTIN_TYPES
from archcalc.language.loader import load_spec
from archcalc.language.references import child_lists
from archcalc.language.values import ACTIVATION_TYPES, FIELD_MINIMUM
from archcalc.layers.registry import rule_for
from archcalc.layers.rules import Note, shape_text

if TYPE_CHECKING:
    from archcalc.language.spec import Spec

Value = expr.Value
#: Nodes (and composite items) a spec may expand to, repeats and blocks included.
MAX_EXPANDED_LAYERS = 100_000
_ACTIVATION_PARAMS = ("negative_slope", "alpha", "beta", "threshold", "min_val", "max_val", "dim")


def _channels_last(shape: tuple) -> bool:
    """[32, 32, 3]: an image written height, width, channels."""
    if len(shape) != 3 or not all(isinstance(n, int) for n in shape):
        return False
    h, w, c = shape
    return c in (1, 3, 4) and min(h, w) >= 8 and max(h, w) <= 4 * min(h, w)


def elaborate(
    spec: Any, *, symbolic: bool = False, file: str | None = None, **values: int
) -> Graph:
    """Elaborate a spec (path, text, dict or Spec) into its graph.

    >>> g = elaborate({"name": "n", "input": [3, 8, 8], "layers": [
    ...     {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "activation": "relu"}]})
    >>> [(n.path, n.type, n.shape) for n in g.nodes]
    [('input', 'input', (3, 8, 8)), ('layers[0]', 'conv2d', (4, 6, 6)), ('layers[0].activation', 'relu', (4, 6, 6))]
    """
    if file is None and isinstance(spec, (str, os.PathLike)) and str(spec).endswith(
            (".yaml", ".yml", ".json")) and "\n" not in str(spec):  # fmt: skip
        file = str(spec)
    spec = load_spec(spec, file=file)
    elaborator = None
    try:
        env = environment(spec, values, symbolic)
        elaborator = _Elaborator(spec, env)
        with collector.paused():  # every node survives: see archcalc.collector
            return elaborator.run(file)
    except ArchcalcError as err:
        if elaborator is not None:
            err = elaborator.together(err)
        raise err.at(file=file) from None


class _Elaborator:
    def __init__(self, spec: Spec, env: dict[str, Value]):
        self.lines: dict[int, int] = spec._lines
        self.spec, self.env = spec, env
        self.symbols = {name: env[name] for name in spec.symbols}  # what every block sees
        self.nodes: list[Node] = []
        self.warnings: list = []
        self.assumptions: list[tuple[str, str]] = []
        #: Errors that need not stop the walk (a declared size the input contradicts), each
        #: located at its innermost item; raised together, in spec order, at the end.
        self.deferred: list[ArchcalcError] = []
        self.located = 0  # how many of them have their item's line and name
        self.items: list[tuple[int | None, str | None]] = []  # (line, name) of enclosing items
        self.memo = LeafMemo()
        self.calls = CallMemo()

    def together(self, err: ArchcalcError) -> ArchcalcError:
        """The deferred errors, then ``err`` if it is not one of them, as one error."""
        if not self.deferred or getattr(err, "combined", False):
            return err
        self._locate()
        head, *rest = self.deferred
        if all(err is not e for e in self.deferred):
            rest.append(err)
        head.others = [*head.others, *rest]
        head.combined = True
        return head

    def _locate(self) -> None:
        line, name = self.items[-1] if self.items else (None, None)
        for err in self.deferred[self.located :]:
            err.at(line=line, name=name)
            err.item_located = True
        self.located = len(self.deferred)

    def run(self, file: str | None) -> Graph:
        spec, env = self.spec, self.env
        self.count(spec.layers, env, "layers", 0)
        shape = tuple(
            self.evaluate(v, env, f"input[{i}]", "input") for i, v in enumerate(spec.input)
        )
        self.nodes.append(Node(0, "input", None, "input", {"type": "input"}, (), shape, False))
        if _channels_last(shape):
            h, w, c = shape
            self.warnings.append(SpecWarning(
                "input", f"the input {list(shape)} looks channels-last; archcalc reads [C, H, W], "
                f"channels first: did you mean [{c}, {h}, {w}]?",
            ))  # fmt: skip
        top = Scope(names={"input": (0, "input")})
        out, tree = self.sequence(spec.layers, 0, "layers", env, top)
        if spec.outputs is None:
            outputs = (out,)
        else:
            outputs = tuple(
                top.lookup(name, f"outputs[{i}]") for i, name in enumerate(spec.outputs)
            )
        if self.deferred:
            raise self.together(self.deferred[0])
        values = {k: v for k, v in env.items() if isinstance(v, int)}
        return Graph(spec, values, env, self.nodes, outputs, tree, self.warnings, self.assumptions,
                     file)  # fmt: skip

    # -- expressions

    def evaluate(self, value: Any, env: Mapping[str, Value], path: str, name: str) -> Value:
        if isinstance(value, int):
            return value
        try:
            # a plain name holding a number (a block argument passed on): no parse needed
            result = env.get(value)
            if type(result) is not int:
                result = expr.evaluate_text(value, env)
        except ArchcalcError as err:
            raise err.at(path) from None
        minimum = FIELD_MINIMUM.get(name)
        if minimum is not None and not (type(result) is int and result >= minimum):
            Note(path, self.warnings, self.assumptions).at_least(
                result, minimum, lambda: f"expected {name} >= {minimum}. Received: "
                f"{name}={value!r} = {expr.to_text(result)}",
            )  # fmt: skip
        return result

    def resolve(self, layer: Any, env: Mapping[str, Value], path: str) -> dict[str, Any]:
        """A leaf layer's fields with every expression evaluated."""
        h = dict(layer.__dict__)
        for name in ("expect", "input", "when", "name"):
            h.pop(name, None)
        for name in layer.EXPR_FIELDS:
            h[name] = self._resolve_value(h[name], env, f"{path}.{name}", name)
        for name in layer.PROBABILITY_FIELDS:
            if isinstance(h[name], str):
                h[name] = self.probability(h[name], env, f"{path}.{name}", name)
        if h.get("activation") is not None:
            h["activation"] = self.activation_name(h["activation"], env, f"{path}.activation")
        return h

    def _resolve_value(self, value: Any, env, path: str, name: str) -> Any:
        if (
            value is None
            or isinstance(value, int)
            or (name == "padding" and value in expr.PADDING_MODES)
        ):
            return value
        if isinstance(value, tuple) and len(value) == 2 and value[0] == "pairs":
            return ("pairs", tuple(
                tuple(self.evaluate(v, env, f"{path}[{i}][{j}]", name) for j, v in enumerate(pair))
                for i, pair in enumerate(value[1])
            ))  # fmt: skip
        if isinstance(value, (tuple, list)):
            return tuple(self.evaluate(v, env, f"{path}[{i}]", name) for i, v in enumerate(value))
        return self.evaluate(value, env, path, name)

    @staticmethod
    def probability(text: str, env: Mapping[str, Value], path: str, name: str) -> float:
        try:
            value = expr.evaluate_fraction(text, env)
        except ArchcalcError as err:
            raise err.at(path) from None
        if not 0 <= value < 1:
            raise ArchcalcError(f"expected a probability in [0, 1). Received: {name}={text!r} = "
                                f"{value}", path=path)  # fmt: skip
        return value

    @staticmethod
    def activation_name(value: str, env: Mapping[str, Value], path: str) -> str:
        """An ``activation:`` value: a name, or a block parameter holding one."""
        if value in ACTIVATION_TYPES:
            return value
        held = env.get(value)
        if not isinstance(held, str):
            raise ArchcalcError(
                f"activation {value!r} must name an activation; the block parameter holds "
                f"{expr.to_text(held) if held is not None else 'nothing'}", path=path,
            )  # fmt: skip
        return held

    def block_env(self, call: Any, env: Mapping[str, Value], path: str) -> dict[str, Value]:
        inner = dict(self.symbols)
        for param, value in (call.__pydantic_extra__ or {}).items():
            if isinstance(value, str) and value in ACTIVATION_TYPES:
                inner[param] = value
            elif isinstance(value, str) and isinstance(env.get(value), str):
                inner[param] = env[value]  # an activation parameter passed on
            else:
                inner[param] = self.evaluate(value, env, f"{path}.{param}", param)
        return inner

    # -- expansion budget (checked before anything is expanded)

    def count(self, layers: list, env: Mapping[str, Value], path: str, total: int) -> int:
        """Items the list expands to, plus ``total``; stops at the limit. A repeat count that
        needs the input's sizes counts once here; the nodes themselves are counted too."""
        for index, layer in enumerate(layers):
            here = f"{path}[{index}]"
            kind = layer.type
            # a leaf is a node, a residual or a concat one merge node; a repeat or a block
            # call is only the nodes inside it
            own = kind != "repeat" and (kind in BUILTIN_TYPES or kind not in self.spec.blocks)
            total += own + (layer.__dict__.get("activation") is not None)
            if kind == "repeat":
                times = self._static_times(layer, env, here)
                once = self.count(layer.layers, env, f"{here}[0].layers", 0)
                total += times * once
            elif kind in ("residual", "concat"):
                for suffix, children in child_lists(layer):
                    total = self.count(children, env, here + suffix, total)
            elif kind not in BUILTIN_TYPES and kind in self.spec.blocks:
                fixed = self._fixed_size(kind)
                if fixed is not None:  # no repeat inside: its size needs no parameter values
                    total += fixed
                    if total > MAX_EXPANDED_LAYERS:
                        self._too_many(here)
                    continue
                try:
                    inner = self.block_env(layer, env, here)
                except ArchcalcError:
                    inner = {name: self.env[name] for name in self.spec.symbols}
                    inner.update({p: 1 for p in self.spec.blocks[kind].params})
                total = self.count(self.spec.blocks[kind].layers, inner, f"{here}.layers", total)
            if total > MAX_EXPANDED_LAYERS:
                self._too_many(here)
        return total

    def _fixed_size(self, block: str) -> int | None:
        """Items a block expands to when no repeat (at any depth) depends on its parameters;
        computed once per block (an upper bound: ``when:`` is not decided here)."""
        cache = self.__dict__.setdefault("_sizes", {})
        if block not in cache:
            cache[block] = None  # a recursive block is refused before this; guard anyway
            cache[block] = self._list_size(self.spec.blocks[block].layers)
        return cache[block]

    def _list_size(self, layers: list) -> int | None:
        total = 0
        for layer in layers:
            kind = layer.type
            own = kind != "repeat" and (kind in BUILTIN_TYPES or kind not in self.spec.blocks)
            total += own + (layer.__dict__.get("activation") is not None)  # as in count()
            if kind == "repeat":
                if not isinstance(layer.times, int):
                    return None
                inner = self._list_size(layer.layers)
                if inner is None:
                    return None
                total += layer.times * inner
            elif kind in ("residual", "concat"):
                for _, children in child_lists(layer):
                    inner = self._list_size(children)
                    if inner is None:
                        return None
                    total += inner
            elif kind in self.spec.blocks:
                inner = self._fixed_size(kind)
                if inner is None:
                    return None
                total += inner
            if total > MAX_EXPANDED_LAYERS:
                return total
        return total

    def _static_times(self, layer: Any, env: Mapping[str, Value], path: str) -> int:
        try:
            times = self.evaluate(layer.times, env, f"{path}.times", "times")
        except ArchcalcError:
            return 1  # depends on the input's sizes: counted as it is unrolled
        if expr.is_symbolic(times):
            raise ArchcalcError(
                f"repeat count must be a number, not {expr.to_text(times)}; give the "
                "symbol a value (--set NAME=VALUE)", path=f"{path}.times",
            )  # fmt: skip
        return times

    @staticmethod
    def _too_many(path: str) -> None:
        raise ArchcalcError(
            f"the network expands to more than {MAX_EXPANDED_LAYERS:,} layers here "
            "(repeats and blocks unrolled); refusing to analyse it",
            path=path if len(path) < 80 else f"{path[:30]}...{path[-40:]}",
        )  # fmt: skip

    # -- nodes

    def node(self, h: dict, name: str | None, inputs: tuple[int, ...], path: str,
             shown: bool = True) -> int:  # fmt: skip
        """Add one node: its rule checks the input(s) and gives the output shape."""
        if len(self.nodes) > MAX_EXPANDED_LAYERS:  # node 0 is the input, not a layer
            self._too_many(path)
        rule = rule_for(h["type"])
        if rule.merge:
            inp: Any = tuple(self.nodes[i].shape for i in inputs)
        elif rule.source:
            inp = ()
        else:
            inp = self.nodes[inputs[0]].shape
            if h["type"] == "linear":  # what the linear layer's messages may point at
                before = self.nodes[inputs[0]]
                h["_producer"] = before.type
                if before.type == "flatten":
                    h["_flattened"] = self.nodes[before.inputs[0]].shape
        note = Note(path, self.warnings, self.assumptions, self.deferred)
        try:
            rule.prepare(h, inp, note)
            shape = rule.output_shape(h, inp, note)
            if not all(type(v) is int for v in shape):  # sympy's 0*s + 1 is a number: an int
                shape = tuple(expr.as_int(v) for v in shape)
        except ArchcalcError as err:
            raise err.at(path) from None
        except ArithmeticError as err:
            if all(isinstance(v, int) for v in _numbers(inp)):
                raise
            # sympy gave up on a formula (PrecisionExhausted deciding a ceil_mode pool's last
            # window): say so; solve then asks the numeric analysis candidate by candidate
            failure = ArchcalcError(
                f"sympy could not work out this {h['type']}'s output size for every value of "
                f"the symbols ({type(err).__name__}); give them values (--set NAME=VALUE)",
                path=path,
            )
            failure.symbolic_limit = True
            raise failure from None
        self._locate()
        node = Node(len(self.nodes), path, name, h["type"], h, inputs, shape, shown)
        self.nodes.append(node)
        return node.id

    def activation(self, kind: str, x: int, path: str, layer: Any = None) -> int:
        h = {"type": kind, **{p: None for p in _ACTIVATION_PARAMS}}
        return self.node(h, None, (x,), f"{path}.activation")

    # -- the walk

    def sequence(
        self, layers: list, x: int, prefix: str, env: Mapping[str, Value], scope: Scope
    ) -> tuple[int, list[Group]]:
        """Elaborate a layer list reading node ``x``; returns its output node and its items."""
        for index, layer in enumerate(layers):
            if layer.name is not None:
                scope.later.setdefault(layer.name, f"{prefix}[{index}]")
        groups: list[Group] = []
        for index, layer in enumerate(layers):
            path = f"{prefix}[{index}]"
            if layer.name is not None and scope.later.get(layer.name) == path:
                del scope.later[layer.name]
            first = len(self.nodes)
            line = self.lines.get(id(layer))
            self.items.append((line, layer.name))
            try:
                inputs = self.inputs_of(layer, x, scope, path)
                item_env = InputEnv(env, self.nodes[inputs[0]].shape) if inputs else env
                if layer.when is not None and not self.condition(layer.when, item_env, path):
                    continue
                x, children = self.item(layer, inputs, path, env, item_env, scope)
            except ArchcalcError as err:
                if not getattr(err, "item_located", False):  # the innermost item says where
                    err.at(line=line, name=layer.name)
                    err.item_located = True
                raise
            finally:
                self.items.pop()
            if layer.name is not None:
                scope.define(layer.name, x, path)
            groups.append(Group(path, layer.name, layer.type, first, len(self.nodes), x,
                                layer.expect, item_env, children, line, inputs))  # fmt: skip
        return x, groups

    def inputs_of(self, layer: Any, x: int, scope: Scope, path: str) -> tuple[int, ...]:
        many = layer.__dict__.get("inputs")
        if many is not None:
            if layer.input is not None:
                raise ArchcalcError("give either input or inputs, not both", path=f"{path}.input")
            return tuple(scope.lookup(name, f"{path}.inputs[{i}]") for i, name in enumerate(many))
        if layer.ARITY == "none":
            if layer.input is not None:
                raise ArchcalcError(f"{layer.type} reads no tensor; remove input",
                                    path=f"{path}.input")  # fmt: skip
            return ()
        if layer.input is not None:
            return (scope.lookup(layer.input, f"{path}.input"),)
        return (x,)

    def condition(self, text: str, env: Mapping[str, Value], path: str) -> bool:
        try:
            return conditions.evaluate_condition(conditions.parse_condition(text), env, text)
        except ArchcalcError as err:
            raise err.at(f"{path}.when") from None

    def item(self, layer: Any, inputs: tuple[int, ...], path: str, env: Mapping[str, Value],
             item_env: Mapping[str, Value], scope: Scope) -> tuple[int, tuple]:  # fmt: skip
        kind = layer.type
        x = inputs[0] if inputs else 0
        if kind == "residual":
            return self.residual(layer, x, path, env, scope)
        if kind == "concat" and layer.branches is not None:
            return self.branches(layer, x, path, env, scope)
        if kind == "repeat":
            times = self.evaluate(layer.times, item_env, f"{path}.times", "times")
            if expr.is_symbolic(times):
                raise ArchcalcError(
                    f"repeat count must be a number, not {expr.to_text(times)}; give the "
                    "symbol a value (--set NAME=VALUE)", path=f"{path}.times",
                )  # fmt: skip
            iterations = []
            for k in range(times):
                x, done = self.sequence(layer.layers, x, f"{path}[{k}].layers", env, Scope(scope))
                iterations.append(tuple(done))
            return x, tuple(iterations)
        if kind not in BUILTIN_TYPES and kind not in self.spec.blocks:  # {type: act}, a parameter
            name = self.activation_name(kind, env, f"{path}.type")
            h = {"type": name, **{p: None for p in _ACTIVATION_PARAMS}}
            return self.node(h, layer.name, inputs, path), ()
        if kind not in BUILTIN_TYPES:
            inner = self.block_env(layer, item_env, path)
            key = self.calls.key(kind, self.nodes[x].shape, inner)
            stored = self.calls.lookup(key, kind) if key is not None else None
            if stored is not None:
                if len(self.nodes) + stored[2] - stored[1] > MAX_EXPANDED_LAYERS:
                    key = None  # over the limit: the walk says where
                else:
                    out, done = moved(stored, self.nodes, x, path)
                    self._locate()
                    return out, (done,)
            marks = (len(self.warnings), len(self.assumptions), len(self.deferred))
            first = len(self.nodes)
            own = Scope(names={"input": (x, path)})
            out, done = self.sequence(self.spec.blocks[kind].layers, x, f"{path}.layers", inner,
                                      own)  # fmt: skip
            if key is not None and marks == (len(self.warnings), len(self.assumptions),
                                             len(self.deferred)):  # fmt: skip
                self.calls.remember(key, path, self.nodes, first, x, out, tuple(done))
            return out, (tuple(done),)
        key = self.memo.key(layer, item_env, tuple(self.nodes[i].shape for i in inputs))
        answer = self.memo.lookup(key, layer) if key is not None else None
        if answer is not None:
            return self.replay(answer, layer.name, inputs, path), ()
        marks = (len(self.warnings), len(self.assumptions), len(self.deferred))
        h = self.resolve(layer, item_env, path)
        if h.get("like") is not None:  # center_crop to another tensor's spatial size
            h["size"] = tuple(self.nodes[scope.lookup(h["like"], f"{path}.like")].shape[1:])
        out = self.node(h, layer.name, inputs, path)
        first = len(self.nodes) - 1
        if h.get("activation") is not None:
            out = self.activation(h["activation"], out, path)
        if key is not None and marks == (len(self.warnings), len(self.assumptions),
                                         len(self.deferred)):  # fmt: skip
            self.memo.answers[key] = tuple((dict(n.hyper), n.shape) for n in self.nodes[first:])
        return out, ()

    def replay(self, answer: tuple, name: str | None, inputs: tuple[int, ...], path: str) -> int:
        """The nodes of an earlier, equal leaf item (see :mod:`archcalc.graph.memo`); they
        share one hyperparameter dict, which no pass writes to."""
        for i, (h, shape) in enumerate(answer):
            if len(self.nodes) > MAX_EXPANDED_LAYERS:
                self._too_many(path)
            node = Node(len(self.nodes), path if i == 0 else f"{path}.activation",
                        name if i == 0 else None, h["type"], h,
                        inputs if i == 0 else (len(self.nodes) - 1,), shape)  # fmt: skip
            self.nodes.append(node)
        self._locate()
        return len(self.nodes) - 1

    def residual(self, layer: Any, x: int, path: str, env, scope: Scope) -> tuple[int, tuple]:
        body, body_groups = self.sequence(layer.body, x, f"{path}.body", env, Scope(scope))
        short, short_groups = self.sequence(layer.shortcut, x, f"{path}.shortcut", env,
                                            Scope(scope))  # fmt: skip
        a, b = self.nodes[body].shape, self.nodes[short].shape
        note = Note(path, self.warnings, self.assumptions)

        def message() -> str:
            return (f"residual body gives {shape_text(a)} but the shortcut gives "
                    f"{shape_text(b)}; they must match (add a projection to the shortcut)")  # fmt: skip

        if len(a) != len(b):
            raise note.error(message)
        for p, q in zip(a, b):
            note.same(p, q, message)
        out = self.node({"type": "add"}, None, (body, short), f"{path}.add", shown=False)
        if layer.activation is not None:
            kind = self.activation_name(layer.activation, env, f"{path}.activation")
            out = self.activation(kind, out, path)
        return out, (tuple(body_groups), tuple(short_groups))

    def branches(self, layer: Any, x: int, path: str, env, scope: Scope) -> tuple[int, tuple]:
        outs, children = [], []
        for i, branch in enumerate(layer.branches):
            out, done = self.sequence(branch, x, f"{path}.branches[{i}]", env, Scope(scope))
            outs.append(out)
            children.append(tuple(done))
        shapes = [self.nodes[o].shape for o in outs]
        note = Note(path, self.warnings, self.assumptions)
        dim = layer.dim

        def message() -> str:
            return ("concat branches must agree in every dimension but "
                    f"{'channels' if dim == 0 else f'dimension {dim}'}. Received: "
                    f"{', '.join(shape_text(s) for s in shapes)}")  # fmt: skip

        for shape in shapes[1:]:
            if len(shape) != len(shapes[0]):
                raise note.error(message)
            for i, (p, q) in enumerate(zip(shape, shapes[0])):
                if i != dim:
                    note.same(p, q, message)
        out = self.node({"type": "concat", "dim": dim}, None, tuple(outs), f"{path}.cat",
                        shown=False)  # fmt: skip
        return out, tuple(children)


def _numbers(shape: Any) -> Iterator[Any]:
    """The sizes in a shape, or in a merge's tuple of shapes."""
    for value in shape:
        if isinstance(value, tuple):
            yield from value
        else:
            yield value
