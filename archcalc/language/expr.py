"""Integer expressions: a safe parser, and arithmetic generic over ints and sympy.

A *value* in archcalc is a plain ``int`` whenever every size is known, and a
sympy expression only when a free symbol is involved (or, within
:func:`native_values`, archcalc's own symbolic value). sympy is imported
lazily, the first time a symbol is created, so a numeric analysis never
pays its start-up cost.

User text is never handed to ``eval``, ``exec`` or sympy's parsers. It is
parsed by Python's ``ast`` into a whitelist (integers, declared names,
``+ - * / // % **``, unary minus, parentheses, ``min``, ``max``, ``floor``,
``ceil``) and evaluated from that tree.

>>> evaluate_text("2*P + 1", {"P": 3})
7
>>> str(evaluate_text("floor((J - F)/s) + 1", {"J": symbol("J"), "F": 3, "s": 2}))
'floor(J/2 - 3/2) + 1'
"""

from __future__ import annotations

import ast
from contextlib import contextmanager
from functools import cache, lru_cache
from typing import Any, Iterator, Mapping, Union

from archcalc.errors import ArchcalcError
from archcalc.language import native
from archcalc.language.printing import condition_text, shorthand, to_text  # noqa: F401

#: An exact value: ``int`` when known, a sympy expression when symbolic.
Value = Union[int, Any]

MAX_EXPRESSION_LENGTH = 500
MAX_EXPRESSION_DEPTH = 60
#: Largest magnitude of any value in an expression (and any integer field).
MAX_VALUE = 10**15
_MAX_BITS = 200  # intermediate results: far above MAX_VALUE, far below trouble
MAX_EXPONENT = 64
FUNCTIONS = {
    "min": (1, None), "max": (1, None), "floor": (1, 1), "ceil": (1, 1), "make_divisible": (2, 3),
}  # fmt: skip
#: Sizes of the tensor an item reads, usable in its expressions: C_in is dimension 0;
#: [C, L] has L_in, [C, H, W] H_in and W_in, [C, D, H, W] D_in, H_in and W_in.
INPUT_SIZE_NAMES = ("C_in", "L_in", "D_in", "H_in", "W_in")
#: Words a convolution's ``padding`` takes instead of a number; never symbols.
PADDING_MODES = frozenset({"same", "valid", "same_upper", "same_lower"})
RESERVED_NAMES = frozenset(FUNCTIONS) | PADDING_MODES | frozenset(INPUT_SIZE_NAMES)

_BINOPS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/",
    ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
}  # fmt: skip


# --------------------------------------------------------------------------- parsing


def short(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters for an error message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


@lru_cache(maxsize=8192)
def parse(text: str) -> tuple:
    """Parse an expression string into a small tuple tree, or raise ArchcalcError.

    Nodes: ``("num", n)``, ``("name", s)``, ``("neg", a)``, ``("bin", op, a, b)``,
    ``("call", f, (args...))``.

    >>> parse("2*k - 1")
    ('bin', '-', ('bin', '*', ('num', 2), ('name', 'k')), ('num', 1))
    >>> parse("__import__('os')")
    Traceback (most recent call last):
    ...
    archcalc.errors.ArchcalcError: only min, max, floor, ceil and make_divisible may be called in an expression. Received: '__import__'(...)
    """
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ArchcalcError(
            f"expression is too long ({len(text)} characters, at most {MAX_EXPRESSION_LENGTH})"
        )
    if not text.strip():
        raise ArchcalcError("expected an integer or an expression. Received: an empty string")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        detail = getattr(err, "msg", None) or type(err).__name__
        raise ArchcalcError(f"cannot parse expression {short(text)!r}: {detail}") from None
    return _convert(tree.body, text, 0)


def _convert(node: ast.AST, text: str, depth: int) -> tuple:
    if depth > MAX_EXPRESSION_DEPTH:
        raise ArchcalcError(f"expression {short(text)!r} is nested too deeply")
    if isinstance(node, ast.Constant):
        if type(node.value) is not int:
            raise ArchcalcError(
                f"only integers may appear in an expression. Received: {node.value!r} in {short(text)!r}"
            )
        _check_magnitude(node.value, text)
        return ("num", node.value)
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise ArchcalcError(
                f"names may not start with '_'. Received: {node.id!r} in {short(text)!r}"
            )
        if node.id in FUNCTIONS:
            raise ArchcalcError(
                f"{node.id} is a function; call it as {node.id}(...) in {short(text)!r}"
            )
        if node.id in PADDING_MODES:
            raise ArchcalcError(
                f"{node.id!r} is a padding mode, not a number: it applies only to the padding "
                f"of a convolution. Received: {short(text)!r}"
            )
        return ("name", node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _convert(node.operand, text, depth + 1)
        return ("neg", inner) if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return (
            "bin",
            _BINOPS[type(node.op)],
            _convert(node.left, text, depth + 1),
            _convert(node.right, text, depth + 1),
        )
    if isinstance(node, ast.Call):
        func = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        if func not in FUNCTIONS or node.keywords:
            raise ArchcalcError(
                "only min, max, floor, ceil and make_divisible may be called in an expression. "
                f"Received: {func!r}(...)"
            )
        low, high = FUNCTIONS[func]
        if len(node.args) < low or (high is not None and len(node.args) > high):
            wanted = {(1, 1): "1 argument", (1, None): "at least 1 argument",
                      (2, 3): "2 or 3 arguments"}[(low, high)]  # fmt: skip
            raise ArchcalcError(
                f"{func}() takes {wanted}. Received: {len(node.args)} in {short(text)!r}"
            )
        args = tuple(_convert(arg, text, depth + 1) for arg in node.args)
        return ("call", func, args)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise ArchcalcError(f"'^' is not a power in {short(text)!r}: write ** (e.g. 2**k)")
    raise ArchcalcError(
        f"unsupported syntax in expression {short(text)!r}: {_SYNTAX_WORDS.get(type(node), 'this')}; "
        "allowed are integers, names, + - * / // % **, parentheses, min, max, floor, ceil, "
        "make_divisible"
    )


_SYNTAX_WORDS = {
    ast.Compare: "a comparison", ast.BoolOp: "and/or", ast.Attribute: "an attribute (a.b)",
    ast.Subscript: "an index (a[i])", ast.List: "a list", ast.Tuple: "a tuple",
    ast.Lambda: "a lambda", ast.IfExp: "a conditional", ast.Dict: "a dict", ast.Set: "a set",
    ast.JoinedStr: "a string", ast.UnaryOp: "this operator", ast.BinOp: "this operator",
}  # fmt: skip


def names(tree: tuple) -> frozenset[str]:
    """The names an expression tree refers to.

    >>> sorted(names(parse("max(a, b) * c + 1")))
    ['a', 'b', 'c']
    """
    kind = tree[0]
    if kind == "name":
        return frozenset((tree[1],))
    if kind == "num":
        return frozenset()
    if kind == "neg":
        return names(tree[1])
    if kind == "bin":
        return names(tree[2]) | names(tree[3])
    return frozenset().union(*(names(arg) for arg in tree[2]))


# --------------------------------------------------------------------------- evaluation


def evaluate_text(text: str, env: Mapping[str, Value]) -> Value:
    """Parse and evaluate ``text``; the result must be an integer (or symbolic)."""
    return evaluate(parse(text), env, text)


def evaluate(tree: tuple, env: Mapping[str, Value], text: str = "") -> Value:
    """Evaluate a parsed tree with ``env`` (name -> int or sympy expression)."""
    value = _eval(tree, env, text)
    if not isinstance(value, int):
        if _is_fraction(value):
            raise ArchcalcError(
                f"{short(text)!r} is {value}, not an integer; use // or floor() to round"
            )
        value = _integer_expr(value, text)
    else:
        _check_magnitude(value, text)
    return value


def evaluate_fraction(text: str, env: Mapping[str, Value]) -> float:
    """A number that may be a fraction (a probability ``k / 170``), as a float; needs numbers.

    >>> evaluate_fraction("k / 170", {"k": 17})
    0.1
    """
    value = _plain(_eval(parse(text), env, text))
    if not _is_number(value):
        raise ArchcalcError(f"{short(text)!r} depends on free symbols; give them values")
    return float(value)


def _eval(tree: tuple, env: Mapping[str, Value], text: str) -> Value:
    kind = tree[0]
    if kind == "num":
        return tree[1]
    if kind == "name":
        try:
            value = env[tree[1]]
        except KeyError:
            known = ", ".join(sorted(env)) or "none"
            raise ArchcalcError(
                f"unknown name {tree[1]!r} in {short(text)!r}; declared: {known}"
            ) from None
        if isinstance(value, str):  # a block parameter that carries an activation name
            raise ArchcalcError(
                f"{tree[1]!r} holds the activation {value!r}, not a number, in {short(text)!r}"
            )
        return value
    if kind == "neg":
        return -_eval(tree[1], env, text)
    if kind == "bin":
        return _binary(tree[1], _eval(tree[2], env, text), _eval(tree[3], env, text), text)
    args = [_eval(arg, env, text) for arg in tree[2]]
    return _call(tree[1], args)


def _binary(op: str, a: Value, b: Value, text: str) -> Value:
    a, b = _plain(a), _plain(b)
    numeric = _is_number(a) and _is_number(b)
    if op in ("/", "//", "%") and (b == 0 if _is_number(b) else _surely_zero(b)):
        raise ArchcalcError(f"division by zero in {short(text)!r}")
    if op == "+":
        result = a + b
    elif op == "-":
        result = a - b
    elif op == "*":
        if numeric and _bits(a) + _bits(b) > _MAX_BITS:
            raise ArchcalcError(f"value of {short(text)!r} is astronomically large")
        result = a * b
    elif op == "/":
        if numeric:
            from fractions import Fraction

            result = Fraction(a) / b
            result = int(result) if result.denominator == 1 else result
        else:
            result = a / b
    elif op == "//":
        if not numeric:
            result = floor_div(a, b)
        else:
            result = a // b if isinstance(a, int) and isinstance(b, int) else _floor(_frac(a) / b)
    elif op == "%":
        if not numeric and (_is_native(a) or _is_native(b)):
            raise native.NotNative("%")
        result = a % b if numeric else _sympy().Mod(a, b)
    else:  # "**"
        if not (isinstance(b, int)):
            raise ArchcalcError(f"the exponent in {short(text)!r} must be a constant integer")
        if b < 0 or b > MAX_EXPONENT:
            raise ArchcalcError(
                f"the exponent in {short(text)!r} must be between 0 and {MAX_EXPONENT}. Received: {b}"
            )
        if numeric and _bits(a) * b > _MAX_BITS:
            raise ArchcalcError(f"value of {short(text)!r} is astronomically large")
        result = a**b
    if numeric and _bits(result) > _MAX_BITS:
        raise ArchcalcError(f"value of {short(text)!r} is astronomically large")
    return result


def _call(func: str, args: list) -> Value:
    args = [_plain(arg) for arg in args]
    if func == "make_divisible":
        if not all(_is_number(arg) for arg in args):
            raise ArchcalcError("make_divisible() needs numbers; give the symbols values")
        return make_divisible(*args)
    if all(_is_number(arg) for arg in args):
        if func == "min":
            return min(args)
        if func == "max":
            return max(args)
        return _floor(args[0]) if func == "floor" else -_floor(-args[0])
    if any(_is_native(arg) for arg in args):
        if func != "floor":
            raise native.NotNative(func)
        return native.floor(args[0])
    sp = _sympy()
    if func == "min":
        return sp.Min(*args)
    if func == "max":
        return sp.Max(*args)
    return sp.floor(args[0]) if func == "floor" else sp.ceiling(args[0])


def make_divisible(v: Any, divisor: Any, min_value: Any = None) -> int:
    """torchvision's ``_make_divisible``, exactly: the multiple of ``divisor`` nearest ``v``
    (at least ``min_value``, default ``divisor``), raised by one step if rounding lost
    more than 10%. ``v`` may be a fraction.

    >>> make_divisible(32 * 0.75, 8), make_divisible(576 // 4, 8), make_divisible(20, 8)
    (24, 144, 24)
    """
    from fractions import Fraction

    if divisor <= 0:
        raise ArchcalcError(f"make_divisible() needs a positive divisor. Received: {divisor}")
    if type(v) is int and type(divisor) is int and min_value is None:  # the same, in ints
        new = max(divisor, (v + divisor // 2) // divisor * divisor)
        return new + divisor if 10 * new < 9 * v else new
    v, floor_of = Fraction(v), lambda x: x.numerator // x.denominator
    new = max(divisor if min_value is None else min_value,
              floor_of(v + Fraction(divisor, 2)) // divisor * divisor)  # fmt: skip
    if new < Fraction(9, 10) * v:
        new += divisor
    return int(new)


def _plain(value: Any) -> Any:
    """A sympy number as an int or Fraction, so that numeric rules (and zero checks) apply."""
    if isinstance(value, (int, native.Expr)) or _is_fraction(value):
        return value
    if not getattr(value, "is_Rational", False):
        return value
    if value.is_Integer:
        return int(value)
    from fractions import Fraction

    return Fraction(int(value.p), int(value.q))


def _surely_zero(value: Any) -> bool:
    """A symbolic divisor that is zero for every value of its symbols (``x - x``, ``(x-1)**2 - x**2 + 2*x - 1``)."""
    return value.is_zero is True or _sympy().expand(value) == 0


def _is_number(value: Any) -> bool:
    return isinstance(value, int) or _is_fraction(value)


def _is_fraction(value: Any) -> bool:
    return type(value).__name__ == "Fraction"


def _frac(value: Any) -> Any:
    from fractions import Fraction

    return Fraction(value)


def _floor(value: Any) -> int:
    return value if isinstance(value, int) else value.numerator // value.denominator


def _bits(value: Any) -> int:
    if isinstance(value, int):
        return value.bit_length()
    return max(value.numerator.bit_length(), value.denominator.bit_length())


def _check_magnitude(value: int, text: str) -> None:
    if abs(value) > MAX_VALUE:
        shown = short(text or str(value))
        raise ArchcalcError(
            f"value of {shown!r} is astronomically large (at most {MAX_VALUE:.0e} is supported)"
        )


def _integer_expr(value: Any, text: str) -> Value:
    """Collapse a sympy result to ``int`` when it has no free symbols."""
    if _is_native(value):  # never a number, never infinite: numbers stay ints and Fractions
        return value
    sp = _sympy()
    if value.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise ArchcalcError(f"division by zero in {short(text)!r}")
    if value.is_Number:
        if not value.is_Integer:
            raise ArchcalcError(
                f"{short(text)!r} is {value}, not an integer; use // or floor() to round"
            )
        result = int(value)
        _check_magnitude(result, text)
        return result
    return value


# --------------------------------------------------------------------------- symbols and helpers


def _sympy():
    import sympy

    return sympy


@contextmanager
def native_values() -> Iterator[None]:
    """Within it, symbols are archcalc's own values (:mod:`archcalc.language.native`), which
    print as sympy's would without importing sympy; an operation they do not model raises
    :class:`native.NotNative`, and the caller does the work again outside."""
    token = native.SAMPLES.set({})  # also the sign that these values are in use
    try:
        yield
    finally:
        native.SAMPLES.reset(token)


def symbol(name: str, declared: int | None = None) -> Any:
    """A plain positive-integer symbol (``N``, ``S``, ``I``... are never built-ins);
    ``declared``: the value the spec gives it, which ``--symbolic`` set aside."""
    samples = native.SAMPLES.get()
    if samples is None:
        return _sympy_symbol(name)
    if isinstance(declared, int) and declared >= 1:
        samples[name] = declared
    return native.Sym(name)


@cache
def _sympy_symbol(name: str) -> Any:
    return _sympy().Symbol(name, integer=True, positive=True)


def _is_native(value: Any) -> bool:
    return isinstance(value, native.Expr)


def is_symbolic(value: Any) -> bool:
    """True for a symbolic value, sympy's or archcalc's own (a value that is not an int)."""
    return not isinstance(value, int)


def floor_div(a: Value, b: Value) -> Value:
    """``floor(a/b)``, exact for ints and kept as ``floor`` for symbols.

    >>> floor_div(217, 4)
    54
    """
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    if _is_native(a) or _is_native(b):
        return native.floor_div(a, b)
    return _symbolic_floor_div(a, b)


# The symbolic halves below are remembered: a network's sizes recur at every layer of a stage
# (ResNet-50 with H, W free asks 60 floors, 62 comparisons and 32 equalities, of which 18, 22
# and 8 differ), and sympy would rebuild and re-reason each one. Ints never reach them.
@lru_cache(maxsize=8192)
def _symbolic_floor_div(a: Value, b: Value) -> Value:
    sp = _sympy()
    if isinstance(b, int) and b > 0:
        # floor((floor(y) + m)/n) = floor((y + m)/n) for integer m, positive integer n:
        # nested pooling reads floor(H/8), not floor(floor(floor(H/2)/2)/2).
        inner, rest = None, 0
        for term in sp.Add.make_args(a):
            if isinstance(term, sp.floor) and inner is None:
                inner = term.args[0]
            elif term.is_Integer:
                rest += term
            else:
                inner = None
                break
        else:
            if inner is not None:
                return sp.floor((inner + rest) / b)
    return sp.floor(a / b)


def ceil_div(a: Value, b: Value) -> Value:
    """``ceil(a/b)``.

    >>> ceil_div(217, 4)
    55
    """
    if isinstance(a, int) and isinstance(b, int):
        return -((-a) // b)
    if _is_native(a) or _is_native(b):
        raise native.NotNative("ceil")
    return _sympy().ceiling(a / b)


def exact_div(a: Value, b: Value) -> Value:
    """``a/b`` where b divides a (checked by the caller, or an assumption when symbolic)."""
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    return a / b


def product(values) -> Value:
    """The product of a sequence of values (1 for an empty one)."""
    result = 1
    for value in values:
        result = result * value
    return result


def total(values) -> Value:
    """The sum of values: ints added as ints, symbolic terms in one ``sympy.Add``.

    >>> total([1, 2, 3])
    6
    """
    number, terms = 0, []
    for value in values:
        if isinstance(value, int):
            number += value
        else:
            terms.append(value)
    if not terms:
        return number
    if any(_is_native(term) for term in terms):
        return native.add(number, *terms)
    return simplify(_sympy().Add(number, *terms))


def as_int(value: Any) -> Any:
    """A sympy integer as an ``int`` (``0*s + 1`` is sympy's 1); anything else unchanged.

    >>> as_int(symbol("s") * 0 + 1), as_int(None)
    (1, None)
    """
    return int(value) if getattr(type(value), "is_Integer", False) is True else value


def simplify(value: Value) -> Value:
    """A value in its simplest exact form: ints stay ints; sympy results are collapsed."""
    if isinstance(value, int) or _is_native(value):
        return value
    if value.is_Integer:
        return int(value)
    return value


def at_least(value: Value, bound: Value) -> bool | None:
    """True/False when ``value >= bound`` is certain for all positive-integer symbols, else None.

    >>> at_least(symbol("C"), 1), at_least(symbol("J") - symbol("F"), 0)
    (True, None)
    """
    if isinstance(value, int) and isinstance(bound, int):
        return value >= bound
    if _is_native(value) or _is_native(bound):
        return native.at_least(value, bound)
    return _symbolic_at_least(value, bound)


@lru_cache(maxsize=8192)
def _symbolic_at_least(value: Value, bound: Value) -> bool | None:
    difference = _sympy().expand(value - bound)
    if difference.is_nonnegative:
        return True
    if difference.is_negative:
        return False
    # sympy leaves some sums of positive terms undecided (3*a + 2*b >= 5 for positive
    # integers); archcalc's own values decide those, and both paths must say the same
    try:
        return True if native.surely_nonnegative(native.from_sympy(difference)) else None
    except native.NotNative:
        return None


def equal(a: Value, b: Value) -> bool | None:
    """True/False when equality of ``a`` and ``b`` is certain, else None."""
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if _is_native(a) or _is_native(b):
        return native.equal(a, b)
    return _symbolic_equal(a, b)


@lru_cache(maxsize=8192)
def _symbolic_equal(a: Value, b: Value) -> bool | None:
    sp = _sympy()
    difference = sp.expand(a - b)
    if not difference.has(sp.Piecewise):
        # simplify's search over a ceil_mode pool's nested conditions took 26 s on one
        # comparison (a fuzzed stack of three pools with a free stride); there, only what
        # expand and the assumptions see is decided, the rest is assumed and checked later
        difference = sp.simplify(difference)
    if difference == 0:
        return True
    if difference.is_Number or not difference.free_symbols:
        return False
    if difference.is_zero is False:
        return False
    return None
