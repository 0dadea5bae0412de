"""The vectorised search of ``archcalc solve``: one symbolic analysis, evaluated over arrays.

Instead of re-running the numeric analysis for each candidate, the sympy formula of every
constraint's reference is evaluated over numpy arrays of candidates (one broadcast axis per
unknown), with exact integer arithmetic:

* every value is kept as ``num / den`` with ``num`` an integer array and ``den`` a positive
  integer fixed by the formula's structure (``floor(H/32 - 1/32)`` is ``(H - 1) // 32``:
  the denominators are multiplied out first, then one exact floor division);
* ``int64`` is used when an interval bound of every intermediate numerator over the whole box
  stays below 2**62, Python integers (object arrays) otherwise;
* a candidate is valid when the numeric analysis would accept it: every shape size an integer
  >= 1, every symbolic field an integer of at most ``MAX_VALUE``, every condition the
  symbolic analysis assumed (``X >= Y``, ``X == Y``, ``X divisible by Y``) true, and the
  checks layers make only on numbers re-derived (a pool's padding at most half its kernel, a
  transposed convolution's output padding below stride or dilation);
* the symbolic analysis treats symbols as positive integers, so candidates with a value below
  1 are left to the exact analysis, and so are the ones where a symbolic size that the
  analysis assumed equal to another in a broadcast is 1 instead (PyTorch broadcasts it, the
  formulas do not); a sample of the rest is checked by it too: ``checks`` candidates (3 by
  default), the first of each verdict (a solution, an invalid network, a valid
  non-solution), then the last of each, then a few random ones.

Anything outside what is handled here (a function the evaluator does not know, an assumption
it cannot read, a layer type whose numeric-only checks are not re-derived, a disagreement in
the sample) raises :class:`Unsupported`, and the caller falls back to the per-candidate search.
"""

from __future__ import annotations

import functools
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from archcalc import collector
from archcalc.errors import ArchcalcError
from archcalc.language import expr
from archcalc.layers.tensor_ops import wide_sizes
from archcalc.questions.compiled import Compiler as _Compiler
from archcalc.questions.compiled import Evaluator as _Evaluator
from archcalc.questions.compiled import Node as _Node
from archcalc.questions.unsupported import Unsupported

#: Most candidates the vectorised search evaluates (the per-candidate search: 100,000).
MAX_CANDIDATES = 10_000_000
#: Candidates evaluated at once (a block of the grid; blocks are sub-boxes in product order).
CHUNK = 1 << 18
#: Candidates the exact analysis re-checks by default (each costs one numeric analysis).
CHECKS = 3
_INT64_SAFE = 1 << 62
#: Layer types whose checks on numbers are all either recorded as assumptions by the symbolic
#: analysis or re-derived here; anything else with a free symbol in it is not vectorised.
_CONV = {f"conv{n}d" for n in (1, 2, 3)}
_TRANSPOSE = {f"conv_transpose{n}d" for n in (1, 2, 3)}
_POOL = {f"{kind}pool{n}d" for kind in ("max", "avg") for n in (1, 2, 3)}
_SAFE = (
    _CONV | _TRANSPOSE | _POOL
    | {f"adaptive_{kind}pool{n}d" for kind in ("avg", "max") for n in (1, 2, 3)}
    | {f"batchnorm{n}d" for n in (1, 2, 3)} | {f"instance_norm{n}d" for n in (1, 2, 3)}
    | {"group_norm", "layernorm", "linear", "flatten", "concat", "add", "mul", "input"}
    # their checks are on dims (numbers, the same for every candidate) or recorded as
    # assumptions (a channel_shuffle's or attention's divisibility, a narrow's or a crop's extent)
    | {"permute", "transpose", "unsqueeze", "mean", "channel_shuffle", "narrow", "center_crop",
       "subsample", "multihead_attention"}
)  # fmt: skip
_ASSUMED = re.compile(r"^(?P<a>.+?) (?P<op>>=|==|divisible by) (?P<b>.+)$")


# --------------------------------------------------------------------------- the checks


def _from_text(text: str) -> Any:
    """An assumption's side, parsed by archcalc's safe parser and built exactly in sympy."""
    import sympy

    def build(tree: tuple) -> Any:
        kind = tree[0]
        if kind == "num":
            return sympy.Integer(tree[1])
        if kind == "name":
            return expr.symbol(tree[1])
        if kind == "neg":
            return -build(tree[1])
        if kind == "bin":
            op, a, b = tree[1], build(tree[2]), build(tree[3])
            if op in ("/", "//", "%") and b == 0:
                raise Unsupported(f"a division by zero in an assumption: {text}")
            return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
                    "/": lambda: a / b, "//": lambda: sympy.floor(a / b),
                    "%": lambda: sympy.Mod(a, b), "**": lambda: a**b}[op]()  # fmt: skip
        func, args = tree[1], [build(t) for t in tree[2]]
        calls = {"min": lambda: sympy.Min(*args), "max": lambda: sympy.Max(*args),
                 "floor": lambda: sympy.floor(args[0]), "ceil": lambda: sympy.ceiling(args[0])}  # fmt: skip
        if func not in calls:
            raise Unsupported(f"{func}() in an assumption: {text}")
        return calls[func]()

    try:
        return build(expr.parse(text))
    except ArchcalcError as err:
        raise Unsupported(f"cannot read the assumption {text!r}: {err}") from None


def _assumption(compiler: _Compiler, text: str) -> _Node:
    match = _ASSUMED.match(text)
    if not match:
        raise Unsupported(f"cannot read the assumption {text!r}")
    a, b = compiler.value(_from_text(match["a"])), compiler.value(_from_text(match["b"]))
    if match["op"] == "divisible by":
        return compiler.divisible(a, b)
    return compiler.compare(a, match["op"], b)


def _free_values(value: Any) -> Iterator[Any]:
    """The values with a free symbol inside a hyperparameter (ints, sympy values, tuples)."""
    if isinstance(value, tuple):
        for item in value:
            yield from _free_values(item)
    elif (
        hasattr(value, "free_symbols") and not isinstance(value, (str, float)) and _has_free(value)
    ):
        yield value  # a sympy value


@functools.lru_cache(maxsize=4096)
def _has_free(value: Any) -> bool:
    # sympy walks the whole tree for free_symbols each time; a stage's sizes recur at every
    # layer of it (ResNet-50: 3,460 asks, 40 distinct sizes)
    return bool(value.free_symbols)


def _symbolic(values: Any) -> bool:
    return any(not isinstance(v, int) and _has_free(v) for v in values)


def _validity(compiler: _Compiler, analysis: Any) -> tuple[list[_Node], list[_Node]]:
    """Conditions under which the numeric analysis accepts a candidate (see the module doc),
    and conditions under which its formulas do not hold there (see :func:`_broadcast_odd`)."""
    conds: list[_Node] = []
    odd: list[_Node] = []
    nodes = analysis.graph.nodes
    sized: set = set()  # sizes already required to be at least 1
    bounded: set = set()  # hyperparameters already bounded

    def at_least(value: Any, bound: int) -> None:
        node = compiler.value(value)
        whole = compiler.integral(node)
        if whole is not None:
            conds.append(whole)
        conds.append(compiler.compare(node, ">=", compiler.const(bound)))

    for node in nodes:
        hyper = [v for key, v in node.hyper.items() if not key.startswith("_")]
        numbers = list(_free_values(tuple(hyper)))
        inputs = [v for i in node.inputs for v in nodes[i].shape]
        if not numbers and not _symbolic((*node.shape, *inputs)):
            continue
        if node.type not in _SAFE and node.type in _rules():
            raise Unsupported(f"{node.path}: a {node.type} layer with a free symbol in it")
        for size in node.shape:
            if not isinstance(size, int) and size not in sized:
                sized.add(size)
                at_least(size, 1)
        for value in numbers:
            if value not in bounded:
                bounded.add(value)
                v = compiler.value(value)
                whole = compiler.integral(v)
                conds += [whole] if whole is not None else []
                limit = compiler.const(expr.MAX_VALUE)
                conds += [compiler.compare(v, "<=", limit),
                          compiler.compare(v, ">=", compiler.const(-expr.MAX_VALUE))]  # fmt: skip
        h = node.hyper
        if node.type in _POOL:  # PyTorch's rule, checked by the pool on numbers only
            for k, p in zip(h["kernel_size"], h["padding"]):
                if _symbolic((k, p)):
                    conds.append(compiler.compare(compiler.value(2 * p), "<=", compiler.value(k)))
        if node.type in _TRANSPOSE:
            for op, s, d in zip(h["output_padding"], h["stride"], h["dilation"]):
                if _symbolic((op, s, d)):
                    import sympy

                    conds.append(compiler.compare(compiler.value(op), "<",
                                                  compiler.value(sympy.Max(s, d))))  # fmt: skip
        if node.type in ("add", "mul"):
            odd += _broadcast_odd(compiler, [nodes[i].shape for i in node.inputs], conds)
    known: dict[str, tuple] | None = None
    for _, text in analysis.assumptions:
        try:
            conds.append(_assumption(compiler, text))
        except Unsupported:
            # a condition the parser cannot read (a ceil_mode pool's Piecewise in it): found
            # among the ones the layers state, written the same way, and built from the formula
            known = _known_conditions(nodes) if known is None else known
            if text not in known:
                raise
            value, op, bound = known[text]
            conds.append(compiler.compare(compiler.value(value), op, compiler.value(bound)))
    return conds, odd


def _broadcast_odd(compiler: _Compiler, shapes: list[tuple], before: list[_Node]) -> list[_Node]:
    """Where broadcasting makes the symbolic formulas wrong: the candidates to decide exactly.

    With symbols the analysis sets a literal 1 aside (a squeeze-and-excitation gate
    [C, 1, 1]) and assumes the other sizes equal (ViT's position embedding [197, 768] added
    to [H//16 * W//16 + 1, 768]). That is exact where they are equal, and where they cannot
    broadcast (the network is refused either way); but where they differ and the ones that
    are not 1 agree, PyTorch broadcasts a 1 the formulas did not foresee. Those candidates,
    among the ones that pass the checks of the layers ``before`` (the others are refused
    anyway), go to the exact analysis one by one.
    """
    odd = []
    for sizes in zip(*shapes):
        wide = list(dict.fromkeys(wide_sizes(sizes)))
        if len(wide) < 2 or not _symbolic(wide):
            continue
        one = compiler.const(1)
        values = [compiler.value(n) for n in wide]
        differ = compiler.logical("or", [compiler.compare(v, "!=", values[0]) for v in values[1:]])
        agree = [compiler.logical("or", [compiler.compare(a, "==", one), compiler.compare(b, "==", one),
                                         compiler.compare(a, "==", b)])
                 for i, a in enumerate(values) for b in values[i + 1:]]  # fmt: skip
        odd.append(compiler.logical("and", [*before, differ, *agree]))
    return odd


def _known_conditions(nodes: list) -> dict[str, tuple]:
    """Text -> (value, op, bound) for the checks layers make with ``Note.at_least`` (every
    size >= 1, a window that fits in the padded input) and ``Note.same`` (sizes that
    broadcast are assumed equal)."""
    known = {}

    def add(value: Any, bound: Any) -> None:
        if _symbolic((value, bound)):
            known[expr.condition_text(value, ">=", bound)] = (value, ">=", bound)

    for node in nodes:
        for size in node.shape:
            add(size, 1)
        h = node.hyper
        if node.type in _CONV | _POOL and node.inputs and "kernel_size" in h:
            inp = nodes[node.inputs[0]].shape
            pe = h.get("padding_end", h["padding"])
            d = h.get("dilation", (1,) * len(h["kernel_size"]))
            for n, k, p, q, di in zip(inp[1:], h["kernel_size"], h["padding"], pe, d):
                add(n + p + q, di * (k - 1) + 1)
        if node.type in ("add", "mul"):  # the words of tensor_ops.broadcast's checks
            for sizes in zip(*(nodes[i].shape for i in node.inputs)):
                wide = wide_sizes(sizes)
                for n in wide[1:]:
                    if _symbolic((n, wide[0])):
                        known[f"{expr.to_text(n)} == {expr.to_text(wide[0])}"] = (n, "==", wide[0])
    return known


def _rules() -> dict:
    from archcalc.layers.registry import RULES

    return RULES


# --------------------------------------------------------------------------- the search


class Assignments(Sequence):
    """Solutions as rows of integer arrays, one ``{name: value}`` dict made per solution read.

    Building 70,000 dicts costs more than finding them; a user reads the first fifty.
    Equal to any sequence of the same dicts in the same order.
    """

    def __init__(self, unknowns: list[str]):
        self.unknowns = list(unknowns)
        self.chunks: list[Any] = []  # arrays of shape (solutions, unknowns)
        self.ends: list[int] = []  # solutions up to the end of each chunk
        self.extra: list[dict[str, int]] | None = None  # all of them, once merged and sorted

    def add(self, rows: Any) -> None:
        if len(rows):
            self.chunks.append(rows)
            self.ends.append((self.ends[-1] if self.ends else 0) + len(rows))

    def merged(self, more: list[dict[str, int]]) -> None:
        """Merge solutions decided one by one, in the search's order (rare: values below 1)."""
        key = lambda a: tuple(a[n] for n in self.unknowns)  # noqa: E731
        self.extra = sorted([*self, *more], key=key)

    def __len__(self) -> int:
        if self.extra is not None:
            return len(self.extra)
        return self.ends[-1] if self.ends else 0

    def _row(self, i: int) -> dict[str, int]:
        import bisect

        chunk = bisect.bisect_right(self.ends, i)
        start = self.ends[chunk - 1] if chunk else 0
        return dict(zip(self.unknowns, self.chunks[chunk][i - start].tolist()))

    def __getitem__(self, index: Any) -> Any:
        if self.extra is not None:
            return self.extra[index]
        if isinstance(index, slice):
            return [self._row(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("solution index out of range")
        return self._row(index)

    def __iter__(self) -> Iterator[dict[str, int]]:
        if self.extra is not None:
            yield from self.extra
            return
        for chunk in self.chunks:
            yield from _assignments(self.unknowns, chunk.tolist())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    def __repr__(self) -> str:
        return f"Assignments({len(self)} solutions)"


@dataclass
class Outcome:
    """What the vectorised search found, in the order of the per-candidate search."""

    solutions: Assignments
    #: per constraint: how many candidates satisfy it alone, and the first four
    each: list[tuple[int, list[dict[str, int]]]] = field(default_factory=list)
    checked: int = 0  # candidates re-checked by the exact analysis
    exact: int = 0  # candidates decided by the exact analysis only (a value below 1, ...)
    #: candidates in the box whose formulas may not hold, for the exact analysis
    aside: list[tuple] = field(default_factory=list)


Exact = Callable[[dict[str, int]], "list[bool] | None"]


def search(analysis: Any, references: list[tuple[Any, str, Any]], unknowns: list[str],
           bounds: dict[str, tuple[int, int]], exact: Exact,
           exact_limit: int = 100_000, checks: int = CHECKS) -> Outcome:  # fmt: skip
    """Every candidate in ``bounds`` that satisfies all ``references`` (lhs, op, rhs; a
    shape is a list on both sides, compared with == or !=), found over numpy arrays.

    ``exact(assignment)`` is the per-candidate verdict of the numeric analysis: None for an
    invalid network, else one bool per constraint. Raises :class:`Unsupported` when the
    answer could not be made exact.
    """
    import numpy  # noqa: F401  (fails early, before any work, where numpy is missing)

    positive = {n: (max(lo, 1), hi) for n, (lo, hi) in bounds.items()}
    outcome = Outcome(Assignments(unknowns), each=[(0, []) for _ in references])
    sample = _Sample(positive, unknowns, checks)
    # the compiled graph and the re-checks' analyses are short-lived and hold no garbage
    # cycles worth a collection (one between re-checks cost ResNet-50's question ~2 ms); the
    # exact decisions of _merge_exact, up to exact_limit analyses, run with it on
    with collector.paused():
        compiler = _Compiler(unknowns, positive)
        valid, odd = _validity(compiler, analysis)
        holds = [_constraint(compiler, lhs, op, rhs) for lhs, op, rhs in references]
        dtype = "int64" if compiler.peak < _INT64_SAFE else "object"
        box = [positive[n] for n in unknowns]
        if all(lo <= hi for lo, hi in box):
            for block in _blocks(box):
                _run_block(block, unknowns, dtype, (valid, odd), holds, outcome, sample)
                if len(outcome.aside) > exact_limit:
                    raise Unsupported(f"over {exact_limit:,} candidates where broadcasting a "
                                      "size of 1 departs from the formulas")  # fmt: skip
    _merge_exact(bounds, positive, unknowns, exact, outcome, exact_limit)
    with collector.paused():
        _recheck(sample, exact, outcome)
    return outcome


def _recheck(sample: _Sample, exact: Exact, outcome: Outcome) -> None:
    """The sample's vectorised verdicts against the exact analysis: any difference, or an
    exact analysis that fails, means the formulas cannot be trusted here."""
    for assignment, verdict in sample.items():
        outcome.checked += 1
        try:
            actual = exact(assignment)
        except ArchcalcError as err:
            raise Unsupported(f"the exact analysis fails at {_show(assignment)}: {err}") from None
        if actual != verdict:
            raise Unsupported(f"the exact analysis disagrees at {_show(assignment)}")


def _constraint(compiler: _Compiler, lhs: Any, op: str, rhs: Any) -> _Node:
    if isinstance(rhs, list):
        if op not in ("==", "!="):
            raise Unsupported("a shape compared with an order")
        if len(lhs) != len(rhs):
            return compiler.condition(compiler.sp.true if op == "!=" else compiler.sp.false)
        same = compiler.logical("and", [compiler.compare(compiler.value(a), "==",
                                                         compiler.value(b))
                                        for a, b in zip(lhs, rhs)])  # fmt: skip
        return same if op == "==" else compiler.logical("not", [same])
    wanted = compiler.value(rhs)
    if wanted.den != 1:  # the exact analysis refuses a non-integer value
        raise Unsupported(f"the value {rhs} is not an integer for every candidate")
    return compiler.compare(compiler.value(lhs), op, wanted)


def _blocks(box: list[tuple[int, int]]) -> Iterator[list[tuple[int, int]]]:
    """Sub-boxes of at most about CHUNK candidates, in the product's order."""
    (lo, hi), rest = box[0], box[1:]
    inner = math.prod(h - l + 1 for l, h in rest)  # noqa: E741
    if inner <= CHUNK:
        rows = max(1, CHUNK // inner)
        for start in range(lo, hi + 1, rows):
            yield [(start, min(start + rows - 1, hi)), *rest]
    else:
        for value in range(lo, hi + 1):
            for sub in _blocks(rest):
                yield [(value, value), *sub]


class _Sample:
    """Candidates to re-check exactly, with their vectorised verdicts: the first of each
    verdict (a solution, an invalid network, a valid non-solution), then the last of each,
    then a few picked at random (fixed seed); ``checks`` of them."""

    def __init__(self, box: dict[str, tuple[int, int]], unknowns: list[str], checks: int):
        rng = random.Random(13)
        self.unknowns, self.checks = unknowns, checks
        self.random = {tuple(rng.randint(lo, hi) for lo, hi in box.values())
                       for _ in range(checks)} if all(lo <= hi for lo, hi in box.values()) else set()  # fmt: skip
        self.firsts: dict[str, tuple] = {}
        self.lasts: dict[str, tuple] = {}
        self.verdicts: dict[tuple, list[bool] | None] = {}

    def items(self) -> list[tuple[dict[str, int], list[bool] | None]]:
        # the edges first, where rounding and validity change, one of each verdict before a
        # second of any; then the random ones
        chosen = [where.get(kind) for where in (self.firsts, self.lasts)
                  for kind in ("solution", "invalid", "other")]  # fmt: skip
        chosen += sorted(c for c in self.random if c in self.verdicts)
        unique = list(dict.fromkeys(c for c in chosen if c is not None))[: self.checks]
        return [(dict(zip(self.unknowns, c)), self.verdicts[c]) for c in unique]


def _run_block(block, unknowns, dtype, checks, holds, outcome: Outcome, sample: _Sample) -> None:
    import numpy as np

    valid, odd = checks

    shape = tuple(hi - lo + 1 for lo, hi in block)
    env = {}
    for axis, (name, (lo, hi)) in enumerate(zip(unknowns, block)):
        view = [1] * len(block)
        view[axis] = hi - lo + 1
        values = np.arange(lo, hi + 1, dtype=np.int64)
        env[name] = (values if dtype == "int64" else values.astype(object)).reshape(view)
    evaluate = _Evaluator(env)
    # most conditions read one unknown (a size in H only): they are combined at their own
    # shape, [316, 1] or [1, 316], and widened to the whole block once
    parts: dict[tuple, Any] = {}
    for cond in dict.fromkeys(valid):
        value = np.asarray(evaluate(cond), dtype=bool)
        known = parts.get(value.shape)
        parts[value.shape] = value if known is None else known & value
    ok = np.ones(shape, dtype=bool)
    for value in parts.values():
        ok &= value
    aside = np.zeros(shape, dtype=bool)  # for the exact analysis (see _broadcast_odd)
    for cond in odd:
        aside |= np.asarray(evaluate(cond), dtype=bool)
    origin = [lo for lo, _ in block]
    if aside.any():
        outcome.aside += map(tuple, (np.stack(np.nonzero(aside), axis=1) + origin).tolist())
        ok &= ~aside
    each = [np.broadcast_to(np.asarray(evaluate(h), dtype=bool), shape) & ok for h in holds]
    every = ok.copy()
    for mask in each:
        every &= mask

    def at(flat: np.ndarray) -> list[tuple]:
        axes = [(index + lo).tolist() for index, lo in zip(np.unravel_index(flat, shape), origin)]
        return list(zip(*axes))

    def remember(kind: str, mask: np.ndarray) -> None:
        hits = np.flatnonzero(mask)
        if hits.size:
            first, last = at(hits[[0, -1]])
            sample.firsts.setdefault(kind, first)
            sample.lasts[kind] = last
            for c, where in ((first, hits[0]), (last, hits[-1])):
                sample.verdicts[c] = _verdict(ok, each, where)

    found = np.flatnonzero(every)
    if found.size:
        coords = np.unravel_index(found, shape)
        outcome.solutions.add(np.stack([c + lo for c, lo in zip(coords, origin)], axis=1))
    for i, mask in enumerate(each):
        hits = np.flatnonzero(mask)
        count, first = outcome.each[i]
        if len(first) < 4:
            first = first + [dict(zip(unknowns, c)) for c in at(hits[: 4 - len(first)])]
        outcome.each[i] = (count + int(hits.size), first)
    remember("solution", every)
    remember("invalid", ~ok & ~aside)
    remember("other", ok & ~every)
    for c in sample.random:
        if all(lo <= v <= hi for v, (lo, hi) in zip(c, block)):
            where = np.ravel_multi_index(tuple(v - lo for v, (lo, _) in zip(c, block)), shape)
            if not aside.flat[where]:
                sample.verdicts[c] = _verdict(ok, each, where)


def _assignments(unknowns: list[str], coords: list[tuple]) -> list[dict[str, int]]:
    """``{name: value}`` per candidate (literal dicts for one or two unknowns: 3x faster)."""
    if len(unknowns) == 1:
        (a,) = unknowns
        return [{a: x} for (x,) in coords]
    if len(unknowns) == 2:
        a, b = unknowns
        return [{a: x, b: y} for x, y in coords]
    return [dict(zip(unknowns, c)) for c in coords]


def _verdict(ok, each, where) -> list[bool] | None:
    if not ok.flat[where]:
        return None
    return [bool(mask.flat[where]) for mask in each]


def _merge_exact(bounds, positive, unknowns, exact: Exact, outcome: Outcome, limit: int) -> None:
    """Decide by the exact analysis, in order, the candidates with a value below 1 and the
    ones set aside by the blocks."""
    import itertools

    axes = [range(lo, hi + 1) for lo, hi in (bounds[n] for n in unknowns)]
    below = [c for c in itertools.product(*axes)
             if any(v < positive[n][0] for v, n in zip(c, unknowns))] if any(
        bounds[n][0] < 1 for n in unknowns) else []  # fmt: skip
    if not below and not outcome.aside:
        return
    if len(below) > limit:
        raise Unsupported(f"{len(below):,} candidates have a value below 1 (at most {limit:,})")
    if len(below) + len(outcome.aside) > limit:
        raise Unsupported(f"{len(below) + len(outcome.aside):,} candidates for the exact "
                          f"analysis (at most {limit:,})")  # fmt: skip
    key = lambda a: tuple(a[n] for n in unknowns)  # noqa: E731
    more: list[dict[str, int]] = []
    for c in sorted([*below, *outcome.aside]):
        assignment = dict(zip(unknowns, c))
        try:
            verdict = exact(assignment)
        except ArchcalcError as err:
            raise Unsupported(f"the exact analysis fails at {_show(assignment)}: {err}") from None
        outcome.exact += 1
        if verdict is None:
            continue
        if all(verdict):
            more.append(assignment)
        for i, ok in enumerate(verdict):
            if ok:
                count, first = outcome.each[i]
                outcome.each[i] = (count + 1, sorted([*first, assignment], key=key)[:4])
    outcome.solutions.merged(more)


def _show(assignment: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in assignment.items())
