"""Inverse questions: which symbol values satisfy constraints on layers or totals.

    archcalc solve spec.yaml --for J --where "conv1.output == [96, 55, 55]" --where "conv1.uncovered == 0"

A constraint is ``REFERENCE OP VALUE``: the reference is a total (``params``,
``macs``, ``neurons``, ``connections``, ``flops``, ``output``, ``output[i]``)
or a layer (path or name) and a quantity (``output``, ``output[i]``,
``params``, ``macs``, ``neurons``, ``connections``, ``weights_per_neuron``,
``uncovered``: rows and columns of the padded input a stride leaves unused);
OP one of ``== != < <= > >=``; VALUE an integer expression or a list of them
(``16e9`` is read as the integer it is).

Training memory is a reference too: ``memory.peak_bytes`` (or ``saved_bytes``,
``parameter_bytes``, ``gradient_bytes``, ``optimizer_bytes``, ``working_bytes``) at the
batch, dtype and optimizer given in ``memory``; solving ``--for batch`` asks for the
batch sizes that fit (the byte counts are linear in it)::

    archcalc solve spec.yaml --for batch --where "memory.peak_bytes <= 16e9"

Polynomial constraints in one symbol are solved in closed form with sympy's
``solveset``; anything else (floor, ceil, mod, several symbols) by a bounded search: the
formulas of the one symbolic analysis evaluated exactly over numpy arrays of candidates
(:mod:`archcalc.questions.vectorised`, up to 10,000,000 candidates, a sample re-checked by
the exact analysis), or, where that cannot be made exact, the exact numeric analysis re-run
for every candidate (up to 100,000).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archcalc.errors import ArchcalcError
from archcalc.language import expr
from archcalc.language.loader import load_spec
from archcalc.language.values import is_spec
from archcalc.layers import formulas as f
from archcalc.quantities.analysis import Analysis, analyze

if TYPE_CHECKING:
    from archcalc.language.spec import Spec

QUANTITIES = (
    "output",
    "params",
    "macs",
    "neurons",
    "connections",
    "weights_per_neuron",
    "uncovered",
)
TOTALS = ("params", "macs", "neurons", "connections", "flops", "output")
MEMORY = ("peak_bytes", "saved_bytes", "parameter_bytes", "gradient_bytes", "optimizer_bytes",
          "working_bytes")  # fmt: skip
#: The unknown that names the batch size (unless the spec declares a symbol of that name).
BATCH = "batch"
_INTEGRAL_FLOAT = re.compile(r"^\d+(\.\d*)?[eE]\+?\d+$")
OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
#: Most candidates the per-candidate search tries (the vectorised one: 10,000,000).
MAX_CANDIDATES = 100_000
#: Most closed-form solutions confirmed one by one (more: the vectorised search answers).
MAX_CONFIRMED = 2_000
_CONSTRAINT = re.compile(r"^\s*(?P<ref>.+?)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>.+?)\s*$")
_INDEX = re.compile(r"^(?P<name>\w+)\[(?P<index>\d+)\]$")


@dataclass(frozen=True)
class Constraint:
    text: str
    layer: str | None  # path or name; None for a total
    quantity: str
    index: int | None
    op: str
    value: Any  # parsed expression tree, or a list of them (a shape)


@dataclass
class Solution:
    symbols: list[str]
    ranges: dict[str, tuple[int, int]]
    method: str
    #: a list, or the vectorised search's :class:`~archcalc.questions.vectorised.Assignments`
    solutions: Sequence[dict[str, int]] = field(default_factory=list)
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"symbols": self.symbols, "ranges": {k: list(v) for k, v in self.ranges.items()},
                "method": self.method, "solutions": list(self.solutions), "why": self.why or None}  # fmt: skip


def parse_constraint(text: str) -> Constraint:
    """``conv1.output == [96, 55, 55]`` -> a Constraint (no code is executed)."""
    match = _CONSTRAINT.match(text)
    if not match:
        raise ArchcalcError(
            f"expected REFERENCE OP VALUE with OP one of {' '.join(OPERATORS)}. Received: {text!r}"
        )
    ref, op, value = match["ref"], match["op"], match["value"].strip()
    if value.startswith("["):
        if not value.endswith("]"):
            raise ArchcalcError(f"unbalanced brackets in {value!r}")
        items = [part.strip() for part in value[1:-1].split(",") if part.strip()]
        parsed: Any = [expr.parse(item) for item in items]  # a shape (trees themselves are tuples)
    else:
        parsed = expr.parse(_integral(value))
    head, _, tail = ref.rpartition(".")
    if not head:
        head, tail = None, ref
    if head == "memory":
        if tail not in MEMORY:
            raise ArchcalcError(f"unknown memory quantity {tail!r} in {text!r}; expected one of "
                                f"{', '.join(MEMORY)}")  # fmt: skip
        if isinstance(parsed, list):
            raise ArchcalcError(f"memory compares with a number. Received: {text!r}")
        return Constraint(text, None, "memory." + tail, None, op, parsed)
    index = None
    indexed = _INDEX.match(tail)
    if indexed:
        tail, index = indexed["name"], int(indexed["index"])
    allowed = TOTALS if head is None else QUANTITIES
    if tail not in allowed:
        where = "a total" if head is None else f"layer {head!r}"
        raise ArchcalcError(
            f"unknown quantity {tail!r} for {where} in {text!r}; expected one of {', '.join(allowed)}"
        )
    if isinstance(parsed, list) and (tail != "output" or index is not None):
        raise ArchcalcError(f"only a whole output shape compares with a list. Received: {text!r}")
    return Constraint(text, head, tail, index, op, parsed)


def _integral(text: str) -> str:
    """``16e9`` -> ``16000000000``: a float literal that is an integer, as one."""
    if _INTEGRAL_FLOAT.match(text):
        value = float(text)
        if value.is_integer():
            return str(int(value))
    return text


@dataclass(frozen=True)
class MemoryOptions:
    """The settings of ``memory.*`` references: batch (when not solved for), dtype, optimizer."""

    batch: int = 1
    dtype: str = "float32"
    optimizer: str = "adam"
    device: str = "cpu"


def _reference(analysis: Analysis, c: Constraint, memory: MemoryOptions | None = None,
               batch: Any = None) -> Any:  # fmt: skip
    if c.quantity.startswith("memory."):
        from archcalc.quantities.memory import training_memory

        m = memory or MemoryOptions()
        result = training_memory(analysis, batch=m.batch if batch is None else batch,
                                 dtype=m.dtype, optimizer=m.optimizer, device=m.device)  # fmt: skip
        return result.totals()[c.quantity.partition(".")[2]]
    if c.layer is None:
        value = analysis.output if c.quantity == "output" else analysis.totals[c.quantity]
    else:
        row = analysis.row(c.layer)
        if c.quantity == "uncovered":
            value = _uncovered(row)
        else:
            value = getattr(row, c.quantity)
    if c.index is not None:
        if c.index >= len(value):
            raise ArchcalcError(f"{c.text}: the output has {len(value)} dimensions")
        value = value[c.index]
    if value is None:
        raise ArchcalcError(f"{c.text}: {c.quantity} does not apply to this layer")
    return value


def _uncovered(row) -> Any:
    h = row.hyper
    if "stride" not in h or "kernel_size" not in h:
        raise ArchcalcError(
            f"uncovered applies to convolutions and pooling, not {row.type} ({row.path})"
        )
    d = h.get("dilation", (1,) * len(h["kernel_size"]))
    return sum(f.uncovered_input(n, k, s, p, di)
               for n, k, s, p, di in zip(row.input[1:], h["kernel_size"], h["stride"], h["padding"], d))  # fmt: skip


def _holds(analysis: Analysis, c: Constraint, env: dict, memory: MemoryOptions | None = None,
           batch: Any = None) -> bool:  # fmt: skip
    actual = _reference(analysis, c, memory, batch)
    if isinstance(c.value, list):
        wanted = tuple(expr.evaluate(tree, env) for tree in c.value)
        same = tuple(actual) == wanted
        return same if c.op == "==" else (not same if c.op == "!=" else _bad_op(c))
    wanted = expr.evaluate(c.value, env)
    return {"==": actual == wanted, "!=": actual != wanted, "<": actual < wanted,
            "<=": actual <= wanted, ">": actual > wanted, ">=": actual >= wanted}[c.op]  # fmt: skip


def _bad_op(c: Constraint) -> bool:
    raise ArchcalcError(f"shapes compare with == or != only. Received: {c.text!r}")


def solve(spec: Any, unknowns: list[str], where: list[str], ranges: dict[str, tuple[int, int]] | None = None,
          default_range: tuple[int, int] = (0, 1024), memory: MemoryOptions | None = None,
          checks: int | None = None, **values: int) -> Solution:  # fmt: skip
    """Every assignment of ``unknowns`` in range that satisfies all ``where`` constraints.

    ``batch`` may be an unknown (the batch size of ``memory.*`` references) unless the spec
    declares a symbol of that name. ``checks``: how many candidates of a vectorised search
    the exact analysis re-checks (one numeric analysis each; default 3: the first of each
    verdict, see :mod:`archcalc.questions.vectorised`).
    """
    spec = spec if is_spec(spec) else load_spec(spec)
    memory = memory or MemoryOptions()
    for name in unknowns:
        if name == BATCH and name not in spec.symbols:
            continue
        if name not in spec.symbols:
            raise ArchcalcError(
                f"--for {name}: not a declared symbol (declared: {', '.join(spec.symbols) or 'none'})"
            )
        if name in values:
            raise ArchcalcError(f"{name} is both solved for and set")
    free = [name for name, default in spec.symbols.items()
            if default is None and name not in unknowns and name not in values]  # fmt: skip
    if free:
        listed = ", ".join(free)
        raise ArchcalcError(
            f"cannot solve for {', '.join(unknowns)} while {listed} "
            f"{'have' if len(free) > 1 else 'has'} no value: give "
            f"{'them' if len(free) > 1 else 'it'} with --set NAME=VALUE, or solve for "
            f"{'them' if len(free) > 1 else 'it'} too (--for)"
        )
    constraints = [parse_constraint(text) for text in where]
    if not constraints:
        raise ArchcalcError("give at least one constraint (--where)")
    bounds = {name: (ranges or {}).get(name, default_range) for name in unknowns}
    solving_batch = BATCH in unknowns and BATCH not in spec.symbols
    if solving_batch:  # a batch holds at least one sample
        lo, hi = bounds[BATCH]
        bounds[BATCH] = (max(lo, 1), hi)
    exact = _exact(spec, constraints, unknowns, values, memory, solving_batch)
    try:
        symbolic = analyze(spec, symbolic=True, **{k: v for k, v in values.items()},
                           **{k: d for k, d in spec.symbols.items()
                              if k not in unknowns and k not in values and d is not None})  # fmt: skip
    except ArchcalcError as err:
        if not getattr(err, "symbolic_limit", False):
            raise
        return _search(constraints, unknowns, bounds, None, memory, exact, _count(bounds),
                       f"{err.path}: {err.message}")  # fmt: skip
    batch = expr.symbol(BATCH) if solving_batch else None
    closed = _closed_form(symbolic, constraints, unknowns, bounds, memory, batch)
    # solveset sees the formulas, not whether the network is valid there (J = 0 channels,
    # 64/J not whole): each solution is confirmed by the exact analysis, or, where there are
    # too many to confirm one by one, the vectorised search answers, which checks validity
    if closed is not None and len(closed.solutions) <= MAX_CONFIRMED:
        confirmed = [s for s in closed.solutions if (verdict := exact(s)) and all(verdict)]
        if confirmed or not closed.solutions:
            closed.solutions = confirmed
            closed.method += ", each solution confirmed by the exact analysis"
            return closed
    total = _count(bounds)
    vectorised, reason = _vectorised(symbolic, constraints, unknowns, bounds, memory, batch,
                                     exact, total, checks)  # fmt: skip
    if vectorised is not None:
        return vectorised
    return _search(constraints, unknowns, bounds, symbolic, memory, exact, total, reason)


def _count(bounds: dict[str, tuple[int, int]]) -> int:
    total = 1
    for lo, hi in bounds.values():
        total *= max(hi - lo + 1, 0)
    return total


def _too_many(total: int, limit: int, reason: str = "") -> ArchcalcError:
    why = f" (not vectorised: {reason})" if reason else ""
    return ArchcalcError(f"the search would try {total:,} candidates (at most {limit:,}){why}; "
                         "narrow it with --range NAME=LO:HI")  # fmt: skip


def _exact(spec: Spec, constraints: list[Constraint], unknowns: list[str], values: dict,
           memory: MemoryOptions | None, solving_batch: bool):  # fmt: skip
    """The per-candidate verdict of the numeric analysis: None where it refuses the network
    (ArchcalcError: an invalid network is not a solution), else whether each constraint holds."""

    def exact(assignment: dict[str, int]) -> list[bool] | None:
        symbols = {k: v for k, v in assignment.items() if not (solving_batch and k == BATCH)}
        batch = assignment.get(BATCH) if solving_batch else None
        try:
            analysis = analyze(spec, **values, **symbols)
        except ArchcalcError:
            return None
        env = dict(analysis.env)
        return [_holds(analysis, c, env, memory, batch) for c in constraints]

    return exact


def _vectorised(symbolic: Analysis, constraints: list[Constraint], unknowns: list[str],
                bounds: dict, memory: MemoryOptions | None, batch: Any, exact, total: int,
                checks: int | None = None) -> tuple[Solution | None, str]:  # fmt: skip
    """The vectorised search, or (None, why not) where it cannot answer exactly."""
    from archcalc.questions import vectorised as vec

    if total > vec.MAX_CANDIDATES:
        raise _too_many(total, vec.MAX_CANDIDATES)
    try:
        references = []
        for c in constraints:
            lhs = _reference(symbolic, c, memory, batch)
            lhs = list(lhs) if isinstance(lhs, tuple) else lhs
            rhs = ([expr.evaluate(t, symbolic.env) for t in c.value] if isinstance(c.value, list)
                   else expr.evaluate(c.value, symbolic.env))  # fmt: skip
            references.append((lhs, c.op, rhs))
        found = vec.search(symbolic, references, unknowns, bounds, exact, MAX_CANDIDATES,
                           vec.CHECKS if checks is None else checks)  # fmt: skip
    except (vec.Unsupported, ArchcalcError, ImportError) as err:
        return None, str(err) or type(err).__name__
    ranges_text = ", ".join(f"{n} in {lo}..{hi}" for n, (lo, hi) in bounds.items())
    aside = len(found.aside)
    kinds = [f"{found.exact - aside:,} with a value below 1"] if found.exact > aside else []
    kinds += [f"{aside:,} where a size of 1 may broadcast"] if aside else []
    below = f"{' and '.join(kinds)} decided and " if kinds else ""
    method = (f"vectorised over {ranges_text}, {total:,} candidates (numpy, from the symbolic "
              f"formulas; {below}{found.checked} checked by the exact analysis)")  # fmt: skip
    solution = Solution(list(unknowns), dict(bounds), method, found.solutions)
    if not solution.solutions and symbolic is not None:
        solution.why = _why(symbolic, constraints, unknowns, found.each, memory)
    return solution, ""


def _relation(analysis: Analysis, c: Constraint, memory: MemoryOptions | None = None,
              batch: Any = None):  # fmt: skip
    import sympy

    lhs = _reference(analysis, c, memory, batch)
    rhs = expr.evaluate(c.value, analysis.env) if not isinstance(c.value, list) else None
    if rhs is None:
        return None
    ops = {
        "==": sympy.Eq,
        "!=": sympy.Ne,
        "<": sympy.Lt,
        "<=": sympy.Le,
        ">": sympy.Gt,
        ">=": sympy.Ge,
    }
    return ops[c.op](lhs, rhs)


def _closed_form(analysis: Analysis, constraints: list[Constraint], unknowns: list[str],
                 bounds: dict[str, tuple[int, int]], memory: MemoryOptions | None = None,
                 batch: Any = None) -> Solution | None:  # fmt: skip
    """sympy's solveset, for constraints in one symbol whose two sides differ by a polynomial
    (or a ratio of polynomials) of degree at most 2; None when it does not apply."""
    import sympy

    if len(unknowns) != 1:
        return None
    name = unknowns[0]
    x = expr.symbol(name)
    lo, hi = bounds[name]
    result = sympy.Interval(lo, hi)
    for c in constraints:
        try:
            relation = _relation(analysis, c, memory, batch)
        except ArchcalcError:
            return None
        if relation is None or relation.has(
            sympy.floor, sympy.ceiling, sympy.Mod, sympy.Min, sympy.Max, sympy.Piecewise
        ):
            return None
        if relation in (sympy.true, sympy.false):
            result = result if relation == sympy.true else sympy.EmptySet
            continue
        if relation.free_symbols - {x} or not _low_degree(relation, x):
            return None
        real = sympy.Dummy(
            name, real=True
        )  # solveset honours x's integer assumption; bounds do that
        found = sympy.solveset(relation.subs(x, real), real, sympy.Reals)
        if isinstance(found, sympy.ConditionSet):
            return None
        result = sympy.Intersection(result, found)
    values = _integers_in(result, lo, hi)
    if values is None:
        return None
    solution = Solution([name], dict(bounds), "closed form (sympy solveset)",
                        [{name: v} for v in values])  # fmt: skip
    if not values:
        solution.why = (
            f"the constraints allow {name} in {result}, which holds no integer in {lo}..{hi}"
        )
    return solution


def _integers_in(region, lo: int, hi: int) -> list[int] | None:
    import math

    import sympy

    if region is sympy.EmptySet or region == sympy.EmptySet:
        return []
    if isinstance(region, sympy.FiniteSet):
        return sorted(int(v) for v in region if v.is_integer and lo <= v <= hi)
    if isinstance(region, sympy.Interval):
        start = math.ceil(region.start) + (1 if region.left_open and region.start.is_integer else 0)
        end = math.floor(region.end) - (1 if region.right_open and region.end.is_integer else 0)
        return list(range(max(start, lo), min(end, hi) + 1))
    if isinstance(region, sympy.Union):
        parts = [_integers_in(part, lo, hi) for part in region.args]
        return None if any(p is None for p in parts) else sorted(set(itertools.chain(*parts)))
    return None


def _search(constraints: list[Constraint], unknowns: list[str], bounds: dict,
            symbolic: Analysis | None, memory: MemoryOptions | None, exact, total: int,
            reason: str = "") -> Solution:  # fmt: skip
    """Re-run the exact numeric analysis for every candidate (``reason``: why not vectorised)."""
    if total > MAX_CANDIDATES:
        raise _too_many(total, MAX_CANDIDATES, reason)
    axes = [range(lo, hi + 1) for lo, hi in bounds.values()]
    ranges_text = ", ".join(f"{n} in {lo}..{hi}" for n, (lo, hi) in bounds.items())
    method = f"bounded integer search over {ranges_text}"
    solution = Solution(list(unknowns), dict(bounds),
                        method + (f" (not vectorised: {reason})" if reason else ""))  # fmt: skip
    each: list[list[dict]] = [[] for _ in constraints]
    for combo in itertools.product(*axes):
        assignment = dict(zip(unknowns, combo))
        results = exact(assignment)
        if results is None:
            continue  # an invalid network is not a solution
        for i, ok in enumerate(results):
            if ok:
                each[i].append(assignment)
        if all(results):
            solution.solutions.append(assignment)
    if not solution.solutions and symbolic is not None:
        solution.why = _why(symbolic, constraints, unknowns,
                            [(len(hits), hits[:4]) for hits in each], memory)  # fmt: skip
    return solution


#: The highest degree sympy is asked to solve (the closed form, and the "need k = ..."
#: explanation); higher degrees are searched.
MAX_SOLVED_DEGREE = 2


def _low_degree(relation: Any, x: Any) -> bool:
    """Whether ``lhs - rhs`` is a ratio of polynomials in ``x`` of degree at most 2. Higher
    degrees go to the vectorised search: solveset took 1.3 s to intersect a quartic's roots
    with the range, and minutes to write another quartic's roots in radicals."""
    import sympy

    if not isinstance(relation, sympy.Rel):
        return False
    top, bottom = sympy.fraction(sympy.together(relation.lhs - relation.rhs))
    try:
        return all(sympy.Poly(part, x).degree() <= MAX_SOLVED_DEGREE for part in (top, bottom))
    except sympy.PolynomialError:
        return False


def _real_roots(e: Any, x: Any) -> list:
    """The real roots of ``e = 0`` that are not integers, where ``e`` is a polynomial of
    degree 1 or 2 in ``x``; none otherwise. A quartic's closed form took sympy's solveset
    minutes (a fuzzed two-convolution stack with a free kernel size)."""
    import sympy

    try:
        poly = sympy.Poly(sympy.expand(e), x)
    except sympy.PolynomialError:
        return []
    if not 1 <= poly.degree() <= MAX_SOLVED_DEGREE or not all(
        c.is_Rational for c in poly.all_coeffs()
    ):
        return []
    return [v for v in sympy.roots(poly, filter="R") if not v.is_integer]


def _why(symbolic: Analysis, constraints: list[Constraint], unknowns: list[str],
         each: list[tuple[int, list[dict]]], memory: MemoryOptions | None = None) -> str:  # fmt: skip
    """Explain an empty result: the real solution without rounding, or what each constraint
    allows (``each``: per constraint, how many candidates satisfy it and the first four)."""
    import sympy

    if len(unknowns) == 1 and unknowns[0] != BATCH:
        x = expr.symbol(unknowns[0])
        reals = []
        for c in constraints:
            if isinstance(c.value, list):
                lhs = _reference(symbolic, c)
                rels = [sympy.Eq(a, expr.evaluate(t, symbolic.env)) for a, t in zip(lhs, c.value)]
            elif c.quantity == "uncovered" and c.op == "==":
                continue  # exact division is what dropping the floor already assumes
            else:
                rel = _relation(symbolic, c, memory)
                rels = [rel] if rel is not None else []
            real = sympy.Dummy(unknowns[0], real=True)  # before dropping floor: x is an integer
            for rel in rels:
                if not isinstance(rel, sympy.Eq):
                    continue
                exact = (
                    rel.subs(x, real)
                    .replace(sympy.floor, lambda a: a)
                    .replace(sympy.ceiling, lambda a: a)
                )
                if isinstance(exact, sympy.Eq) and exact.free_symbols == {real}:
                    reals += _real_roots(exact.lhs - exact.rhs, real)
        if reals:
            shown = ", ".join(f"{unknowns[0]} = {v}" for v in sorted(set(reals)))
            return f"with exact division the constraints need {shown}, which is not an integer"
    parts = []
    for c, (count, hits) in zip(constraints, each):
        if not count:
            parts.append(f"'{c.text}' holds for no candidate")
        else:
            first = ", ".join(" ".join(f"{k}={v}" for k, v in h.items()) for h in hits[:4])
            parts.append(
                f"'{c.text}' holds for {count} candidate(s) ({first}{', ...' if count > 4 else ''})"
            )
    return "no candidate satisfies all constraints at once: " + "; ".join(parts)


def render(solution: Solution, limit: int = 50) -> str:
    lines = [f"solving for {', '.join(solution.symbols)}: {solution.method}"]
    found = (
        [s[solution.symbols[0]] for s in solution.solutions] if len(solution.symbols) == 1 else []
    )
    if len(found) > 10 and found == list(range(found[0], found[-1] + 1)):
        name = solution.symbols[0]
        lines.append(f"  {name} = {found[0]} .. {found[-1]} (every integer)")
        lines.append(
            f"{len(found)} solutions; smallest {name} = {found[0]}, largest {name} = {found[-1]}"
        )
        return "\n".join(lines) + "\n"
    for assignment in solution.solutions[:limit]:
        lines.append("  " + ", ".join(f"{k} = {v}" for k, v in assignment.items()))
    count = len(solution.solutions)
    if count > limit:
        lines.append(f"  ... and {count - limit} more")
    if count:
        if len(solution.symbols) == 1:
            name = solution.symbols[0]
            found = [s[name] for s in solution.solutions]
            lines.append(
                f"{count} solution{'s' * (count != 1)}; smallest {name} = {min(found)}, largest {name} = {max(found)}"
            )
        else:
            lines.append(f"{count} solution{'s' * (count != 1)}")
    else:
        lines.append(f"no solution: {solution.why}")
    return "\n".join(lines) + "\n"
