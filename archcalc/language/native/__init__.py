"""archcalc's own symbolic values: the part of sympy a shape analysis needs, without sympy.

A symbolic analysis of a convolutional network only ever adds, multiplies and takes
``floor`` of sizes: ``floor(H/2 - 1/2) + 1`` and its products and sums. sympy does that
exactly, but importing it costs more than the whole numeric analysis. The values here
build, compare and print those expressions the way sympy 1.12+ does: the same automatic
evaluation (numbers collected, like terms added, ``2*(x + 1)`` distributed only where
sympy distributes it, ``floor`` splitting off whole terms) and the same printed text.
Tests hold this to sympy on every zoo network and on random stacks of layers.

Anything outside that part (``min``, ``max``, ``ceil``, ``%``, a symbolic divisor, a
comparison the simple rules below cannot decide) raises :class:`NotNative`, and the
caller does the whole analysis again with sympy: these values are an optimisation of
one path, never a second opinion.

>>> H = Sym("H")
>>> size = floor((H - 1) * Fraction(1, 2)) + 1
>>> text(size), text(64 * size * (size + 1))
('floor(H/2 - 1/2) + 1', '(floor(H/2 - 1/2) + 2)*(64*floor(H/2 - 1/2) + 64)')
"""

from archcalc.language.native.decide import (
    SAMPLES,
    at_least,
    condition_text,
    equal,
    expand,
    from_sympy,
    names,
    surely_nonnegative,
    value_at,
)
from archcalc.language.native.rewrite import (
    args_of,
    coeff_add,
    content_primitive,
    rebuild,
    substitute,
    tidy,
)
from archcalc.language.native.text import ordered_factors, ordered_terms, sort_key, text
from archcalc.language.native.values import (
    Add,
    Expr,
    Floor,
    Fraction,
    Mul,
    NotNative,
    Sym,
    add,
    floor,
    floor_div,
    is_integer,
    mul,
    neg,
    power,
)

__all__ = [
    "Add", "Expr", "Floor", "Fraction", "Mul", "NotNative", "Sym",
    "add", "mul", "neg", "power", "floor", "floor_div", "is_integer",
    "SAMPLES", "at_least", "equal", "surely_nonnegative", "expand", "condition_text",
    "value_at", "from_sympy",
    "sort_key", "ordered_factors", "ordered_terms", "text", "names",
    "args_of", "rebuild", "coeff_add", "substitute", "tidy", "content_primitive",
]  # fmt: skip
