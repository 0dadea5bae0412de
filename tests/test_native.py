"""archcalc's own symbolic values (archcalc.language.native) against sympy.

They must build, decide and print exactly what sympy does for the expressions a shape
analysis makes, or refuse (NotNative) so that sympy does the work; never differ.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import hypothesis.strategies as st
import pytest
import sympy as sp
import yaml
from hypothesis import HealthCheck, given, settings
from test_properties import image_stack

from archcalc import ArchcalcError, analyze
from archcalc.language import expr, native
from archcalc.language.native import NotNative, Sym
from archcalc.language.printing import to_text
from archcalc.render.tables import markdown, table, to_json

ROOT = Path(__file__).resolve().parent.parent
H, W = Sym("H"), Sym("W")
HALF = Fraction(1, 2)


def size(n):  # a 7x7 stride-2 convolution's output size with padding 3
    return native.floor_div(n + 2 * 3 - 7, 2) + 1


@pytest.mark.parametrize(
    "build, text",
    [
        (lambda: size(H), "floor(H/2 - 1/2) + 1"),
        (lambda: 64 * size(H) * size(W), "(64*floor(H/2 - 1/2) + 64)*(floor(W/2 - 1/2) + 1)"),
        (lambda: 147 * (64 * size(H) * size(W)),
         "147*(64*floor(H/2 - 1/2) + 64)*(floor(W/2 - 1/2) + 1)"),
        (lambda: native.floor_div(size(H) - 1, 2) + 1, "floor(H/4 - 1/4) + 1"),  # nested floors
        (lambda: native.floor(H * Fraction(1, 3) + 2 * size(W)),
         "floor(H/3) + 2*floor(W/2 - 1/2) + 2"),  # whole terms leave the floor
        (lambda: native.floor(H + HALF), "H"),
        (lambda: -(H + 1), "-H - 1"),
        (lambda: 1 - 2 * H, "1 - 2*H"),
        (lambda: W - H, "W - H"),  # positive terms first, as archcalc's printer puts them
        (lambda: size(H) * size(H), "(floor(H/2 - 1/2) + 1)**2"),
        (lambda: (2 * H) ** 2, "4*H**2"),
        (lambda: H / 4 - 3 * W / 4, "H/4 - 3*W/4"),
        (lambda: native.add(3 * size(H) * size(W), 64 * size(H) * size(W), 1000),
         "(3*floor(H/2 - 1/2) + 3)*(floor(W/2 - 1/2) + 1) + (64*floor(H/2 - 1/2) + 64)*(floor(W/2 - 1/2) + 1) + 1000"),
        (lambda: native.add(64 * size(H) * size(W), 64 * size(H) * size(W), 1000),
         "2*(64*floor(H/2 - 1/2) + 64)*(floor(W/2 - 1/2) + 1) + 1000"),  # like terms meet
    ],
)  # fmt: skip
def test_hand_computed_values_print_as_sympy_prints_them(build, text):
    assert native.text(build()) == text


def test_numbers_stay_python_numbers():
    assert H - H == 0 and type(H - H) is int
    assert (H * HALF) * 2 == H
    assert native.floor(Fraction(7, 2)) == 3
    assert native.mul(HALF, 4) == 2 and type(native.mul(HALF, 4)) is int


@pytest.mark.parametrize(
    "value, bound, expected",
    [
        (size(H), 1, True),  # floor(H/2 - 1/2) >= 0 because H >= 1
        (64 * size(H) * size(W), 64, True),
        (H, 1, True),
        (H + 3, 2, True),
        (size(H), size(H), True),
        (3, 5, False),
        (H - 5, 0, None),  # negative at H = 1, not at H = 5: no sound reasoning decides it
        (size(H) - 1, 1, None),
        (W, H, None),
        (H * W, H + W, None),
    ],
)
def test_comparisons(value, bound, expected):
    assert native.at_least(value, bound) is expected


@pytest.mark.parametrize(
    "value, bound",
    [
        (-H, 0),  # never: sympy says so (an error), not these values
        (native.floor_div(H, 2) - H, 1),
        (H - native.floor_div(H, 2), 0),  # always, but only a finer argument shows it
    ],
)
def test_comparisons_that_need_sympy_are_refused(value, bound):
    with pytest.raises(NotNative):
        native.at_least(value, bound)


def test_equalities():
    assert native.equal(size(H), size(H)) is True
    assert native.equal((H + 1) * (H + 1), H * H + 2 * H + 1) is True  # expanded alike
    assert native.equal(size(H) + 1, size(H)) is False
    assert native.equal(H, W) is None
    with pytest.raises(NotNative):
        native.equal(2 * H, 2 * W + 1)  # never equal: parity, which sympy may see


def test_assumptions_read_as_sympy_writes_them():
    from archcalc.language.printing import condition_text

    J, F = expr._sympy_symbol("J"), expr._sympy_symbol("F")
    for mine, theirs in [
        (native.condition_text(size(H) - 3, ">=", 1),
         condition_text(expr._symbolic_floor_div(expr._sympy_symbol("H") - 1, 2) - 2, ">=", 1)),
        (native.condition_text(Sym("J") - 2 * Sym("F"), ">=", 3), condition_text(J - 2 * F, ">=", 3)),
        (native.condition_text((H + 1) * (W - 2), ">=", 0),
         condition_text((expr._sympy_symbol("H") + 1) * (expr._sympy_symbol("W") - 2), ">=", 0)),
    ]:  # fmt: skip
        assert mine == theirs
    with pytest.raises(NotNative):  # sympy would multiply out inside the floor
        native.condition_text(native.floor((H + 1) * (W + 1) * Fraction(1, 2)), ">=", 1)


@pytest.mark.parametrize(
    "operation",
    [
        lambda: H % 2,
        lambda: 4 / H,
        lambda: H / W,
        lambda: H**HALF,
        lambda: H < 3,
        lambda: bool(H),
        lambda: H.free_symbols,  # sympy-only code must not run on these values
        lambda: native.floor_div(H, W),
        lambda: H + 1.5,
        lambda: expr.ceil_div(H, 2),
        lambda: expr.evaluate_text("max(H, 3)", {"H": H}),
        lambda: expr.evaluate_text("H % 4", {"H": H}),
        lambda: str(H + 1),
        lambda: f"{[H, H]}",  # a list in a message: sympy's reads [H, H] (found by fuzz.py)
    ],
)
def test_what_they_do_not_model_raises_not_native(operation):
    with expr.native_values(), pytest.raises(NotNative):
        operation()
    assert repr(H) == "Sym('H')"  # outside an analysis, for debugging


def test_private_names_are_plainly_absent():
    assert not hasattr(H, "_sympy_") and getattr(H, "__array__", None) is None


# ----------------------------------------------------------------------------- against sympy

OPS = "aasmmnfpqt"


@st.composite
def programs(draw):
    """A random sequence of the operations an analysis performs, on H, W, S and numbers."""
    steps = []
    for _ in range(draw(st.integers(1, 14))):
        steps.append(
            (draw(st.sampled_from(OPS)), draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6)),
             draw(st.sampled_from([1, 2, 3, 4, 7])), draw(st.sampled_from([0, 1, -1, -3, 5])),
             draw(st.lists(st.integers(0, 10**6), min_size=2, max_size=5)))
        )  # fmt: skip
    return steps


def _run(steps):
    """Each step on both kinds of values; yields (native, sympy) pairs."""
    pool = [(Sym(n), expr._sympy_symbol(n)) for n in "HWS"]
    pool += [(k, k) for k in (1, 2, 3, -1, 64, 147, -5)]
    for op, i, j, k, c, many in steps:
        (a, sa), (b, sb) = pool[i % len(pool)], pool[j % len(pool)]
        try:
            if op == "a":
                pair = native.add(a, b), sa + sb
            elif op == "s":
                pair = native.add(a, native.neg(b)), sa - sb
            elif op == "m":
                pair = native.mul(a, b), sa * sb
            elif op == "n":
                pair = native.neg(a), -sa
            elif op == "f":
                top, stop = native.add(a, c), sa + c
                if isinstance(top, int):
                    continue
                pair = native.floor_div(top, k), expr._symbolic_floor_div(stop, k)
            elif op == "p":
                pair = native.power(a, k % 4), sa ** (k % 4)
            elif op == "q":
                pair = native.mul(a, Fraction(1, k)), sp.sympify(sa) / k
            else:
                items = [pool[m % len(pool)] for m in many]
                pair = native.add(*(x for x, _ in items)), sp.Add(*(y for _, y in items))
        except NotNative:
            continue
        if len(native.text(pair[0]) if isinstance(pair[0], native.Expr) else "") > 400:
            return
        pool.append(pair)
        yield pair


def _plain(value):
    if isinstance(value, sp.Basic) and value.is_Rational:
        return int(value) if value.is_Integer else Fraction(int(value.p), int(value.q))
    return value


def _value_at(x, env):
    """A native value evaluated exactly at integer symbols."""
    if isinstance(x, (int, Fraction)):
        return x
    if type(x) is Sym:
        return env[x.name]
    if type(x) is native.Floor:
        v = Fraction(_value_at(x.arg, env))
        return v.numerator // v.denominator
    if type(x) is native.Add:
        return x.const + sum(c * _value_at(k, env) for k, c in x.terms)
    out = Fraction(x.coeff)
    for base, e in x.factors:
        out *= Fraction(_value_at(base, env)) ** e
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.integers(1, 40), st.integers(1, 40), st.integers(1, 40))
def test_random_programs_build_and_print_as_sympy(steps, h, w, s):
    env = {"H": h, "W": w, "S": s}
    symbols = {expr._sympy_symbol(n): v for n, v in env.items()}
    for mine, theirs in _run(steps):
        theirs = _plain(theirs)
        if isinstance(theirs, (int, Fraction)):
            assert mine == theirs and type(mine) is type(theirs)
            continue
        assert native.text(mine) == to_text(theirs)
        assert native.sort_key(mine) == sp.default_sort_key(theirs)
        assert native.from_sympy(theirs) == mine  # rebuilt from sympy's, the same value
        assert _value_at(mine, env) == theirs.subs(symbols)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.integers(-3, 3), st.integers(0, 5))
def test_short_names_and_common_factors_as_sympy_takes_them(steps, number, pick):
    # what a table does before printing: a floor replaced by a name minus a number (the
    # legend's h1 - 1), then each sum's common factor taken out of its product
    from archcalc.language.printing import _substitute, tidy

    name, sympy_name = Sym("n1"), expr._sympy_symbol("n1")
    for mine, theirs in _run(steps):
        theirs = _plain(theirs)
        if isinstance(theirs, (int, Fraction)):
            continue
        floors = sorted(theirs.atoms(sp.floor), key=sp.default_sort_key)
        if not floors:
            continue
        chosen = floors[pick % len(floors)]
        expected = tidy(_substitute(theirs, {chosen: sympy_name - number}))
        try:
            ours = native.substitute(mine, {native.from_sympy(chosen): name - number})
            ours = native.tidy(ours)
        except NotNative:  # a number times a sum that sympy keeps unevaluated
            continue
        assert native.text(ours) == to_text(expected)


# ----------------------------------------------------------------------------- whole analyses


def _variants(path: Path):
    """A shipped spec as declared, with its input sizes free, with one free side S, and with
    H and W declared at the spec's sizes (freed by symbolic=True)."""
    data = yaml.safe_load(path.read_text())
    data.pop("expect", None)
    yield "declared", data
    inp, symbols = data["input"], dict(data.get("symbols") or {})
    if len(inp) == 3 and not {"H", "W", "S"} & set(symbols):
        yield "sizes", {**data, "symbols": {**symbols, "H": None, "W": None},
                        "input": [inp[0], "H", "W"]}  # fmt: skip
        yield "square", {**data, "symbols": {**symbols, "S": None}, "input": [inp[0], "S", "S"]}
        if isinstance(inp[1], int) and isinstance(inp[2], int):  # as `import --symbolic H,W` writes
            yield "defaults", {**data, "symbols": {**symbols, "H": inp[1], "W": inp[2]},
                               "input": [inp[0], "H", "W"]}  # fmt: skip


def _printed_both(data):
    """What analyze prints of a symbolic analysis (its JSON, table and Markdown), with sympy
    and (None where refused) natively."""

    def run():
        try:
            net = analyze(copy.deepcopy(data), symbolic=True)
            return to_json(net) + table(net) + markdown(net)
        except ArchcalcError as err:
            return f"error: {err}"

    with_sympy = run()
    try:
        with expr.native_values():
            return with_sympy, run()
    except NotNative:
        return with_sympy, None


SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs/zoo").glob("*.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_shipped_spec_prints_the_same_or_is_refused(path):
    for label, data in _variants(path):
        with_sympy, mine = _printed_both(data)
        assert mine is None or mine == with_sympy, label


def test_the_fast_path_covers_the_usual_networks():
    # these stay native with H and W free (AlexNet and VGG with their assumptions, H >= 63 and
    # the like): if a change sends them back to sympy, the speed goal is silently lost
    names = ("resnet18", "resnet152", "mobilenet_v2", "efficientnet_b0", "resnext50_32x4d",
             "alexnet", "vgg16", "densenet121", "convnext_tiny", "inception_v3", "vit_b_16")  # fmt: skip
    for name in names:
        for label, data in _variants(ROOT / f"specs/zoo/{name}.yaml"):
            if name == "vit_b_16" and label != "defaults":
                continue  # its 197 positions equal the patches only where H, W are declared
            assert _printed_both(data)[1] is not None, (name, label)


def _sizes_free(data: dict) -> dict:
    """The stack with its fields at their values and only the input's height and width
    free: the shape of question the fast path is for (about 3 in 5 run natively)."""
    values = data["symbols"]
    layers = [{k: values.get(v, v) if isinstance(v, str) else v for k, v in layer.items()}
              for layer in data["layers"]]  # fmt: skip
    channels = values.get(data["input"][0], data["input"][0])
    return {**data, "symbols": {"H": None, "W": None}, "input": [channels, "H", "W"],
            "layers": layers}  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image_stack(), st.booleans())
def test_random_stacks_print_the_same_or_are_refused(data, sizes_only):
    # every field free (about 2 in 5 run natively: a free stride divides) or only the sizes
    with_sympy, mine = _printed_both(_sizes_free(data) if sizes_only else data)
    assert mine is None or mine == with_sympy


def test_both_paths_drop_an_assumption_that_always_holds():
    # a transposed convolution's window 2*(v1 - 1) + 1 against 3*(v0 - 1) + 2*(v1 - 1) + 1:
    # sympy could not tell 3*v0 + 2*v1 >= 5 for positive v0, v1; the terms' signs do
    data = {"name": "t", "symbols": {"v0": 2, "v1": 3}, "input": [2, "v0", 23], "layers": [
        {"type": "conv_transpose2d", "out_channels": 2, "kernel_size": "v1", "stride": 3,
         "dilation": 2, "bias": False},
        {"type": "maxpool2d", "kernel_size": 2}]}  # fmt: skip
    with_sympy, mine = _printed_both(data)
    assert mine == with_sympy
    symbolic = analyze(data, symbolic=True)
    conditions = [a["condition"] for a in json.loads(to_json(symbolic))["assumptions"]]
    assert conditions == ["3*v0 + 2*v1 >= 6"]  # the pool's window: v0 = v1 = 1 fails it


def test_conditions_that_hold_for_every_size_are_summarised_not_a_crash():
    # found by the property above in CI: a ceil-mode pool's conditions hold at 0 as well, so
    # none is "the tightest"; the table said nothing and raised StopIteration
    data = {"name": "t", "symbols": {"H": None, "W": None}, "input": [1, "H", "W"], "layers": [
        {"type": "maxpool2d", "kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"type": "maxpool2d", "kernel_size": 1}]}  # fmt: skip
    printed = table(analyze(data, symbolic=True))
    assert "assumes: H >= 1, which every size meets (2 conditions, e.g. at layers[0]: " in printed
    with_sympy, mine = _printed_both(data)
    assert mine is None or mine == with_sympy


def test_analyze_does_not_import_sympy_and_prints_what_sympy_would(tmp_path):
    data = next(d for label, d in _variants(ROOT / "specs/zoo/resnet50.yaml") if label == "sizes")
    spec = tmp_path / "resnet50_hw.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    script = (
        "import sys, io, contextlib\n"
        "from archcalc.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    code = main(['analyze', {str(spec)!r}, '--json'])\n"
        f"    code += main(['analyze', {str(spec)!r}])\n"
        "assert code == 0, code\n"
        "print('sympy' in sys.modules)\n"
        "print(out.getvalue())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    imported, text = done.stdout.split("\n", 1)
    assert imported == "False"
    shown = to_json(analyze(data))
    assert json.loads(text[: len(shown)]) == json.loads(shown)
    assert text[len(shown) :].startswith(table(analyze(data)))  # then the table, as sympy's


def test_a_spec_outside_the_subset_is_answered_by_sympy(capsys):
    from archcalc.cli import main

    # a DCGAN generator's transposed convolutions: sympy's answer, the same as always
    assert (
        main(["analyze", str(ROOT / "specs/zoo/dcgan_generator.yaml"), "--json", "--symbolic"]) == 0
    )
    shown = json.loads(capsys.readouterr().out)
    assert shown == json.loads(
        to_json(analyze(ROOT / "specs/zoo/dcgan_generator.yaml", symbolic=True))
    )
