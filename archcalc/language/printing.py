"""Values as text: sympy's printer with the names archcalc's parser reads back, and the
short names of symbolic tables (:func:`shorthand`).

Kept apart from :mod:`archcalc.language.expr` (the arithmetic) and imported by it: every
``to_text`` of a value goes through here.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, Mapping

from archcalc.language import native

Value = Any  # an int, or a sympy expression (see archcalc.language.expr.Value)


def to_text(value: Value) -> str:
    """A value as text in Python syntax, readable by :func:`parse`.

    >>> to_text(5)
    '5'
    >>> from archcalc.language.expr import symbol
    >>> to_text(symbol("J") // 2)
    'floor(J/2)'
    """
    if isinstance(value, int):
        return str(value)
    short = _SHORTHAND.get()
    if short is not None:  # inside shorthand(): h1 for floor(H/2 - 1/2) + 1
        names, texts = short
        text = texts.get(value)
        if text is None:
            if isinstance(value, native.Expr):
                text = native.text(native.tidy(native.substitute(value, names)))
            else:
                short = tidy(_substitute(value, names)) if hasattr(value, "xreplace") else value
                text = _printer().doprint(short)
            texts[value] = text
        return text
    if isinstance(value, native.Expr):
        return native.text(value)
    # A symbolic table repeats few expressions many times (ResNet-152: 2,485 cells, 42
    # distinct); sympy's printer orders terms anew on every call, so remember the text.
    text = _TEXTS.get(value)
    if text is None:
        if len(_TEXTS) >= 4096:
            _TEXTS.clear()
        text = _TEXTS[value] = _printer().doprint(value)
    return text


def number(value: Value) -> str:
    """``1,644,800`` for ints, the expression for symbolic values, ``--`` for None.

    >>> number(1644800), number(None)
    ('1,644,800', '--')
    """
    if value is None:
        return "--"
    return f"{value:,}" if isinstance(value, int) else to_text(value)


_TEXTS: dict = {}
_SHORTHAND: ContextVar[tuple[dict, dict] | None] = ContextVar("shorthand", default=None)


@contextmanager
def shorthand(names: Mapping[Any, Any]):
    """Within it, :func:`to_text` prints values with the keys of ``names`` (sympy
    subexpressions) replaced by their values, each product's sums with their common factor
    taken out (:func:`tidy`): the tables of a symbolic analysis print ``64*h1*w1`` for
    ``(64*floor(H/2 - 1/2) + 64)*(floor(W/2 - 1/2) + 1)`` (see
    :mod:`archcalc.render.legend`). Nothing else changes: JSON and parsed texts are built
    outside it."""
    token = _SHORTHAND.set((dict(names), {}))
    try:
        yield
    finally:
        _SHORTHAND.reset(token)


@lru_cache(maxsize=1)
def _printer():
    from sympy.printing.str import StrPrinter

    class _Printer(StrPrinter):
        """sympy's printer, with the function names the expression parser accepts."""

        def _print(self, expr, **kwargs):
            # A symbolic total repeats its subexpressions (the same nested floors in many
            # terms): each is printed once. The text of a subexpression does not depend on
            # where it stands (parentheses are added around it by the caller).
            if kwargs or not getattr(expr, "args", None):
                return super()._print(expr, **kwargs)
            text = self._seen.get(expr)
            if text is None:
                text = self._seen[expr] = super()._print(expr)
            return text

        def _print_ceiling(self, expr):
            return f"ceil({self._print(expr.args[0])})"

        def _print_Min(self, expr):
            return "min(" + ", ".join(self._print(a) for a in expr.args) + ")"

        def _print_Max(self, expr):
            return "max(" + ", ".join(self._print(a) for a in expr.args) + ")"

        def _print_Add(self, expr, order=None):
            # Positive terms first: "J + 2*P - M" rather than "J - M + 2*P" or "-F + J".
            terms = self._as_ordered_terms(expr, order=order)
            positive = [t for t in terms if not t.could_extract_minus_sign()]
            negative = [t for t in terms if t.could_extract_minus_sign()]
            text = " + ".join(self.parenthesize(t, 40) for t in positive) if positive else ""
            for term in negative:
                body = self.parenthesize(-term, 40)
                text = f"{text} - {body}" if text else f"-{body}"
            return text

        def _print_Mod(self, expr):
            a, b = expr.args
            return f"{self.parenthesize(a, 70)} % {self.parenthesize(b, 70)}"

    printer = _Printer()
    printer._seen = _TEXTS
    return printer


def condition_text(value: Value, relation: str = ">=", bound: Value = 0) -> str:
    """``value relation bound`` with the terms moved so that both sides read positively.

    >>> from archcalc.language.expr import symbol
    >>> J, P, M = symbol("J"), symbol("P"), symbol("M")
    >>> condition_text(J + 2*P - M, ">=", 0)
    'J + 2*P >= M'
    """
    if isinstance(value, int) and isinstance(bound, int):
        return f"{value} {relation} {bound}"
    if isinstance(value, native.Expr) or isinstance(bound, native.Expr):
        return native.condition_text(value, relation, bound)
    import sympy as sp

    expr = sp.expand(value - bound)
    left, right = [], []
    for term in sp.Add.make_args(expr):
        coeff = term.as_coeff_Mul()[0]
        (right if coeff < 0 else left).append(term if coeff >= 0 else -term)
    lhs = to_text(sp.Add(*left)) if left else "0"
    rhs = to_text(sp.Add(*right)) if right else "0"
    return f"{lhs} {relation} {rhs}"


def _substitute(value: Value, names: Mapping[Any, Any]) -> Value:
    """``value.xreplace(names)``, but a ``Max`` or ``Min`` is rebuilt as it stands (its
    arguments tidied): sympy would compare every pair of arguments again, which takes
    minutes on a symbolic U-Net's memory peak (a max of dozens of products)."""
    import sympy as sp

    seen: dict = {}

    def walk(e: Any) -> Any:
        if e in names:
            return names[e]
        if not e.args:
            return e
        done = seen.get(e)
        if done is not None:
            return done
        args = [walk(a) for a in e.args]
        if isinstance(e, (sp.Max, sp.Min)):
            done = e.func(*dict.fromkeys(tidy(a) for a in args), evaluate=False)
        elif all(a is b for a, b in zip(args, e.args)):
            done = e
        else:
            done = e.func(*args)
        seen[e] = done
        return done

    return walk(value)


def tidy(value: Value) -> Value:
    """``value`` with the common factor of each sum in a product taken out, the same value:
    ``(S - 2)*(64*S - 128)`` is ``64*(S - 2)**2``. Sums of terms stay sums, and what is
    inside a rounding stays as it is.

    >>> from archcalc.language.expr import symbol
    >>> S = symbol("S")
    >>> to_text(tidy((S - 2) * (64*S - 128) + 3*(2*S + 4)))
    '6*S + 64*(S - 2)**2 + 12'
    """
    import sympy as sp

    if not isinstance(value, sp.Basic):
        return value
    terms = []
    for term in sp.Add.make_args(value):
        if term.is_Mul:
            factors = []
            for f in term.args:
                if f.is_Add:
                    content, rest = f.as_content_primitive()
                    factors += [content, rest]
                elif f.is_Pow and f.base.is_Add and f.exp.is_Integer and f.exp > 0:
                    content, rest = f.base.as_content_primitive()
                    factors += [content**f.exp, rest**f.exp]
                else:
                    factors.append(f)
            term = sp.Mul(*factors)
        terms.append(term)
    return sp.Add(*terms)
