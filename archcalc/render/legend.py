"""Short names for the sizes of a symbolic analysis, as a textbook writes them.

With H and W free, ResNet-18's first convolution outputs ``[64, floor(H/2 - 1/2) + 1,
floor(W/2 - 1/2) + 1]`` and its MACs are ``147*(64*floor(H/2 - 1/2) + 64)*(floor(W/2 -
1/2) + 1)``; every later cell repeats such sizes, and a table of them is 300 characters
wide. Naming each size once (``h1 = floor(H/2 - 1/2) + 1``) the same cells read ``[64, h1,
w1]`` and ``9408*h1*w1``. The names are a way of printing only: the values, the JSON output
and every check stay the full formulas.

A size is named when it is a rounding (``floor``, ``ceiling``, ``Min``, ``Max``) plus a
whole number, so that replacing the rounding by ``name - number`` is exact; the name is the
lower-case letter of the input symbol it comes from and a count (``h1``, ``h2``; ``n1``
where no single input symbol decides), never one of the spec's own symbols.
"""

from __future__ import annotations

import re
from collections import defaultdict
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterable, Iterator

from archcalc.language import expr, native

#: Names no size may take in the current context (a symbolic batch's): tables rendered
#: inside an ``abbreviated(..., avoid=...)`` plan their names with it too.
_AVOID: ContextVar[frozenset] = ContextVar("legend_avoid", default=frozenset())


def size_names(analysis: Any) -> list[tuple[str, Any]]:
    """``(name, size)`` for each named size of the rows' output shapes, in order of first
    appearance.

    >>> from archcalc import analyze
    >>> net = analyze({"name": "n", "symbols": {"H": None}, "input": [1, "H"],
    ...                "layers": [{"type": "maxpool1d", "kernel_size": 2}]}, symbolic=True)
    >>> [(name, expr.to_text(size)) for name, size in size_names(net)]
    [('h1', 'floor(H/2)')]
    """
    return _plan(analysis)[0]


def _plan(analysis: Any, avoid: Iterable[str] = ()) -> tuple[list[tuple[str, Any]], dict]:
    """The names, and what each rounding is in them: a rounding that differs from a named
    one by a whole number is written with that name (``floor(H/2 - 7/2) + 1`` is ``h1 - 2``
    where ``h1 = floor(H/2 - 3/2) + 1``), the others get names of their own. No name is one
    of the spec's symbols or of ``avoid`` (a symbolic batch's name)."""
    if not analysis.symbolic:
        return [], {}
    avoid = {*avoid, *_AVOID.get()}
    names, replace = _named(analysis, 0)
    if avoid & {name for name, _ in names}:
        # counted on past every avoided number (batch h1: h2, w2, h3, ...), so that the
        # sizes of one stage keep one number
        numbers = (re.fullmatch(r"\D+(\d+)", name) for name in avoid)
        start = max((int(m[1]) for m in numbers if m), default=0)
        names, replace = _named(analysis, start)
    return names, replace


def _named(analysis: Any, start: int) -> tuple[list[tuple[str, Any]], dict]:
    taken = set(analysis.spec.symbols)
    inputs = {s for size in analysis.input if expr.is_symbolic(size) for s in _free(size)}
    counts: dict[str, int] = defaultdict(lambda: start)
    names: list[tuple[str, Any]] = []
    replace: dict[Any, Any] = {}  # a rounding -> the same value, in names
    known: dict[Any, Any] = {}  # a rounding with its whole number taken out -> in names
    for row in analysis.rows:
        for size in row.output:
            number, rounding = _split(size)
            if rounding is None or rounding in replace:
                continue
            key, shift = _canonical(rounding)
            if key in known:
                replace[rounding] = known[key] + shift
                continue
            name = _fresh(_letter(rounding, inputs), counts, taken)
            replace[rounding] = expr.symbol(name) - number
            known[key] = replace[rounding] - shift
            names.append((name, size))
    return names, replace


def _split(size: Any) -> tuple[Any, Any]:
    """``(number, rounding)`` when ``size`` is a rounding plus a whole number, else
    ``(None, None)``."""
    if not expr.is_symbolic(size):
        return None, None
    if isinstance(size, native.Expr):
        number, rest = native.coeff_add(size)
        whole = type(number) is int and type(rest) is native.Floor
    else:
        number, rest = size.as_coeff_Add()
        whole = number.is_integer and type(rest).__name__ in _ROUNDINGS
    return (number, rest) if whole else (None, None)


_ROUNDINGS = ("floor", "ceiling", "Min", "Max")


def _free(value: Any) -> set:
    """The symbols in a value (sympy's or archcalc's own)."""
    if isinstance(value, native.Expr):
        return {native.Sym(name) for name in native.names(value)}
    return value.free_symbols if expr.is_symbolic(value) else set()


def _canonical(rounding: Any) -> tuple[Any, int]:
    """``(key, n)`` with ``rounding == key + n`` and ``n`` whole: floor(x + c) is
    floor(x + (c - floor(c))) + floor(c), and the same for ceiling."""
    if isinstance(rounding, native.Floor):
        c, rest = native.coeff_add(rounding.arg)
        whole = native.floor(c)
        return (native.floor(native.add(rest, c - whole)), whole) if whole else (rounding, 0)
    if type(rounding).__name__ not in ("floor", "ceiling"):
        return rounding, 0
    c, rest = rounding.args[0].as_coeff_Add()
    whole = c.floor() if c.is_Rational else 0
    if not whole:
        return rounding, 0
    return rounding.func(rest + (c - whole)), whole


def _letter(rounding: Any, inputs: set) -> str:
    """The input symbol's letter in lower case (h for H), or n where none decides."""
    from_input = _free(rounding) & inputs
    if len(from_input) == 1:
        letter = next(iter(from_input)).name.lower()
        if len(letter) == 1 and letter.isalpha():
            return letter
    return "n"


def _fresh(letter: str, counts: dict[str, int], taken: set) -> str:
    while True:
        counts[letter] += 1
        name = f"{letter}{counts[letter]}"
        if name not in taken:
            taken.add(name)
            return name


class Legend:
    """The names in use and the lines that define them (each in terms of the earlier ones:
    GoogLeNet's ``h2 = ceil(h1/2 - 1/2)``)."""

    def __init__(self, names: list[tuple[str, Any]], replace: dict | None = None):
        self.definitions = []
        defined: set = set()
        for name, size in names:
            earlier = {r: v for r, v in (replace or {}).items() if _free(v) <= defined}
            with expr.shorthand(earlier):
                self.definitions.append(f"{name} = {expr.to_text(size)}")
            defined.add(expr.symbol(name))

    def lines(self, width: int = 100) -> list[str]:
        """``where h1 = ..., w1 = ...`` wrapped at ``width`` (none when nothing is named).

        >>> Legend([("h1", 5), ("w1", 6)]).lines()
        ['where h1 = 5, w1 = 6']
        """
        lines: list[str] = []
        line = "where"
        for i, text in enumerate(self.definitions):
            piece = text + ("," if i < len(self.definitions) - 1 else "")
            if len(line) + 1 + len(piece) > width and line != "where":
                lines.append(line)
                line = "     " + piece
            else:
                line = f"{line} {piece}"
        return [*lines, line] if self.definitions else []


@contextmanager
def abbreviated(analysis: Any, avoid: Iterable[str] = ()) -> Iterator[Legend]:
    """Within it, the named sizes of ``analysis`` print as their names (none of them one of
    ``avoid``); yields the :class:`Legend` that defines them."""
    names, replace = _plan(analysis, avoid)
    with expr.shorthand({}):  # defined in full, even where another legend is in force
        legend = Legend(names, replace)
    token = _AVOID.set(_AVOID.get() | frozenset(avoid))
    try:
        if not analysis.symbolic:
            yield legend
            return
        with expr.shorthand(replace):
            yield legend
    finally:
        _AVOID.reset(token)
