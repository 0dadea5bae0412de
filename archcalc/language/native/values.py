"""The values and their arithmetic: sympy's ``Add``, ``Mul`` (with ``Pow``) and ``floor``
for positive integer symbols, evaluated as sympy evaluates them."""

from __future__ import annotations

from contextvars import ContextVar
from fractions import Fraction
from typing import Any, Union

Number = Union[int, Fraction]


class NotNative(Exception):
    """An operation these values do not model; the caller falls back to sympy."""


#: Values the symbols are declared with (``symbols: {H: 224}``) where ``--symbolic`` frees
#: them: one more sample point, where a size equality usually holds (ViT's 197 positions).
#: None where sympy's values are in use (see archcalc.language.expr.native_values).
SAMPLES: ContextVar[dict[str, int] | None] = ContextVar("native_samples", default=None)


def _number(x: Any) -> bool:
    return type(x) is int or type(x) is Fraction


def _normal(x: Number) -> Number:
    return x.numerator if type(x) is Fraction and x.denominator == 1 else x


class Expr:
    """A symbolic value. Immutable and hashable; equal when built alike (as in sympy)."""

    __slots__ = ("_hash",)

    def __getattr__(self, name: str) -> Any:
        # Code written for sympy values (``.free_symbols``, ``.args``, ``.subs``) must not
        # run on these: it would give a different answer, so the whole analysis is redone.
        if name.startswith("_"):  # protocol hooks (_sympy_, __array__): plainly absent
            raise AttributeError(name)
        raise NotNative(f"sympy's .{name}")

    def __hash__(self) -> int:
        return self._hash

    def __add__(self, other: Any) -> Any:
        return add(self, _operand(other))

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        return add(self, neg(_operand(other)))

    def __rsub__(self, other: Any) -> Any:
        return add(_operand(other), neg(self))

    def __mul__(self, other: Any) -> Any:
        return mul(self, _operand(other))

    def __rmul__(self, other: Any) -> Any:
        return mul(_operand(other), self)

    def __neg__(self) -> Any:
        return neg(self)

    def __truediv__(self, other: Any) -> Any:
        other = _operand(other)
        if not _number(other) or other == 0:
            raise NotNative("division by a symbolic value")
        return mul(self, Fraction(1) / other)

    def __rtruediv__(self, other: Any) -> Any:
        raise NotNative("division by a symbolic value")

    def __pow__(self, exponent: Any) -> Any:
        if type(exponent) is not int or exponent < 0:
            raise NotNative("a power that is not a whole number")
        return power(self, exponent)

    def _unsupported(self, *_: Any) -> Any:
        raise NotNative("an operation outside sums, products and floor")

    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __rpow__ = _unsupported
    __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __int__ = __float__ = __index__ = _unsupported

    def __str__(self) -> str:
        # archcalc prints values through language.printing.to_text, which knows these; a
        # str() elsewhere is code written for sympy's values (see __getattr__)
        raise NotNative("str() of a symbolic value")

    def __repr__(self) -> str:
        # Within an analysis a repr is a value formatted into output (a list in a message:
        # sympy's reads "[s, s]"), so it is refused like str(); outside one it is for debugging.
        if SAMPLES.get() is not None:
            raise NotNative("repr() of a symbolic value")
        fields = ", ".join(repr(getattr(self, name)) for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


def _operand(x: Any) -> Any:
    if isinstance(x, Expr) or _number(x):
        return x
    raise NotNative(f"an operand of type {type(x).__name__}")


class Sym(Expr):
    """A positive integer symbol (sympy's ``Symbol(name, integer=True, positive=True)``)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name
        self._hash = hash(("Sym", name))

    def __eq__(self, other: object) -> bool:
        return type(other) is Sym and other.name == self.name

    __hash__ = Expr.__hash__


class Floor(Expr):
    """``floor(arg)`` left unevaluated (build it with :func:`floor`)."""

    __slots__ = ("arg",)

    def __init__(self, arg: Any) -> None:
        self.arg = arg
        self._hash = hash(("Floor", arg))

    def __eq__(self, other: object) -> bool:
        return type(other) is Floor and other.arg == self.arg

    __hash__ = Expr.__hash__


class Add(Expr):
    """``const + sum(coeff * key)``: the keys are the terms without their number (sympy's
    ``as_coeff_Mul``), so like terms meet under one key."""

    __slots__ = ("const", "terms")

    def __init__(self, const: Number, terms: frozenset) -> None:
        self.const, self.terms = const, terms
        self._hash = hash(("Add", const, terms))

    def __eq__(self, other: object) -> bool:
        return type(other) is Add and other.const == self.const and other.terms == self.terms

    __hash__ = Expr.__hash__

    def args(self) -> list:
        """The terms as sympy holds them: the number (if any), then ``coeff*key`` each."""
        out = [self.const] if self.const != 0 else []
        return out + [_term(c, key) for key, c in self.terms]


class Mul(Expr):
    """``coeff * prod(base**exp)``; with coefficient 1 and one base it is sympy's ``Pow``."""

    __slots__ = ("coeff", "factors")

    def __init__(self, coeff: Number, factors: frozenset) -> None:
        self.coeff, self.factors = coeff, factors
        self._hash = hash(("Mul", coeff, factors))

    def __eq__(self, other: object) -> bool:
        return type(other) is Mul and other.coeff == self.coeff and other.factors == self.factors

    __hash__ = Expr.__hash__

    @property
    def is_pow(self) -> bool:
        return self.coeff == 1 and len(self.factors) == 1


def _pow(base: Any, exp: int) -> Any:
    return base if exp == 1 else Mul(1, frozenset(((base, exp),)))


def _mul_of(coeff: Number, factors: dict) -> Any:
    factors = {b: e for b, e in factors.items() if e}
    if coeff == 0:
        return 0
    if not factors:
        return _normal(coeff)
    if coeff == 1 and len(factors) == 1:
        ((base, exp),) = factors.items()
        return _pow(base, exp)
    return Mul(_normal(coeff), frozenset(factors.items()))


def _coeff_mul(x: Any) -> tuple[Number, Any]:
    """sympy's ``as_coeff_Mul``: ``(2, x*y)`` for ``2*x*y``, ``(1, x)`` for ``x``."""
    if type(x) is Mul and x.coeff != 1:
        return x.coeff, _mul_of(1, dict(x.factors))
    return 1, x


def _term(coeff: Number, key: Any) -> Any:
    """``coeff*key`` rebuilt the way sympy's Add.flatten does it (no distribution)."""
    if coeff == 1:
        return key
    if type(key) is Add:  # sympy keeps an unevaluated Mul here; archcalc never makes one
        raise NotNative("a number times a sum, unevaluated")
    if type(key) is Mul:
        return Mul(coeff, key.factors)
    return Mul(coeff, frozenset(((key, 1),)))


# ----------------------------------------------------------------------------- arithmetic


def add(*items: Any) -> Any:
    """sympy's ``Add(*items)``: numbers summed, terms with the same key collected."""
    const: Number = 0
    terms: dict = {}
    for o in items:
        if _number(o):
            const += o
        elif type(o) is Add:
            const += o.const
            for key, c in o.terms:
                terms[key] = terms.get(key, 0) + c
        else:
            c, key = _coeff_mul(o)
            terms[key] = terms.get(key, 0) + c
    terms = {k: _normal(c) for k, c in terms.items() if c != 0}
    const = _normal(const)
    if not terms:
        return const
    if const == 0 and len(terms) == 1:
        ((key, c),) = terms.items()
        return _term(c, key)
    return Add(const, frozenset(terms.items()))


def mul(*items: Any) -> Any:
    """sympy's ``Mul(*items)``. With two items its two-argument rule applies: a number times
    a sum is distributed (``2*(x + 1)`` is ``2*x + 2``); a number times a product of sums is
    not, and neither is a number times a sum among three items (``Mul(2, x + 1, y)``)."""
    items = tuple(o for o in items if not (_number(o) and o == 1))  # AssocOp drops S.One
    if not items:
        return 1
    if len(items) == 1:
        return _normal(items[0]) if _number(items[0]) else items[0]
    if len(items) == 2:
        a, b = items
        if _number(a) and _number(b):
            return _normal(a * b) if type(a) is Fraction or type(b) is Fraction else a * b
        number, other = (b, a) if _number(b) else (a, b)
        if _number(number) and number != 0:
            r, core = _coeff_mul(other)
            if type(core) is Add:
                if r != 1:
                    raise NotNative("a number times a sum, unevaluated")
                return add(*(mul(number, t) for t in core.args()))
    coeff: Number = 1
    powers: dict = {}
    for o in items:
        if _number(o):
            coeff *= o
        elif type(o) is Mul:
            coeff *= o.coeff
            for base, e in o.factors:
                powers[base] = powers.get(base, 0) + e
        else:
            powers[o] = powers.get(o, 0) + 1
    if coeff != 1 and len(powers) == 1:
        ((base, e),) = powers.items()
        if e == 1 and type(base) is Add:  # sympy's last step: 2*(x + 1) -> 2*x + 2
            return add(*(mul(coeff, t) for t in base.args()))
    return _mul_of(coeff, powers)


def neg(x: Any) -> Any:
    return -x if _number(x) else mul(-1, x)


def power(x: Any, n: int) -> Any:
    """sympy's ``x**n`` for a whole ``n >= 0``: a product's factors are each raised."""
    if n == 0:
        return 1
    if n == 1:
        return x
    if _number(x):
        return x**n
    if type(x) is Mul:
        return _mul_of(x.coeff**n, {b: e * n for b, e in x.factors})
    return _pow(x, n)


def is_integer(x: Any) -> bool:
    """True where sympy's assumptions call ``x`` an integer (else unknown, never False
    here: only True changes what ``floor`` does)."""
    if _number(x):
        return type(x) is int
    if type(x) in (Sym, Floor):
        return True
    if type(x) is Mul:
        return type(x.coeff) is int and all(is_integer(b) for b, _ in x.factors)
    return type(x.const) is int and all(type(c) is int and is_integer(k) for k, c in x.terms)


def floor(arg: Any) -> Any:
    """sympy's ``floor(arg)``: whole terms leave the floor, the rest stays inside it.

    >>> from archcalc.language.native import text
    >>> H = Sym("H")
    >>> text(floor(H + Fraction(1, 2))), text(floor(H * Fraction(1, 3) + 2))
    ('H', 'floor(H/3) + 2')
    """
    if _number(arg):
        return arg if type(arg) is int else arg.numerator // arg.denominator
    if type(arg) is Floor or type(neg(arg)) is Floor:
        return arg
    if is_integer(arg):
        return arg
    whole, numbers, rest = [], [], []
    for t in arg.args() if type(arg) is Add else [arg]:
        if is_integer(t):
            whole.append(t)
        elif _number(t):
            numbers.append(t)
        else:
            rest.append(t)
    whole_part = add(*whole)
    if not rest:
        return add(whole_part, floor(add(*numbers)))
    inner = add(*rest, *numbers)
    if type(inner) is Floor:
        return add(whole_part, inner)
    return add(whole_part, Floor(inner))


def floor_div(a: Any, b: Any) -> Any:
    """``floor(a/b)`` as :func:`archcalc.language.expr.floor_div` builds it with sympy:
    ``floor((floor(y) + m)/n)`` is written ``floor((y + m)/n)``."""
    if not (type(b) is int and b > 0):
        raise NotNative("a floor division by a symbolic or negative value")
    inner, rest = None, 0
    for term in a.args() if type(a) is Add else [a]:
        if type(term) is Floor and inner is None:
            inner = term.arg
        elif type(term) is int:
            rest += term
        else:
            inner = None
            break
    else:
        if inner is not None:
            return floor(mul(add(inner, rest), Fraction(1, b)))
    return floor(mul(a, Fraction(1, b)))
