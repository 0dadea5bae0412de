"""The vectorised search of ``archcalc solve``: one symbolic analysis, evaluated over arrays.

Instead of re-running the numeric analysis for each candidate, the sympy formula of every
constraint's reference is evaluated over numpy arrays of candidates (one broadcast axis per
unknown), with exact integer arithmetic:

* every value is kept as ``num / den`` with ``num`` an integer array and ``den`` a positive
  integer fixed by the formula's structure (``floor(H/32 - 1/32)`` is ``(H - 1) // 32``:
  the denominators are multiplied out first, then one exact floor division);
* ``int64`` is used when an interval bound of every intermediate numerator over the whole box
  stays below 2**62, Python integers (object arrays) otherwise;
* a candidate is valid when the numeric analysis would accept it: every shape size an integer
  >= 1, every symbolic field an integer of at most ``MAX_VALUE``, every condition the
  symbolic analysis assumed (``X >= Y``, ``X == Y``, ``X divisible by Y``) true, and the
  checks layers make only on numbers re-derived (a pool's padding at most half its kernel, a
  transposed convolution's output padding below stride or dilation);
* the symbolic analysis treats symbols as positive integers, so candidates with a value below
  1 are left to the exact analysis; a sample of the rest (first and last solutions, first and
  last rejected candidates, a few random ones) is checked by it too.

Anything outside what is handled here (a function the evaluator does not know, an assumption
it cannot read, a layer type whose numeric-only checks are not re-derived, a disagreement in
the sample) raises :class:`Unsupported`, and the caller falls back to the per-candidate search.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from archcalc.errors import ArchcalcError
from archcalc.language import expr

#: Most candidates the vectorised search evaluates (the per-candidate search: 100,000).
MAX_CANDIDATES = 10_000_000
#: Candidates evaluated at once (a block of the grid; blocks are sub-boxes in product order).
CHUNK = 1 << 18
#: Candidates the exact analysis re-checks (each costs one numeric analysis).
SAMPLE = 6
_INT64_SAFE = 1 << 62
#: Layer types whose checks on numbers are all either recorded as assumptions by the symbolic
#: analysis or re-derived here; anything else with a free symbol in it is not vectorised.
_CONV = {f"conv{n}d" for n in (1, 2, 3)}
_TRANSPOSE = {f"conv_transpose{n}d" for n in (1, 2, 3)}
_POOL = {f"{kind}pool{n}d" for kind in ("max", "avg") for n in (1, 2, 3)}
_SAFE = (
    _CONV | _TRANSPOSE | _POOL
    | {f"adaptive_{kind}pool{n}d" for kind in ("avg", "max") for n in (1, 2, 3)}
    | {f"batchnorm{n}d" for n in (1, 2, 3)} | {f"instance_norm{n}d" for n in (1, 2, 3)}
    | {"group_norm", "layernorm", "linear", "flatten", "concat", "add", "mul", "input"}
)  # fmt: skip
_ASSUMED = re.compile(r"^(?P<a>.+?) (?P<op>>=|==|divisible by) (?P<b>.+)$")


class Unsupported(Exception):
    """The question is outside what the vectorised path answers exactly; say why."""


# --------------------------------------------------------------------------- compiling


@dataclass(eq=False)
class _Node:
    """One subexpression: ``kind`` and ``args`` say how to compute its numerator array;
    ``den`` is its denominator (None for a condition); ``bound`` bounds ``|num|``."""

    kind: str
    args: tuple = ()
    den: int | None = 1
    bound: int = 0
    data: Any = None
    uses: int = 0


class _Compiler:
    """sympy expression -> :class:`_Node` graph, shared subexpressions compiled once."""

    def __init__(self, names: list[str], bounds: dict[str, tuple[int, int]]):
        import sympy

        self.sp = sympy
        self.symbols = {expr.symbol(n): n for n in names}
        self.limits = {n: max(abs(lo), abs(hi)) for n, (lo, hi) in bounds.items()}
        self.nodes: dict[Any, _Node] = {}
        self.peak = 0  # the largest numerator any step may produce

    def _make(self, kind: str, args: tuple, den: int | None, bound: int, data: Any = None) -> _Node:
        for arg in args:
            arg.uses += 1
        self.peak = max(self.peak, bound)
        return _Node(kind, args, den, bound, data)

    def const(self, p: int, q: int = 1) -> _Node:
        return self._make("const", (), q, abs(p), p)

    def value(self, e: Any) -> _Node:
        """A numeric node for a sympy expression (or int)."""
        if isinstance(e, int):
            return self.const(e)
        node = self.nodes.get(e)
        if node is None:
            node = self.nodes[e] = self._value(e)
        if node.den is None:
            raise Unsupported(f"a condition where a number was expected: {e}")
        return node

    def _scaled(self, nodes: list[_Node]) -> tuple[int, list[int]]:
        den = math.lcm(*(n.den for n in nodes))
        return den, [den // n.den for n in nodes]

    def _value(self, e: Any) -> _Node:
        sp = self.sp
        if e.is_Integer:
            return self.const(int(e))
        if e.is_Rational:
            return self.const(int(e.p), int(e.q))
        if e.is_Symbol:
            if e not in self.symbols:
                raise Unsupported(f"the formula has a free symbol {e} that is not solved for")
            name = self.symbols[e]
            return self._make("sym", (), 1, self.limits[name], name)
        if isinstance(e, sp.Add):
            args = [self.value(a) for a in e.args]
            den, scale = self._scaled(args)
            bound = sum(a.bound * s for a, s in zip(args, scale))
            return self._make("add", tuple(args), den, bound, scale)
        if isinstance(e, sp.Mul):
            args = [self.value(a) for a in e.args]
            return self._make("mul", tuple(args), math.prod(a.den for a in args),
                              math.prod(a.bound for a in args))  # fmt: skip
        if isinstance(e, sp.Pow):
            base, exponent = e.args
            if not exponent.is_Integer or exponent < 0 or exponent > expr.MAX_EXPONENT:
                raise Unsupported(f"a power the evaluator does not take exactly: {e}")
            b, n = self.value(base), int(exponent)
            return self._make("pow", (b,), b.den**n, b.bound**n, n)
        if isinstance(e, (sp.floor, sp.ceiling)):
            kind = "floor" if isinstance(e, sp.floor) else "ceil"
            if self._divides_by_symbols(e.args[0]):
                return self._quotient(kind, e.args[0])
            a = self.value(e.args[0])
            return self._make(kind, (a,), 1, a.bound // a.den + 1)
        if isinstance(e, (sp.Max, sp.Min)):
            args = [self.value(a) for a in e.args]
            den, scale = self._scaled(args)
            bound = max(a.bound * s for a, s in zip(args, scale))
            return self._make("max" if isinstance(e, sp.Max) else "min", tuple(args), den, bound,
                              scale)  # fmt: skip
        if isinstance(e, sp.Mod):
            a, m = self.value(e.args[0]), self.value(e.args[1])
            if m.kind != "const" or m.data == 0:
                raise Unsupported(f"a remainder by a non-constant: {e}")
            den, (sa, sm) = self._scaled([a, m])
            self.peak = max(self.peak, a.bound * sa)
            return self._make("mod", (a,), den, abs(m.data) * sm, (sa, m.data * sm))
        if isinstance(e, sp.Piecewise):
            values = [self.value(v) for v, _ in e.args]
            if e.args[-1][1] is not sp.true:
                raise Unsupported(f"a piecewise formula without an otherwise branch: {e}")
            conds = [self.condition(c) for _, c in e.args[:-1]]
            den, scale = self._scaled(values)
            bound = max(v.bound * s for v, s in zip(values, scale))
            return self._make("piecewise", (*values, *conds), den, bound, (scale, len(values)))
        if isinstance(e, (sp.Rel, sp.logic.boolalg.Boolean)):
            return self.condition(e)
        raise Unsupported(f"{type(e).__name__} in {e} (not evaluated over arrays)")

    def _divides_by_symbols(self, e: Any) -> bool:
        """True when ``e`` divides by a symbol outside any inner floor or ceil (those are
        compiled on their own)."""
        sp = self.sp
        if isinstance(e, sp.Pow) and e.exp.is_negative and e.base.free_symbols:
            return True
        if isinstance(e, (sp.floor, sp.ceiling)):
            return False
        return any(self._divides_by_symbols(a) for a in e.args)

    def _quotient(self, kind: str, e: Any) -> _Node:
        """``floor(p/q)`` (or ceil) with a symbolic divisor (a free stride): ``e`` over one
        denominator, ``p/q`` with ``p = np/dp`` and ``q = nq/dq``, is ``(np·dq) // (nq·dp)``."""
        p, q = self.sp.fraction(self.sp.together(e))
        if self._divides_by_symbols(p) or self._divides_by_symbols(q):
            raise Unsupported(f"a quotient the evaluator does not take exactly: {e}")
        top, bottom = self.value(p), self.value(q)
        self.peak = max(self.peak, top.bound * bottom.den, bottom.bound * top.den)
        return self._make("quotient", (top, bottom), 1, top.bound * bottom.den + 1, kind)

    def compare(self, a: _Node, op: str, b: _Node) -> _Node:
        """``a op b`` as a condition, by cross-multiplying the (positive) denominators."""
        if op not in ("==", "!=", "<", "<=", ">", ">="):
            raise Unsupported(f"the relation {op}")
        self.peak = max(self.peak, a.bound * b.den, b.bound * a.den)
        return self._make("cmp", (a, b), None, 0, op)

    def condition(self, e: Any) -> _Node:
        """A condition node (a boolean array) for a sympy relation or boolean."""
        sp = self.sp
        if e is sp.true or e is sp.false:
            return self._make("bool", (), None, 0, bool(e))
        node = self.nodes.get(e)
        if node is not None:
            if node.den is not None:
                raise Unsupported(f"a number where a condition was expected: {e}")
            return node
        if isinstance(e, sp.Rel):
            node = self.compare(self.value(e.lhs), e.rel_op, self.value(e.rhs))
        elif isinstance(e, (sp.And, sp.Or)):
            parts = tuple(self.condition(a) for a in e.args)
            node = self._make("and" if isinstance(e, sp.And) else "or", parts, None, 0)
        elif isinstance(e, sp.Not):
            node = self._make("not", (self.condition(e.args[0]),), None, 0)
        elif isinstance(e, sp.ITE):  # nested ceil_mode pools: if a then b else c
            node = self._make("ite", tuple(self.condition(a) for a in e.args), None, 0)
        else:
            raise Unsupported(f"{type(e).__name__} in a condition: {e}")
        self.nodes[e] = node
        return node

    def logical(self, kind: str, parts: list[_Node]) -> _Node:
        return self._make(kind, tuple(parts), None, 0)

    def integral(self, a: _Node) -> _Node | None:
        """The condition that ``a`` is an integer (None when it always is)."""
        return None if a.den == 1 else self._make("integral", (a,), None, 0)

    def divisible(self, n: _Node, g: _Node) -> _Node:
        if n.den != 1 or g.den != 1:
            raise Unsupported("a divisibility condition on fractions")
        self.peak = max(self.peak, n.bound, g.bound)
        return self._make("divisible", (n, g), None, 0)


class _Evaluator:
    """Evaluates compiled nodes over one block of candidates (arrays that broadcast)."""

    def __init__(self, env: dict[str, Any]):
        import numpy as np

        self.np, self.env, self.memo = np, env, {}

    def __call__(self, node: _Node) -> Any:
        if node.uses > 1:
            key = id(node)
            if key not in self.memo:
                self.memo[key] = self._compute(node)
            return self.memo[key]
        return self._compute(node)

    def _compute(self, node: _Node) -> Any:
        np, kind, args = self.np, node.kind, node.args
        if kind == "const" or kind == "bool":
            return node.data
        if kind == "sym":
            return self.env[node.data]
        if kind == "add":
            total = 0
            for arg, scale in zip(args, node.data):
                value = self(arg)
                total = total + (value * scale if scale != 1 else value)
            return total
        if kind == "mul":
            result = 1
            for arg in args:
                result = result * self(arg)
            return result
        if kind == "pow":
            value, result = self(args[0]), 1
            for _ in range(node.data):  # repeated products: exact for object arrays too
                result = result * value
            return result
        if kind == "floor":
            return self(args[0]) // args[0].den  # exact floor division of the numerator
        if kind == "ceil":
            return -((-self(args[0])) // args[0].den)
        if kind == "quotient":
            top, bottom = args
            p, q = self(top) * bottom.den, self(bottom) * top.den
            if np.any(q == 0):  # the numeric analysis would have refused or failed: not ours
                raise Unsupported(f"a division by zero in {node.data}()")
            return p // q if node.data == "floor" else -((-p) // q)
        if kind in ("max", "min"):
            pick = np.maximum if kind == "max" else np.minimum
            values = [self(a) * s for a, s in zip(args, node.data)]
            result = values[0]
            for value in values[1:]:
                result = pick(result, value)
            return result
        if kind == "mod":
            scale, modulus = node.data
            return (self(args[0]) * scale) % modulus  # sympy's Mod: the sign of the divisor
        if kind == "piecewise":
            scale, count = node.data
            values, conds = args[:count], args[count:]
            result = self(values[-1]) * scale[-1]
            for value, s, cond in reversed(list(zip(values, scale, conds))):
                result = np.where(self(cond), self(value) * s, result)
            return result
        if kind == "cmp":
            a, b = args
            x, y = self(a) * b.den, self(b) * a.den
            op = node.data
            return {"==": lambda: x == y, "!=": lambda: x != y, "<": lambda: x < y,
                    "<=": lambda: x <= y, ">": lambda: x > y, ">=": lambda: x >= y}[op]()  # fmt: skip
        if kind in ("and", "or"):
            combine = np.logical_and if kind == "and" else np.logical_or
            result = self(args[0])
            for arg in args[1:]:
                result = combine(result, self(arg))
            return result
        if kind == "not":
            return np.logical_not(self(args[0]))
        if kind == "ite":
            return np.where(self(args[0]), self(args[1]), self(args[2]))
        if kind == "integral":
            return self(args[0]) % args[0].den == 0
        if kind == "divisible":
            n, g = self(args[0]), self(args[1])
            safe = np.where(g == 0, 1, g)
            return np.logical_and(g != 0, n % safe == 0)
        raise AssertionError(kind)  # every kind made by _Compiler is handled above


# --------------------------------------------------------------------------- the checks


def _from_text(text: str) -> Any:
    """An assumption's side, parsed by archcalc's safe parser and built exactly in sympy."""
    import sympy

    def build(tree: tuple) -> Any:
        kind = tree[0]
        if kind == "num":
            return sympy.Integer(tree[1])
        if kind == "name":
            return expr.symbol(tree[1])
        if kind == "neg":
            return -build(tree[1])
        if kind == "bin":
            op, a, b = tree[1], build(tree[2]), build(tree[3])
            if op in ("/", "//", "%") and b == 0:
                raise Unsupported(f"a division by zero in an assumption: {text}")
            return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
                    "/": lambda: a / b, "//": lambda: sympy.floor(a / b),
                    "%": lambda: sympy.Mod(a, b), "**": lambda: a**b}[op]()  # fmt: skip
        func, args = tree[1], [build(t) for t in tree[2]]
        calls = {"min": lambda: sympy.Min(*args), "max": lambda: sympy.Max(*args),
                 "floor": lambda: sympy.floor(args[0]), "ceil": lambda: sympy.ceiling(args[0])}  # fmt: skip
        if func not in calls:
            raise Unsupported(f"{func}() in an assumption: {text}")
        return calls[func]()

    try:
        return build(expr.parse(text))
    except ArchcalcError as err:
        raise Unsupported(f"cannot read the assumption {text!r}: {err}") from None


def _assumption(compiler: _Compiler, text: str) -> _Node:
    match = _ASSUMED.match(text)
    if not match:
        raise Unsupported(f"cannot read the assumption {text!r}")
    a, b = compiler.value(_from_text(match["a"])), compiler.value(_from_text(match["b"]))
    if match["op"] == "divisible by":
        return compiler.divisible(a, b)
    return compiler.compare(a, match["op"], b)


def _numbers(value: Any) -> Iterator[Any]:
    """The numbers inside a hyperparameter (ints, sympy values, nested tuples)."""
    if isinstance(value, tuple):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, int) and not isinstance(value, bool):
        yield value
    elif hasattr(value, "free_symbols") and not isinstance(value, (str, float)):
        yield value  # a sympy value


def _symbolic(values: Any) -> bool:
    return any(not isinstance(v, int) and v.free_symbols for v in values)


def _validity(compiler: _Compiler, analysis: Any) -> list[_Node]:
    """Conditions under which the numeric analysis accepts a candidate (see the module doc)."""
    conds: list[_Node] = []
    nodes = analysis.graph.nodes

    def at_least(value: Any, bound: int) -> None:
        node = compiler.value(value)
        whole = compiler.integral(node)
        if whole is not None:
            conds.append(whole)
        conds.append(compiler.compare(node, ">=", compiler.const(bound)))

    for node in nodes:
        hyper = [v for key, v in node.hyper.items() if not key.startswith("_")]
        numbers = list(_numbers(tuple(hyper)))
        inputs = [v for i in node.inputs for v in nodes[i].shape]
        if not _symbolic((*node.shape, *numbers, *inputs)):
            continue
        if node.type not in _SAFE and node.type in _rules():
            raise Unsupported(f"{node.path}: a {node.type} layer with a free symbol in it")
        for size in node.shape:
            if not isinstance(size, int):
                at_least(size, 1)
        for value in numbers:
            if not isinstance(value, int) and value.free_symbols:
                v = compiler.value(value)
                whole = compiler.integral(v)
                conds += [whole] if whole is not None else []
                limit = compiler.const(expr.MAX_VALUE)
                conds += [compiler.compare(v, "<=", limit),
                          compiler.compare(v, ">=", compiler.const(-expr.MAX_VALUE))]  # fmt: skip
        h = node.hyper
        if node.type in _POOL:  # PyTorch's rule, checked by the pool on numbers only
            for k, p in zip(h["kernel_size"], h["padding"]):
                if _symbolic((k, p)):
                    conds.append(compiler.compare(compiler.value(2 * p), "<=", compiler.value(k)))
        if node.type in _TRANSPOSE:
            for op, s, d in zip(h["output_padding"], h["stride"], h["dilation"]):
                if _symbolic((op, s, d)):
                    import sympy

                    conds.append(compiler.compare(compiler.value(op), "<",
                                                  compiler.value(sympy.Max(s, d))))  # fmt: skip
        if node.type in ("add", "mul"):
            # broadcasting treats a size that is 1 specially; with symbols the analysis
            # compares sizes as they stand, so only identical sizes are safe here
            for sizes in zip(*(nodes[i].shape for i in node.inputs)):
                if len(set(sizes)) > 1 and _symbolic(sizes):
                    raise Unsupported(f"{node.path}: broadcasting of symbolic sizes")
    known: dict[str, tuple] | None = None
    for _, text in analysis.assumptions:
        try:
            conds.append(_assumption(compiler, text))
        except Unsupported:
            # a condition the parser cannot read (a ceil_mode pool's Piecewise in it): found
            # among the ones the layers state, written the same way, and built from the formula
            known = _known_conditions(nodes) if known is None else known
            if text not in known:
                raise
            value, bound = known[text]
            conds.append(compiler.compare(compiler.value(value), ">=", compiler.value(bound)))
    return conds


def _known_conditions(nodes: list) -> dict[str, tuple]:
    """Text -> (value, bound) of ``value >= bound`` for the checks layers make with
    ``Note.at_least``: every size >= 1, and a window that fits in the padded input."""
    known = {}

    def add(value: Any, bound: Any) -> None:
        if _symbolic((value, bound)):
            known[expr.condition_text(value, ">=", bound)] = (value, bound)

    for node in nodes:
        for size in node.shape:
            add(size, 1)
        h = node.hyper
        if node.type in _CONV | _POOL and node.inputs and "kernel_size" in h:
            inp = nodes[node.inputs[0]].shape
            pe = h.get("padding_end", h["padding"])
            d = h.get("dilation", (1,) * len(h["kernel_size"]))
            for n, k, p, q, di in zip(inp[1:], h["kernel_size"], h["padding"], pe, d):
                add(n + p + q, di * (k - 1) + 1)
    return known


def _rules() -> dict:
    from archcalc.layers.registry import RULES

    return RULES


# --------------------------------------------------------------------------- the search


@dataclass
class Outcome:
    """What the vectorised search found, in the order of the per-candidate search."""

    solutions: list[dict[str, int]] = field(default_factory=list)
    #: per constraint: how many candidates satisfy it alone, and the first four
    each: list[tuple[int, list[dict[str, int]]]] = field(default_factory=list)
    checked: int = 0  # candidates re-checked by the exact analysis
    exact: int = 0  # candidates with a value below 1, decided by the exact analysis only


Exact = Callable[[dict[str, int]], "list[bool] | None"]


def search(analysis: Any, references: list[tuple[Any, str, Any]], unknowns: list[str],
           bounds: dict[str, tuple[int, int]], exact: Exact) -> Outcome:  # fmt: skip
    """Every candidate in ``bounds`` that satisfies all ``references`` (lhs, op, rhs; a
    shape is a list on both sides, compared with == or !=), found over numpy arrays.

    ``exact(assignment)`` is the per-candidate verdict of the numeric analysis: None for an
    invalid network, else one bool per constraint. Raises :class:`Unsupported` when the
    answer could not be made exact.
    """
    import numpy  # noqa: F401  (fails early, before any work, where numpy is missing)

    positive = {n: (max(lo, 1), hi) for n, (lo, hi) in bounds.items()}
    compiler = _Compiler(unknowns, positive)
    valid = _validity(compiler, analysis)
    holds = [_constraint(compiler, lhs, op, rhs) for lhs, op, rhs in references]
    dtype = "int64" if compiler.peak < _INT64_SAFE else "object"
    outcome = Outcome(each=[(0, []) for _ in references])
    sample = _Sample(positive, unknowns)
    box = [positive[n] for n in unknowns]
    if all(lo <= hi for lo, hi in box):
        for block in _blocks(box):
            _run_block(block, unknowns, dtype, valid, holds, outcome, sample)
    _merge_exact(bounds, positive, unknowns, exact, outcome)
    for assignment, verdict in sample.items():
        outcome.checked += 1
        try:
            actual = exact(assignment)
        except ArchcalcError as err:
            raise Unsupported(f"the exact analysis fails at {_show(assignment)}: {err}") from None
        if actual != verdict:
            raise Unsupported(f"the exact analysis disagrees at {_show(assignment)}")
    return outcome


def _constraint(compiler: _Compiler, lhs: Any, op: str, rhs: Any) -> _Node:
    if isinstance(rhs, list):
        if op not in ("==", "!="):
            raise Unsupported("a shape compared with an order")
        if len(lhs) != len(rhs):
            return compiler.condition(compiler.sp.true if op == "!=" else compiler.sp.false)
        same = compiler.logical("and", [compiler.compare(compiler.value(a), "==",
                                                         compiler.value(b))
                                        for a, b in zip(lhs, rhs)])  # fmt: skip
        return same if op == "==" else compiler.logical("not", [same])
    wanted = compiler.value(rhs)
    if wanted.den != 1:  # the exact analysis refuses a non-integer value
        raise Unsupported(f"the value {rhs} is not an integer for every candidate")
    return compiler.compare(compiler.value(lhs), op, wanted)


def _blocks(box: list[tuple[int, int]]) -> Iterator[list[tuple[int, int]]]:
    """Sub-boxes of at most about CHUNK candidates, in the product's order."""
    (lo, hi), rest = box[0], box[1:]
    inner = math.prod(h - l + 1 for l, h in rest)  # noqa: E741
    if inner <= CHUNK:
        rows = max(1, CHUNK // inner)
        for start in range(lo, hi + 1, rows):
            yield [(start, min(start + rows - 1, hi)), *rest]
    else:
        for value in range(lo, hi + 1):
            for sub in _blocks(rest):
                yield [(value, value), *sub]


class _Sample:
    """Candidates to re-check exactly: first and last solutions, rejected candidates and
    non-solutions, and a few picked at random (fixed seed), with the vectorised verdicts."""

    def __init__(self, box: dict[str, tuple[int, int]], unknowns: list[str]):
        rng = random.Random(13)
        self.unknowns = unknowns
        self.random = {tuple(rng.randint(lo, hi) for lo, hi in box.values())
                       for _ in range(SAMPLE)} if all(lo <= hi for lo, hi in box.values()) else set()  # fmt: skip
        self.firsts: dict[str, tuple] = {}
        self.lasts: dict[str, tuple] = {}
        self.verdicts: dict[tuple, list[bool] | None] = {}

    def items(self) -> list[tuple[dict[str, int], list[bool] | None]]:
        # the edges first, where rounding and validity change; then the random ones
        chosen = [where.get(kind) for kind in ("solution", "invalid", "other")
                  for where in (self.firsts, self.lasts)]  # fmt: skip
        chosen += sorted(self.random)
        unique = list(dict.fromkeys(c for c in chosen if c is not None))[:SAMPLE]
        return [(dict(zip(self.unknowns, c)), self.verdicts[c]) for c in unique]


def _run_block(block, unknowns, dtype, valid, holds, outcome: Outcome, sample: _Sample) -> None:
    import numpy as np

    shape = tuple(hi - lo + 1 for lo, hi in block)
    env = {}
    for axis, (name, (lo, hi)) in enumerate(zip(unknowns, block)):
        view = [1] * len(block)
        view[axis] = hi - lo + 1
        values = np.arange(lo, hi + 1, dtype=np.int64)
        env[name] = (values if dtype == "int64" else values.astype(object)).reshape(view)
    evaluate = _Evaluator(env)
    ok = np.ones(shape, dtype=bool)
    for cond in valid:
        ok &= np.asarray(evaluate(cond), dtype=bool)
    each = [np.broadcast_to(np.asarray(evaluate(h), dtype=bool), shape) & ok for h in holds]
    every = ok.copy()
    for mask in each:
        every &= mask
    origin = [lo for lo, _ in block]

    def at(flat: np.ndarray) -> list[tuple]:
        axes = [(index + lo).tolist() for index, lo in zip(np.unravel_index(flat, shape), origin)]
        return list(zip(*axes))

    def remember(kind: str, mask: np.ndarray) -> None:
        hits = np.flatnonzero(mask)
        if hits.size:
            first, last = at(hits[[0, -1]])
            sample.firsts.setdefault(kind, first)
            sample.lasts[kind] = last
            for c, where in ((first, hits[0]), (last, hits[-1])):
                sample.verdicts[c] = _verdict(ok, each, where)

    outcome.solutions += _assignments(unknowns, at(np.flatnonzero(every)))
    for i, mask in enumerate(each):
        hits = np.flatnonzero(mask)
        count, first = outcome.each[i]
        if len(first) < 4:
            first = first + [dict(zip(unknowns, c)) for c in at(hits[: 4 - len(first)])]
        outcome.each[i] = (count + int(hits.size), first)
    remember("solution", every)
    remember("invalid", ~ok)
    remember("other", ok & ~every)
    for c in sample.random:
        if all(lo <= v <= hi for v, (lo, hi) in zip(c, block)):
            where = np.ravel_multi_index(tuple(v - lo for v, (lo, _) in zip(c, block)), shape)
            sample.verdicts[c] = _verdict(ok, each, where)


def _assignments(unknowns: list[str], coords: list[tuple]) -> list[dict[str, int]]:
    """``{name: value}`` per candidate (literal dicts for one or two unknowns: 3x faster)."""
    if len(unknowns) == 1:
        (a,) = unknowns
        return [{a: x} for (x,) in coords]
    if len(unknowns) == 2:
        a, b = unknowns
        return [{a: x, b: y} for x, y in coords]
    return [dict(zip(unknowns, c)) for c in coords]


def _verdict(ok, each, where) -> list[bool] | None:
    if not ok.flat[where]:
        return None
    return [bool(mask.flat[where]) for mask in each]


def _merge_exact(bounds, positive, unknowns, exact: Exact, outcome: Outcome) -> None:
    """Decide the candidates with a value below 1 by the exact analysis, in order."""
    import itertools

    axes = [range(lo, hi + 1) for lo, hi in (bounds[n] for n in unknowns)]
    below = [c for c in itertools.product(*axes)
             if any(v < positive[n][0] for v, n in zip(c, unknowns))] if any(
        bounds[n][0] < 1 for n in unknowns) else []  # fmt: skip
    if not below:
        return
    from archcalc.questions.solve import MAX_CANDIDATES as SLOW

    if len(below) > SLOW:
        raise Unsupported(f"{len(below):,} candidates have a value below 1 (at most {SLOW:,})")
    key = lambda a: tuple(a[n] for n in unknowns)  # noqa: E731
    for c in below:
        assignment = dict(zip(unknowns, c))
        try:
            verdict = exact(assignment)
        except ArchcalcError as err:
            raise Unsupported(f"the exact analysis fails at {_show(assignment)}: {err}") from None
        outcome.exact += 1
        if verdict is None:
            continue
        if all(verdict):
            outcome.solutions.append(assignment)
        for i, ok in enumerate(verdict):
            if ok:
                count, first = outcome.each[i]
                outcome.each[i] = (count + 1, sorted([*first, assignment], key=key)[:4])
    outcome.solutions.sort(key=key)


def _show(assignment: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in assignment.items())
