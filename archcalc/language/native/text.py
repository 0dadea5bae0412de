"""Printing: sympy's StrPrinter as archcalc configures it (archcalc.language.printing).

The terms of a sum in sympy's order (``as_ordered_terms``: by the exponents of its
generators, which are sorted by ``sort_key``), positive terms first; the factors of a
product by ``sort_key``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from archcalc.language.native.values import (
    Add,
    Floor,
    Mul,
    Sym,
    _coeff_mul,
    _mul_of,
    _number,
    _pow,
    neg,
)

# sympy's class_key of each kind, and the sort key of the number 1
_NUMBER_CLASS, _ONE_KEY = (1, 0, "Number"), ((1, 0, "Number"), (0, ()), (), 1)
_CLASS = {Sym: (2, 0, "Symbol"), Add: (3, 1, "Add"), Mul: (3, 0, "Mul"), Floor: (4, 10000, "floor")}
# sympy's printing precedences (sympy.printing.precedence.PRECEDENCE)
ADD, MUL, POW, FUNC, ATOM = 40, 50, 60, 70, 1000


def _factors(x: Any) -> list:
    """A product's factors as sympy lists them: bases, and powers of bases."""
    if type(x) is Mul:
        return [_pow(b, e) for b, e in x.factors]
    return [x]


def sort_key(x: Any) -> tuple:
    """sympy's ``default_sort_key``."""
    if _number(x):
        return (_NUMBER_CLASS, (0, ()), (), x)
    if type(x) is Sym:
        return (_CLASS[Sym], (1, (x.name,)), _ONE_KEY, 1)
    coeff, core = _coeff_mul(x)
    exp = 1
    if type(core) is Mul and core.is_pow:
        ((core, exp),) = core.factors
    if type(core) is Sym:
        args: tuple = (core.name,)
    elif type(core) is Add:
        args = tuple(sort_key(t) for t in ordered_terms(core))
    elif type(core) is Mul:
        args = tuple(sort_key(f) for f in ordered_factors(core))
    else:
        args = (sort_key(core.arg),)
    return (_CLASS[type(core)], (len(args), args), sort_key(exp), coeff)


def ordered_factors(x: Any) -> list:
    """sympy's ``as_ordered_factors``: the number first, then the rest by sort_key."""
    coeff, core = _coeff_mul(x)
    rest = sorted(_factors(core), key=sort_key)
    return ([coeff] if coeff != 1 else []) + rest


def ordered_terms(x: Add) -> list:
    """sympy's ``as_ordered_terms`` (lexicographic, the generators sorted by sort_key)."""
    args = x.args()
    # sympy's special case: a positive number and a negative multiple of one factor keep
    # that order (1 - 2*x, not -2*x + 1)
    if (
        len(args) == 2
        and _number(args[0])
        and args[0] > 0
        and type(args[1]) is Mul
        and args[1].coeff < 0
        and len(args[1].factors) == 1
    ):
        return args
    split = []
    gens: set = set()
    for term in args:
        coeff, core = (term, 1) if _number(term) else _coeff_mul(term)
        powers = {}
        if core != 1:
            for factor in _factors(core):
                base, e = (factor, 1)
                if type(factor) is Mul and factor.is_pow:
                    ((base, e),) = factor.factors
                powers[base] = e
                gens.add(base)
        split.append((term, coeff, powers))
    order = sorted(gens, key=sort_key)

    def key(item: tuple) -> tuple:
        _, coeff, powers = item
        return tuple(-powers.get(g, 0) for g in order), (), ((False, 0.0), (float(coeff), 0.0))

    return [term for term, _, _ in sorted(split, key=key)]


def _minus(x: Any) -> bool:
    """sympy's ``could_extract_minus_sign`` for a term of a sum."""
    if _number(x):
        return x < 0
    return type(x) is Mul and x.coeff < 0


def _precedence(x: Any) -> int:
    """sympy's ``precedence``: a negative number or product binds as a sum."""
    if _number(x):
        return ADD if x < 0 else (MUL if type(x) is Fraction else ATOM)
    if type(x) is Add:
        return ADD
    if type(x) is Mul:
        return POW if x.is_pow else (ADD if x.coeff < 0 else MUL)
    return FUNC if type(x) is Floor else ATOM


def _paren(x: Any, level: int) -> str:
    body = text(x)
    return f"({body})" if _precedence(x) <= level else body


_TEXTS: dict = {}


def text(x: Any) -> str:
    """``x`` as archcalc prints a sympy value (see :mod:`archcalc.language.printing`)."""
    if _number(x):
        return str(x)
    known = _TEXTS.get(x)
    if known is not None:
        return known
    if len(_TEXTS) >= 4096:
        _TEXTS.clear()
    _TEXTS[x] = out = _text(x)
    return out


def _text(x: Any) -> str:
    if type(x) is Sym:
        return x.name
    if type(x) is Floor:
        return f"floor({text(x.arg)})"
    if type(x) is Add:
        terms = ordered_terms(x)
        # archcalc's order: positive terms first ("J + 2*P - M", not "J - M + 2*P")
        out = " + ".join(_paren(t, ADD) for t in terms if not _minus(t))
        for t in (t for t in terms if _minus(t)):
            body = _paren(neg(t), ADD)
            out = f"{out} - {body}" if out else f"-{body}"
        return out
    if x.is_pow:
        ((base, e),) = x.factors
        return f"{_paren(base, POW)}**{e}"
    # a product: sign, the coefficient's numerator, the factors by sort_key, "/denominator"
    prec = _precedence(x)
    sign, coeff = ("-", Fraction(-x.coeff)) if x.coeff < 0 else ("", Fraction(x.coeff))
    top = [coeff.numerator] if coeff.numerator != 1 else []
    top += sorted(_factors(_mul_of(1, dict(x.factors))), key=sort_key)
    shown = "*".join(_paren(f, prec) for f in top) if top else "1"
    return sign + shown + (f"/{coeff.denominator}" if coeff.denominator != 1 else "")
