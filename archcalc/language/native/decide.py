"""Deciding ``>=`` and ``==`` for every value of the symbols, as sympy would decide them,
or refusing (NotNative); and the text of an assumption."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from archcalc.language.native.values import (
    SAMPLES,
    Add,
    Floor,
    Mul,
    NotNative,
    Number,
    Sym,
    _number,
    _term,
    add,
    floor,
    mul,
    neg,
    power,
)


def _expanded(x: Any) -> dict:
    """``x`` as a polynomial: monomial (a frozenset of (atom, exp)) -> coefficient."""
    if _number(x):
        return {frozenset(): x} if x else {}
    if type(x) in (Sym, Floor):
        return {frozenset(((x, 1),)): 1}
    if type(x) is Add:
        out: dict = {frozenset(): x.const} if x.const else {}
        for key, c in x.terms:
            for m, v in _expanded(key).items():
                out[m] = out.get(m, 0) + c * v
        return {m: v for m, v in out.items() if v}
    out = {frozenset(): x.coeff}
    for base, e in x.factors:
        for _ in range(e):
            nxt: dict = {}
            for m1, v1 in out.items():
                for m2, v2 in _expanded(base).items():
                    merged = dict(m1)
                    for atom, k in m2:
                        merged[atom] = merged.get(atom, 0) + k
                    m = frozenset(merged.items())
                    nxt[m] = nxt.get(m, 0) + v1 * v2
            out = {m: v for m, v in nxt.items() if v}
    return out


def _monomial(atoms: frozenset) -> Any:
    return Mul(1, atoms) if len(atoms) > 1 or next(iter(atoms))[1] > 1 else next(iter(atoms))[0]


def expand(x: Any) -> Any:
    """sympy's ``expand(x)``: every product of sums multiplied out. Refused where sympy would
    also rewrite what is inside a ``floor`` (its expand is deep; here the argument is kept)."""
    if _number(x):
        return x
    terms = _expanded(x)
    for monomial in terms:
        for atom, _ in monomial:
            if type(atom) is Floor and not _is_expanded(atom.arg):
                raise NotNative("a floor of a product of sums")
    const = terms.pop(frozenset(), 0)
    return add(const, *(_term(c, _monomial(m)) for m, c in terms.items()))


def _is_expanded(x: Any) -> bool:
    if _number(x) or type(x) is Sym:
        return True
    if type(x) is Floor:
        return _is_expanded(x.arg)
    if type(x) is Add:
        return all(_is_expanded(key) for key, _ in x.terms)
    return all(type(b) is not Add and _is_expanded(b) for b, _ in x.factors)


def value_at(x: Any, env: dict[str, int]) -> Number:
    """``x`` exactly, with each symbol at its value in ``env``.

    >>> from archcalc.language.native import floor
    >>> H = Sym("H")
    >>> value_at(floor(H * Fraction(1, 2) - Fraction(1, 2)) + 1, {"H": 224})
    112
    """
    if _number(x):
        return x
    if type(x) is Sym:
        return env[x.name]
    if type(x) is Floor:
        v = Fraction(value_at(x.arg, env))
        return v.numerator // v.denominator
    if type(x) is Add:
        return x.const + sum(c * value_at(key, env) for key, c in x.terms)
    out = Fraction(x.coeff)
    for base, e in x.factors:
        out *= Fraction(value_at(base, env)) ** e
    return out.numerator if out.denominator == 1 else out


def names(x: Any, out: set | None = None) -> set:
    """The names of the symbols in ``x``."""
    out = set() if out is None else out
    if type(x) is Sym:
        out.add(x.name)
    elif type(x) is Floor:
        names(x.arg, out)
    elif type(x) is Add:
        for key, _ in x.terms:
            names(key, out)
    elif type(x) is Mul:
        for base, _ in x.factors:
            names(base, out)
    return out


def _samples(x: Any) -> list[Number]:
    """``x`` at a few points: every symbol at one value (1, 2, 3, 5, 64, 10**6), each
    symbol at 1 with the others at 10**6 and the other way round, and every symbol at its
    declared value (64 where it has none). Any point of positive integers is a witness."""
    free = sorted(names(x))
    points = [dict.fromkeys(free, v) for v in (1, 2, 3, 5, 64, 10**6)]
    for name in free:
        points.append({**dict.fromkeys(free, 10**6), name: 1})
        points.append({**dict.fromkeys(free, 1), name: 10**6})
    declared = SAMPLES.get() or {}
    if any(name in declared for name in free):
        points.append({name: declared.get(name, 64) for name in free})
    return [value_at(x, point) for point in points]


def _lowest(x: Any) -> Number | None:
    """A lower bound of ``x`` over positive integer symbols, where every term of its
    expansion has a non-negative coefficient on non-negative atoms; else None."""
    total: Number = 0
    for monomial, c in _expanded(x).items():
        if not monomial:
            total += c
            continue
        low: Number = c
        for atom, e in monomial:
            bound = 1 if type(atom) is Sym else _lowest(atom.arg)
            if bound is None or bound < 0 or c < 0:
                return None
            low *= (bound if type(atom) is Sym else _floor_number(bound)) ** e
        total += low
    return total


def _floor_number(x: Number) -> int:
    return x.numerator // x.denominator if type(x) is Fraction else x


def surely_nonnegative(x: Any) -> bool:
    """True where the signs of the expanded terms of ``x`` show ``x >= 0`` for every value of
    the symbols (``3*a + 2*b - 5``, ``floor(H/2 - 1/2)``); False where they do not show it."""
    low = _lowest(x)
    return low is not None and low >= 0


def at_least(value: Any, bound: Any) -> bool | None:
    """``value >= bound`` for every value of the symbols: True, False, or None (it depends),
    as sympy answers it (:func:`archcalc.language.expr.at_least`).

    True where the signs of the expanded terms show it; None where the difference is seen
    negative at one point and not at another, so that no sound reasoning (sympy's included)
    can call it always or never true; anything else is refused (NotNative), since a False
    stops the analysis with an error and sympy must be the one to say so.

    >>> from archcalc.language.native import floor
    >>> H = Sym("H")
    >>> at_least(floor(H * Fraction(1, 2) - Fraction(1, 2)) + 1, 1), at_least(H - 10, 1)
    (True, None)
    """
    difference = add(value, neg(bound))
    if _number(difference):
        return difference >= 0
    if surely_nonnegative(difference):
        return True
    samples = _samples(difference)
    if any(v < 0 for v in samples) and any(v >= 0 for v in samples):
        return None
    raise NotNative("a comparison that needs sympy's reasoning")


def equal(a: Any, b: Any) -> bool | None:
    """``a == b`` for every value of the symbols: True where expanding shows it, False for a
    difference that is a nonzero number, None where the difference is seen zero at one point
    and not at another; else refused (NotNative)."""
    if a == b:
        return True
    difference = add(a, neg(b))
    terms = _expanded(difference)
    if not terms:
        return True
    if list(terms) == [frozenset()]:
        return False
    samples = _samples(difference)
    if any(v == 0 for v in samples) and any(v != 0 for v in samples):
        return None
    raise NotNative("an equality that needs sympy's reasoning")


def condition_text(value: Any, relation: str, bound: Any) -> str:
    """:func:`archcalc.language.printing.condition_text` on these values: the expanded
    difference, each term on the side where it reads positively."""
    from archcalc.language.native.text import text

    difference = expand(add(value, neg(bound)))
    left, right = [], []
    for term in difference.args() if type(difference) is Add else [difference]:
        coeff = term if _number(term) else (term.coeff if type(term) is Mul else 1)
        (right if coeff < 0 else left).append(neg(term) if coeff < 0 else term)
    lhs = text(add(*left)) if left else "0"
    rhs = text(add(*right)) if right else "0"
    return f"{lhs} {relation} {rhs}"


def from_sympy(value: Any) -> Any:
    """A sympy value of sums, products, whole powers and floors of positive integer symbols
    as one of these values (the same number for every value of the symbols); NotNative for
    anything else. sympy itself is not imported: only its values' attributes are read."""
    if isinstance(value, int):
        return value
    if value.is_Integer:
        return int(value)
    if value.is_Rational:
        return Fraction(int(value.p), int(value.q))
    if value.is_Symbol and value.is_integer and value.is_positive:
        return Sym(value.name)
    if value.is_Add:
        return add(*(from_sympy(a) for a in value.args))
    if value.is_Mul:
        return mul(*(from_sympy(a) for a in value.args))
    if value.is_Pow and value.exp.is_Integer and value.exp >= 0:
        return power(from_sympy(value.base), int(value.exp))
    if type(value).__name__ == "floor":
        return floor(from_sympy(value.args[0]))
    raise NotNative(type(value).__name__)
