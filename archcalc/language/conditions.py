"""``when:`` conditions: comparisons of expressions joined by and, or, not.

Parsed with :mod:`ast` into small tuples like expressions (:mod:`archcalc.language.expr`),
never evaluated by Python; decided against symbol values, and an error where free symbols
leave them undecided.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from typing import Mapping

from archcalc.errors import ArchcalcError
from archcalc.language.expr import (
    MAX_EXPRESSION_DEPTH,
    MAX_EXPRESSION_LENGTH,
    Value,
    _convert,
    _eval,
    _is_number,
    _plain,
    at_least,
    equal,
    names,
    short,
    to_text,
)

_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


@lru_cache(maxsize=2048)
def parse_condition(text: str) -> tuple:
    """Parse a ``when:`` condition: comparisons of expressions, joined by and, or, not.

    >>> parse_condition("stride != 1 or C_in != 4*planes")[0]
    'or'
    """
    if not isinstance(text, str) or not text.strip():
        raise ArchcalcError("expected a condition such as 'stride != 1'. Received: an empty string")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ArchcalcError(f"condition is too long ({len(text)} characters)")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        detail = getattr(err, "msg", None) or type(err).__name__
        raise ArchcalcError(f"cannot parse condition {short(text)!r}: {detail}") from None
    return _condition(tree.body, text, 0)


def _condition(node: ast.AST, text: str, depth: int) -> tuple:
    if depth > MAX_EXPRESSION_DEPTH:
        raise ArchcalcError(f"condition {short(text)!r} is nested too deeply")
    if isinstance(node, ast.BoolOp):
        word = "and" if isinstance(node.op, ast.And) else "or"
        return (word, tuple(_condition(v, text, depth + 1) for v in node.values))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return ("not", _condition(node.operand, text, depth + 1))
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        operands = (node.left, *node.comparators)
        return ("cmp", tuple(_COMPARE[type(op)] for op in node.ops),
                tuple(_convert(o, text, depth + 1) for o in operands))  # fmt: skip
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return ("bool", node.value)
    raise ArchcalcError(
        f"expected a condition (comparisons joined by and, or, not) in {short(text)!r}; "
        "e.g. 'stride != 1 or C_in != 4*planes'"
    )


def condition_names(tree: tuple) -> frozenset[str]:
    """The names a parsed condition refers to."""
    kind = tree[0]
    if kind in ("and", "or"):
        return frozenset().union(*(condition_names(t) for t in tree[1]))
    if kind == "not":
        return condition_names(tree[1])
    if kind == "cmp":
        return frozenset().union(*(names(t) for t in tree[2]))
    return frozenset()


def evaluate_condition(tree: tuple, env: Mapping[str, Value], text: str = "") -> bool:
    """Decide a parsed condition; an undecidable one (free symbols) is an error."""
    kind = tree[0]
    if kind == "bool":
        return tree[1]
    if kind == "not":
        return not evaluate_condition(tree[1], env, text)
    if kind == "and":
        return all(evaluate_condition(t, env, text) for t in tree[1])
    if kind == "or":
        return any(evaluate_condition(t, env, text) for t in tree[1])
    values = [_plain(_eval(t, env, text)) for t in tree[2]]
    for op, a, b in zip(tree[1], values, values[1:]):
        verdict = _compare(op, a, b)
        if verdict is None:
            raise ArchcalcError(
                f"condition {short(text)!r} depends on free symbols ({to_text(a)} {op} "
                f"{to_text(b)}); give them values (--set NAME=VALUE)"
            )
        if not verdict:
            return False
    return True


def _compare(op: str, a: Value, b: Value) -> bool | None:
    if _is_number(a) and _is_number(b):
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b,
                ">=": a >= b}[op]  # fmt: skip
    if op in ("==", "!="):
        same = equal(a, b)
        return None if same is None else (same if op == "==" else not same)
    if op in (">=", "<="):
        return at_least(a, b) if op == ">=" else at_least(b, a)
    strict = at_least(a, b + 1) if op == ">" else at_least(b, a + 1)
    return strict
