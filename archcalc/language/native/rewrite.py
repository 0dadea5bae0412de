"""What the tables do to a value before printing it, as sympy does it: replace subexpressions
(a size by its short name, ``xreplace``), and take each sum's common factor out of a product
(``as_content_primitive``), for :mod:`archcalc.render.legend` and
:func:`archcalc.language.printing.shorthand`."""

from __future__ import annotations

from fractions import Fraction
from math import gcd
from typing import Any, Mapping

from archcalc.language.native.values import (
    Add,
    Floor,
    Mul,
    NotNative,
    Number,
    _coeff_mul,
    _number,
    _pow,
    add,
    floor,
    mul,
    neg,
    power,
)


def args_of(x: Any) -> list:
    """sympy's ``x.args``: a sum's number and terms, a product's number and factors (powers
    included), a power's base and exponent, a floor's argument; nothing for an atom."""
    if type(x) is Add:
        return x.args()
    if type(x) is Mul:
        if x.is_pow:
            ((base, e),) = x.factors
            return [base, e]
        return ([x.coeff] if x.coeff != 1 else []) + [_pow(b, e) for b, e in x.factors]
    if type(x) is Floor:
        return [x.arg]
    return []


def rebuild(x: Any, args: list) -> Any:
    """sympy's ``x.func(*args)``: the same kind of value on new arguments, evaluated."""
    if type(x) is Add:
        return add(*args)
    if type(x) is Floor:
        return floor(args[0])
    if x.is_pow:
        return power(args[0], args[1])
    return mul(*args)


def coeff_add(x: Any) -> tuple[Number, Any]:
    """sympy's ``as_coeff_Add``: ``(1, floor(H/2))`` for ``floor(H/2) + 1``."""
    if _number(x):
        return x, 0
    if type(x) is Add and x.const != 0:
        return x.const, add(*x.args()[1:])
    return 0, x


def substitute(x: Any, names: Mapping[Any, Any]) -> Any:
    """``x`` with each key of ``names`` replaced by its value, every part rebuilt (evaluated)
    where an argument changed, as :func:`archcalc.language.printing._substitute` does."""
    seen: dict = {}

    def walk(e: Any) -> Any:
        if not _number(e) and e in names:
            return names[e]
        args = args_of(e)
        if not args:
            return e
        done = seen.get(e)
        if done is None:
            new = [walk(a) for a in args]
            unchanged = all(a is b for a, b in zip(new, args))
            done = seen[e] = e if unchanged else rebuild(e, new)
        return done

    return walk(x)


def tidy(x: Any) -> Any:
    """:func:`archcalc.language.printing.tidy`: in each product, every sum's (and every power
    of a sum's) common factor taken out: ``(S - 2)*(64*S - 128)`` is ``64*(S - 2)**2``."""
    if _number(x):
        return x
    terms = []
    for term in x.args() if type(x) is Add else [x]:
        if type(term) is Mul and not term.is_pow:
            factors: list = []
            for f in args_of(term):
                if type(f) is Add:
                    factors += content_primitive(f)
                elif type(f) is Mul and f.is_pow and type(args_of(f)[0]) is Add:
                    base, e = args_of(f)
                    content, rest = content_primitive(base)
                    factors += [content**e, power(rest, e)]
                else:
                    factors.append(f)
            term = mul(*factors)
        terms.append(term)
    return add(*terms)


def _keep_coeff(c: Number, x: Any) -> Any:
    """sympy's ``_keep_coeff`` where it evaluates (a number times a sum it keeps unevaluated,
    which these values do not model)."""
    if c != 1 and type(x) is Add:
        raise NotNative("a number times a sum, unevaluated")
    return mul(c, x)


def _content(x: Any) -> tuple[Number, Any]:
    """sympy's ``as_content_primitive`` of any value (radical=False, clear=True)."""
    if _number(x):
        return (abs(x), 1 if x > 0 else -1) if x else (1, 0)
    if type(x) is Add:
        return content_primitive(x)
    if type(x) is Mul and x.is_pow:
        base, e = args_of(x)
        if type(base) is Add:
            c, rest = content_primitive(base)
            return c**e, power(rest, e)
        return 1, x
    if type(x) is Mul:
        coeff: Number = 1
        parts = []
        for f in args_of(x):
            c, rest = _content(f)
            coeff *= c
            if rest != 1:
                parts.append(rest)
        return coeff, mul(*parts)
    return 1, x


def content_primitive(x: Add) -> tuple[Number, Any]:
    """sympy's ``Add.as_content_primitive``: ``(2, x + 2)`` for ``2*x + 4``, each term's own
    content taken out first, then the greatest common divisor of the numerators over the
    least common multiple of the denominators."""
    rebuilt = add(*(_keep_coeff(*_content(a)) for a in x.args()))
    if type(rebuilt) is not Add:  # terms met: sympy's Expr.primitive
        if rebuilt == 0:
            return 1, 0
        c, rest = _coeff_mul(rebuilt) if not _number(rebuilt) else (rebuilt, 1)
        c = Fraction(c)
        return (_normal_number(-c), neg(rest)) if c < 0 else (_normal_number(c), rest)
    split = [(Fraction(t), 1) if _number(t) else _coeff_mul(t) for t in rebuilt.args()]
    split = [(Fraction(c), m) for c, m in split]
    numerators, denominators = 0, 1
    for c, _ in split:
        numerators = gcd(numerators, c.numerator)
        denominators = denominators * c.denominator // gcd(denominators, c.denominator)
    if numerators == denominators == 1:
        return 1, rebuilt
    terms = [
        _keep_coeff((c.numerator // numerators) * (denominators // c.denominator), m)
        for c, m in split
    ]
    return _normal_number(Fraction(numerators, denominators)), add(*terms)


def _normal_number(x: Fraction) -> Number:
    return x.numerator if x.denominator == 1 else x
