"""Exact arithmetic over numpy arrays of candidates, compiled from sympy formulas.

The compiler of :mod:`archcalc.questions.vectorised`: a sympy expression becomes a graph of
:class:`Node` (shared subexpressions once), each value kept as an integer numerator array
over a fixed positive denominator, with a bound on the numerator over the whole box so that
``int64`` is used only where it cannot overflow; :class:`Evaluator` computes the graph over
one block of candidates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from archcalc.language import expr
from archcalc.questions.unsupported import Unsupported

# --------------------------------------------------------------------------- compiling


@dataclass(eq=False)
class Node:
    """One subexpression: ``kind`` and ``args`` say how to compute its numerator array;
    ``den`` is its denominator (None for a condition); ``bound`` bounds ``|num|``."""

    kind: str
    args: tuple = ()
    den: int | None = 1
    bound: int = 0
    data: Any = None
    uses: int = 0


class Compiler:
    """sympy expression -> :class:`Node` graph, shared subexpressions compiled once."""

    def __init__(self, names: list[str], bounds: dict[str, tuple[int, int]]):
        import sympy

        self.sp = sympy
        self.symbols = {expr.symbol(n): n for n in names}
        self.limits = {n: max(abs(lo), abs(hi)) for n, (lo, hi) in bounds.items()}
        self.nodes: dict[Any, Node] = {}
        self.compared: dict[tuple, Node] = {}  # (id(a), op, id(b)) -> its condition
        self.constants: dict[tuple[int, int], Node] = {}
        self.peak = 0  # the largest numerator any step may produce

    def _make(self, kind: str, args: tuple, den: int | None, bound: int, data: Any = None) -> Node:
        for arg in args:
            arg.uses += 1
        self.peak = max(self.peak, bound)
        return Node(kind, args, den, bound, data)

    def const(self, p: int, q: int = 1) -> Node:
        node = self.constants.get((p, q))
        if node is None:
            node = self.constants[p, q] = self._make("const", (), q, abs(p), p)
        return node

    def value(self, e: Any) -> Node:
        """A numeric node for a sympy expression (or int)."""
        if isinstance(e, int):
            return self.const(e)
        node = self.nodes.get(e)
        if node is None:
            node = self.nodes[e] = self._value(e)
        if node.den is None:
            raise Unsupported(f"a condition where a number was expected: {e}")
        return node

    def _scaled(self, nodes: list[Node]) -> tuple[int, list[int]]:
        den = math.lcm(*(n.den for n in nodes))
        return den, [den // n.den for n in nodes]

    def _value(self, e: Any) -> Node:
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

    def _quotient(self, kind: str, e: Any) -> Node:
        """``floor(p/q)`` (or ceil) with a symbolic divisor (a free stride): ``e`` over one
        denominator, ``p/q`` with ``p = np/dp`` and ``q = nq/dq``, is ``(np·dq) // (nq·dp)``."""
        p, q = self.sp.fraction(self.sp.together(e))
        if self._divides_by_symbols(p) or self._divides_by_symbols(q):
            raise Unsupported(f"a quotient the evaluator does not take exactly: {e}")
        top, bottom = self.value(p), self.value(q)
        self.peak = max(self.peak, top.bound * bottom.den, bottom.bound * top.den)
        return self._make("quotient", (top, bottom), 1, top.bound * bottom.den + 1, kind)

    def compare(self, a: Node, op: str, b: Node) -> Node:
        """``a op b`` as a condition, by cross-multiplying the (positive) denominators."""
        if op not in ("==", "!=", "<", "<=", ">", ">="):
            raise Unsupported(f"the relation {op}")
        # the same check recurs at every layer of a stage (ResNet-50: 346 conditions, 44
        # distinct): one node each, evaluated once
        key = (id(a), op, id(b))
        node = self.compared.get(key)
        if node is None:
            self.peak = max(self.peak, a.bound * b.den, b.bound * a.den)
            node = self.compared[key] = self._make("cmp", (a, b), None, 0, op)
        return node

    def condition(self, e: Any) -> Node:
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

    def logical(self, kind: str, parts: list[Node]) -> Node:
        return self._make(kind, tuple(parts), None, 0)

    def integral(self, a: Node) -> Node | None:
        """The condition that ``a`` is an integer (None when it always is)."""
        return None if a.den == 1 else self._make("integral", (a,), None, 0)

    def divisible(self, n: Node, g: Node) -> Node:
        if n.den != 1 or g.den != 1:
            raise Unsupported("a divisibility condition on fractions")
        self.peak = max(self.peak, n.bound, g.bound)
        return self._make("divisible", (n, g), None, 0)


class Evaluator:
    """Evaluates compiled nodes over one block of candidates (arrays that broadcast)."""

    def __init__(self, env: dict[str, Any]):
        import numpy as np

        self.np, self.env, self.memo = np, env, {}

    def __call__(self, node: Node) -> Any:
        if node.uses > 1:
            key = id(node)
            if key not in self.memo:
                self.memo[key] = self._compute(node)
            return self.memo[key]
        return self._compute(node)

    def _compute(self, node: Node) -> Any:
        np, kind, args = self.np, node.kind, node.args
        if kind == "const" or kind == "bool":
            return node.data
        if kind == "sym":
            return self.env[node.data]
        if kind == "add":
            return self._sum(args, node.data)
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
        raise AssertionError(kind)  # every kind made by Compiler is handled above

    def _sum(self, args: tuple, scales: list[int]) -> Any:
        """``sum_i s_i t_i``, where the products among the terms that share their widest
        factor are summed before it multiplies in: ``sum_i s_i a_i(H) b(W) = (sum_i s_i
        a_i(H)) b(W)``, one product over the whole block per distinct ``b`` rather than one
        per term (ResNet-50's MACs: 17 terms, 5 distinct factors in W). Exact: integers."""
        total: Any = 0
        groups: dict[int, list] = {}  # id(shared factor) -> [its value, sum of the rests]
        for arg, scale in zip(args, scales):
            if arg.kind == "mul":
                factors = [self(f) for f in arg.args]
                j = _widest(self.np, factors)
                if j is not None:
                    rest: Any = scale
                    for i, factor in enumerate(factors):
                        if i != j:
                            rest = rest * factor
                    group = groups.get(id(arg.args[j]))
                    if group is None:
                        groups[id(arg.args[j])] = [factors[j], rest]
                    else:
                        group[1] = group[1] + rest
                    continue
            value = self(arg)
            total = total + (value * scale if scale != 1 else value)
        for shared, rest in groups.values():
            total = total + rest * shared
        return total


def _widest(np: Any, factors: list) -> int | None:
    """The factor whose leaving out shrinks the product's shape (the one that widens it to
    the block, along the last axis it spans), or None where none does."""
    shapes = [np.shape(f) for f in factors]
    if len(shapes) < 2:
        return None
    whole = math.prod(np.broadcast_shapes(*shapes))
    order = sorted(range(len(shapes)), key=lambda i: (-math.prod(shapes[i]), -len(shapes[i]),
                                                     [-(n > 1) for n in reversed(shapes[i])]))  # fmt: skip
    for j in order:
        rest = np.broadcast_shapes(*(s for i, s in enumerate(shapes) if i != j))
        if math.prod(rest) < whole:
            return j
    return None
