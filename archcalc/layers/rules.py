"""Layer arithmetic: every layer type answers the same few questions.

A :class:`Rule` per layer family answers, from the layer's resolved
hyperparameters ``h`` (ints or sympy values, one per spatial dimension where
it applies) and its input shape: the output shape, the fan-in and fan-out of
weighted layers, the parameter count and the MACs. The quantities derived
from those (weights per neuron, neurons, connections) are computed once, in
:func:`answer`. All arithmetic goes through :mod:`archcalc.layers.formulas`.

A rule reads one tensor (``inp`` is its shape) unless it is a merge
(``merge = True``: ``inp`` is the tuple of its inputs' shapes) or a source
(``source = True``: ``inp`` is ``()``). Elaboration asks :meth:`Rule.prepare`
and :meth:`Rule.output_shape` (checks and shapes, once per node); the counting
pass asks the rest through :func:`answer`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, NamedTuple

from archcalc.errors import ArchcalcError, SpecWarning
from archcalc.language.expr import (
    Value,
    at_least,
    condition_text,
    equal,
    is_symbolic,
    to_text,
)
from archcalc.layers import formulas as f

Shape = tuple  # of Values, channels first, no batch
_SHAPE_NAMES = {1: "[F]", 2: "[C, L]", 3: "[C, H, W]", 4: "[C, D, H, W]"}
_DIM_WORDS = {1: ("position",), 2: ("row", "column"), 3: ("slice", "row", "column")}


def shape_text(shape: Shape) -> str:
    """``[16, 20, 20]``, with symbolic entries as expressions."""
    return "[" + ", ".join(to_text(v) for v in shape) + "]"


def exact_quotient(a: int, b: int) -> str:
    """``a/b`` written exactly: a decimal where it terminates (``2399998.5``), else ``a/b``.

    >>> exact_quotient(217, 4), exact_quotient(4799997, 2), exact_quotient(10, 3)
    ('54.25', '2399998.5', '10/3')
    """
    q = Fraction(a, b)
    if q.denominator == 1:
        return str(q.numerator)
    d = q.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d != 1:
        return f"{q.numerator}/{q.denominator}"
    whole, rest = divmod(q.numerator, q.denominator)
    digits = ""
    while rest:
        rest *= 10
        digit, rest = divmod(rest, q.denominator)
        digits += str(digit)
    return f"{whole}.{digits}"


class Note:
    """Collects warnings and assumptions for one layer, and makes its errors."""

    __slots__ = ("path", "warnings", "assumptions", "deferred")

    def __init__(self, path: str, warnings: list, assumptions: list, deferred: list | None = None):
        self.path, self.warnings, self.assumptions = path, warnings, assumptions
        #: Where errors that do not stop the elaboration go (see :meth:`declared`); None: raise.
        self.deferred = deferred

    def error(self, message, field: str | None = None) -> ArchcalcError:
        """The error for this layer; ``message`` may be a callable, built only when needed."""
        text = message() if callable(message) else message
        return ArchcalcError(text, path=f"{self.path}.{field}" if field else self.path)

    def warn(self, message: str, kind: str = "") -> None:
        self.warnings.append(SpecWarning(self.path, message, kind))

    def assume(self, condition: str) -> None:
        if (self.path, condition) not in self.assumptions:
            self.assumptions.append((self.path, condition))

    def at_least(self, value: Value, bound: Value, message, field: str | None = None) -> None:
        """Require ``value >= bound``: an error if surely not, an assumption if unknown."""
        verdict = at_least(value, bound)
        if verdict is None:
            self.assume(condition_text(value, ">=", bound))
        elif not verdict:
            raise self.error(message, field)

    def same(self, a: Value, b: Value, message, field: str | None = None) -> None:
        """Require ``a == b``: an error if surely not, an assumption if unknown."""
        verdict = equal(a, b)
        if verdict is None:
            self.assume(f"{to_text(a)} == {to_text(b)}")
        elif not verdict:
            raise self.error(message, field)

    def declared(self, declared: Value, actual: Value, message, field: str) -> None:
        """A size the user declared (in_features, in_channels, num_features, embed_dim) that
        the input decides anyway: a mismatch is an error, but the output shape does not
        depend on it, so the elaboration goes on and reports the later problems too."""
        try:
            self.same(declared, actual, message, field)
        except ArchcalcError as err:
            if self.deferred is None:
                raise
            self.deferred.append(err)

    def divides(self, g: Value, n: Value, message, field: str | None = None) -> None:
        """Require ``g`` to divide ``n``."""
        if isinstance(g, int) and isinstance(n, int):
            if n % g:
                raise self.error(message, field)
        elif equal(n % g, 0) is not True:
            self.assume(f"{to_text(n)} divisible by {to_text(g)}")


def per_dim(h: dict, name: str, dims: int, layer_type: str, note: Note) -> tuple:
    """A size field as one value per spatial dimension (an int applies to all)."""
    value = h[name]
    if not isinstance(value, tuple):
        return (value,) * dims
    if len(value) != dims:
        raise note.error(
            f"expected 1 or {dims} values for {layer_type}. Received: {name}={shape_text(value)}",
            name,
        )
    return value


def require_rank(inp: Shape, rank: int | tuple, layer_type: str, note: Note) -> None:
    ranks = rank if isinstance(rank, tuple) else (rank,)
    if len(inp) not in ranks:
        wanted = " or ".join(_SHAPE_NAMES.get(r, f"rank {r}") for r in ranks)
        hint = ""
        if (
            len(inp) == 3
            and isinstance(inp[2], int)
            and inp[2] in (1, 3, 4)
            and inp[0] not in (1, 3, 4)
        ):
            hint = " (the input is [C, H, W], channels first)"
        raise note.error(
            f"{layer_type} needs an input of shape {wanted}{hint}. Received: input {shape_text(inp)}"
        )


def check_window(inp: Shape, k, p, d, note: Note, pe=None) -> None:
    """The (dilated) window must fit in the padded input: ``n + p + p_end >= d(k-1) + 1``."""
    pe = p if pe is None else pe
    for n, ki, pi, qi, di in zip(inp[1:], k, p, pe, d):
        if type(n) is type(ki) is type(pi) is type(qi) is type(di) is int and (
            n + pi + qi >= di * (ki - 1) + 1
        ):
            continue  # the usual case, decided without building the message
        note.at_least(
            n + pi + qi, di * (ki - 1) + 1,
            lambda n=n, ki=ki, pi=pi, qi=qi, di=di: f"output size < 1: the window "
            f"({to_text(di * (ki - 1) + 1)}) is larger than the padded input "
            f"({to_text(n + pi + qi)}) of {shape_text(inp)}",
        )  # fmt: skip


def check_output(out: Shape, inp: Shape, note: Note) -> None:
    for size in out[1:]:
        note.at_least(
            size,
            1,
            lambda size=size: f"output size {to_text(size)} < 1 for input {shape_text(inp)}",
        )


def warn_uncovered(layer_type: str, n, k, s, p, d, note: Note, pe=None) -> None:
    """Warn when the stride leaves the last rows/columns of the padded input unused.

    AlexNet conv1 at 224 with P = 2: "(224 + 4 - 11)/4 = 54.25: the last row
    and column of the padded input are never covered". When only padding is left
    over, the warning is of kind "padding" (the summary collapses those).
    """
    pe = p if pe is None else pe
    words = _DIM_WORDS.get(len(n), ("position",) * len(n))
    lost: dict[tuple, list[str]] = {}
    for word, ni, ki, si, pi, qi, di in zip(words, n, k, s, p, pe, d):
        if si == 1 or any(is_symbolic(v) for v in (ni, ki, si, pi, qi, di)):
            continue  # stride 1 covers every row
        left = f.uncovered_input(ni, ki, si, pi, di, qi)
        if left:
            window = di * (ki - 1) + 1
            span = f"{ni} + {pi + qi} - {window}" if pi + qi else f"{ni} - {window}"
            quotient = exact_quotient(ni + pi + qi - window, si)
            lost.setdefault((span, si, quotient, left, max(left - qi, 0)), []).append(word)
    for (span, stride, quotient, left, real), dim_words in lost.items():
        things = " and ".join(dim_words) + ("s" if left > 1 else "")
        count = "" if left == 1 else f"{left} "
        verb = "are" if len(dim_words) > 1 or left > 1 else "is"
        effect = (f"{real} of them input, not padding" if real
                  else "only padding, no input value is lost")  # fmt: skip
        note.warn(
            f"({span})/{stride} = {quotient}: the last {count}{things} of the padded input "
            f"{verb} never covered ({effect})",
            "" if real else "padding",
        )


def div(a, b):
    """``a/b``: an int where it divides, else a fraction (or a sympy quotient)."""
    return a // b if isinstance(a, int) and isinstance(b, int) and a % b == 0 else a / b


def dim_index(dim: int, rank: int, note: Note, field: str = "dim", extra: int = 0) -> int:
    """A per-sample dimension index, negative ones counted from the end (as in PyTorch)."""
    size = rank + extra
    if not -size <= dim < size:
        raise note.error(
            f"dimension out of range: expected {-size}..{size - 1} for a {rank}-dimensional "
            f"input (the batch is not counted). Received: {field}={dim}", field,
        )  # fmt: skip
    return dim % size


class Rule:
    """The questions every layer type answers. Defaults: shape-preserving, no weights."""

    rank: int | tuple | None = None  # accepted input ranks (None: any)
    merge = False  # reads several tensors: ``inp`` is a tuple of shapes
    source = False  # reads none (a learned tensor)

    def prepare(self, h: dict, inp: Any, note: Note) -> None:
        """Check the input and normalise ``h`` (per-dimension tuples, defaults)."""
        if self.rank is not None:
            require_rank(inp, self.rank, h["type"], note)

    def output_shape(self, h: dict, inp: Any, note: Note) -> Shape:
        return inp

    def fan_in(self, h: dict, inp: Any) -> Value | None:
        """Inputs feeding one output unit; None for layers without weights."""
        return None

    def fan_out(self, h: dict, inp: Any) -> Value | None:
        return None

    def per_neuron(self, h: dict, fan_in: Value) -> Value | None:
        return f.weights_per_neuron(fan_in, h["bias"])

    def params(self, h: dict, inp: Any, out: Shape, per_neuron: Value | None) -> Value:
        return 0

    def macs(self, h: dict, inp: Any, out: Shape, neurons: Value, fan_in: Value) -> Value:
        return f.macs(neurons, fan_in) if fan_in is not None else 0

    def connections(self, h: dict, neurons: Value, per_neuron: Value, mac_count: Value) -> Value:
        return f.connections(neurons, per_neuron)


class Answer(NamedTuple):
    """What one layer computes to (a named tuple: immutable, and made once per node at a
    third of a frozen dataclass's cost)."""

    weights_per_neuron: Value | None
    neurons: Value | None
    connections: Value | None
    params: Value
    macs: Value
    fan_in: Value | None
    fan_out: Value | None


def answer(rule: Rule, h: dict[str, Any], inp: Any, out: Shape) -> Answer:
    """Ask a prepared layer's rule the counting questions, in order."""
    from archcalc.language.expr import product

    fan_in = rule.fan_in(h, inp)
    if fan_in is None:
        return _ints(Answer(None, None, None, rule.params(h, inp, out, None),
                            rule.macs(h, inp, out, None, None), None, None))  # fmt: skip
    per_neuron = rule.per_neuron(h, fan_in)
    neurons = product(out)
    mac_count = rule.macs(h, inp, out, neurons, fan_in)
    return _ints(Answer(
        weights_per_neuron=per_neuron,
        neurons=neurons,
        connections=rule.connections(h, neurons, per_neuron, mac_count),
        params=rule.params(h, inp, out, per_neuron),
        macs=mac_count,
        fan_in=fan_in,
        fan_out=rule.fan_out(h, inp),
    ))  # fmt: skip


def _ints(values: Answer) -> Answer:
    """sympy's integers as ints (``0*s`` is sympy's 0), so that JSON shows numbers."""
    if all(type(v) is int for v in values):
        return values
    from archcalc.language.expr import as_int

    return Answer(*(as_int(v) for v in values))
