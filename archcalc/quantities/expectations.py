"""Comparing computed numbers with the ``expect:`` entries of a spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from archcalc.graph.graph import Group
from archcalc.language import expr
from archcalc.layers.registry import shape_text
from archcalc.quantities.analysis import Analysis


@dataclass(frozen=True)
class Mismatch:
    """One failed expectation."""

    path: str  # "" for the whole network
    key: str
    expected: str
    computed: str

    def __str__(self) -> str:
        where = f"{self.path} " if self.path else ""
        return f"{where}{self.key}: expected {self.expected}, computed {self.computed}"


def check_expectations(analysis: Analysis, *, decided_only: bool = False) -> list[Mismatch]:
    """Every ``expect:`` entry (top level and per layer item) that does not hold.

    Per-item values of a composite are sums over its layers; a repeated or
    templated item is checked at every place it was expanded. With
    ``decided_only``, an entry whose truth depends on free symbols is not a
    mismatch (``check`` counts it as one: it must hold for every value).
    """
    mismatches: list[Mismatch] = []
    for item in analysis.items:
        if item.expect is not None:
            computed = _item_values(analysis, item)
            mismatches += _compare(item.path, item.expect, computed, item.env, decided_only)
    expect = analysis.spec.expect
    if expect is not None:
        computed = {"output": analysis.output, **analysis.totals}
        mismatches += _compare("", expect, computed, analysis.env, decided_only)
        for name, wanted in (expect.outputs or {}).items():
            mismatches += _compare(f"outputs.{name}", wanted, _output_values(analysis, name),
                                   analysis.env, decided_only)  # fmt: skip
    return mismatches


def _output_values(analysis: Analysis, name: str) -> dict[str, Any]:
    """An output's shape, and the sums over the rows that output depends on."""
    graph = analysis.graph
    names = list(analysis.spec.outputs or [])
    if name not in names:
        from archcalc.errors import ArchcalcError

        raise ArchcalcError(f"expect.outputs: {name!r} is not one of the spec's outputs "
                            f"({', '.join(names) or 'none named'})")  # fmt: skip
    node = graph.outputs[names.index(name)]
    needed = graph.live((node,))
    rows = [row for row in analysis.rows if needed[row.node]]
    values: dict[str, Any] = {"output": graph.nodes[node].shape}
    for key in ("params", "neurons", "connections", "macs"):
        values[key] = expr.total(getattr(row, key) for row in rows if getattr(row, key) is not None)
    values["flops"] = expr.simplify(2 * values["macs"])
    return values


def _item_values(analysis: Analysis, item: Group) -> dict[str, Any]:
    rows = analysis.rows_of(item)
    values: dict[str, Any] = {"output": analysis.graph.nodes[item.output].shape}
    for key in ("neurons", "connections", "params", "macs"):
        present = [getattr(row, key) for row in rows if getattr(row, key) is not None]
        values[key] = expr.total(present) if present else None
    leaf = rows[0] if rows and rows[0].path == item.path else None
    values["weights_per_neuron"] = leaf.weights_per_neuron if leaf else None
    return values


def _compare(
    path: str, expect: Any, computed: dict, env: Mapping, decided_only: bool = False
) -> list[Mismatch]:
    found = []
    fails = (lambda v: v is False) if decided_only else (lambda v: v is not True)
    for key, wanted in expect:
        if wanted is None or key == "outputs":
            continue
        actual = computed.get(key)
        if key == "output":
            wanted_values = [_value(v, env) for v in wanted]
            differs = (
                actual is None
                or len(actual) != len(wanted_values)
                or any(fails(expr.equal(a, b)) for a, b in zip(actual, wanted_values))
            )
            if differs:
                found.append(Mismatch(path, key, shape_text(wanted_values), shape_text(actual)))
            continue
        if hasattr(wanted, "approx"):
            undecided = decided_only and actual is not None and not isinstance(actual, int)
            if not undecided and (
                actual is None or not _rounds_to(actual, wanted.approx, wanted.digits)
            ):
                shown = "not applicable" if actual is None else _text(actual)
                found.append(Mismatch(path, key, f"{wanted.approx:.{wanted.digits}g} "
                                      f"({wanted.digits} significant digits)", shown))  # fmt: skip
            continue
        wanted_value = _value(wanted, env)
        if actual is None:
            found.append(Mismatch(path, key, _text(wanted_value), "not applicable"))
        elif fails(expr.equal(actual, wanted_value)):
            found.append(Mismatch(path, key, _text(wanted_value), _text(actual)))
    return found


def _rounds_to(actual: Any, published: float, digits: int) -> bool:
    """True when ``actual`` rounded to ``digits`` significant digits is ``published``.

    >>> _rounds_to(1_813_561_344, 1.81e9, 3), _rounds_to(1_818_000_000, 1.81e9, 3)
    (True, False)
    """
    if not isinstance(actual, int):
        return False
    return float(f"{actual:.{digits}g}") == float(f"{published:.{digits}g}")


def _value(value: Any, env: Mapping) -> Any:
    return value if isinstance(value, int) else expr.evaluate_text(value, env)


def _text(value: Any) -> str:
    return f"{value}" if isinstance(value, int) else expr.to_text(value)
