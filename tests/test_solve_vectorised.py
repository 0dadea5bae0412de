"""archcalc solve, vectorised: the symbolic formulas over numpy arrays give exactly what the
per-candidate search gives, say so in the method, and fall back where they cannot be exact."""

from __future__ import annotations

import subprocess
import sys
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archcalc import ArchcalcError, analyze
from archcalc.questions import compiled, vectorised
from archcalc.questions.solve import solve
from tests.conftest import ROOT, SPECS

CONV1 = ["conv1.output == [96, 55, 55]", "conv1.uncovered == 0"]


def slow(spec, unknowns, where, ranges, **values):
    """The same question by the per-candidate search (the vectorised path switched off)."""
    with (mock.patch.object(vectorised, "search", side_effect=vectorised.Unsupported("off")),
          mock.patch("archcalc.questions.solve._closed_form", return_value=None)):  # fmt: skip
        result = solve(spec, unknowns, where, ranges, **values)
    assert (
        result.method.startswith("bounded integer search")
        and "(not vectorised: " in result.method  # off, or refused earlier
    )
    return result


def both(spec, unknowns, where, ranges, **values):
    fast = solve(spec, unknowns, where, ranges, **values)
    return fast, slow(spec, unknowns, where, ranges, **values)


def conv(**fields) -> dict:
    return {"type": "conv2d", "out_channels": 4, "kernel_size": 3, **fields}


def spec(symbols: list[str], input_: list, layers: list) -> dict:
    return {"name": "t", "symbols": {s: None for s in symbols}, "input": input_, "layers": layers}


POOL_CEIL = spec(["J", "P"], [2, "J", "J"],
                 [{"type": "maxpool2d", "kernel_size": 3, "stride": 2, "padding": "P",
                   "ceil_mode": True}])  # fmt: skip
GROUPS = spec(["C", "i"], ["C", 9, 9], [conv(out_channels="i", groups=3)])
STRIDED = spec(["J", "s"], [3, "J", "J"], [conv(kernel_size=5, stride="s", padding=1),
                                           {"type": "avgpool2d", "kernel_size": 2}])  # fmt: skip
#: squeeze-and-excitation: a gate [4, 1, 1] multiplied into the features [4, h, w]
GATE = spec(["J", "s"], [3, "J", "J"], [
    conv(stride="s", padding=1, name="features"),
    {"type": "adaptive_avgpool2d", "output_size": 1},
    {"type": "conv2d", "out_channels": 4, "kernel_size": 1},
    {"type": "sigmoid", "name": "gate"},
    {"type": "mul", "inputs": ["gate", "features"]},
])  # fmt: skip
#: patches to tokens, attention over them, a mean over the tokens (ViT's shape operations)
TOKENS = spec(["J", "s"], [3, "J", "J"], [
    conv(kernel_size="s", stride="s"),
    {"type": "flatten", "start_dim": 1},
    {"type": "transpose", "dim0": 0, "dim1": 1},
    {"type": "multihead_attention", "num_heads": 2},
    {"type": "unsqueeze", "dim": 0},
    {"type": "mean", "dims": [1]},
])  # fmt: skip
#: ShuffleNet's and ConvNeXt's: a channel shuffle, channels last and back, a narrow
SHUFFLE = spec(["J", "c"], [3, "J", "J"], [
    conv(out_channels="c", padding=1),
    {"type": "channel_shuffle", "groups": 2},
    {"type": "permute", "dims": [1, 2, 0]},
    {"type": "layernorm", "normalized_shape": "c"},
    {"type": "permute", "dims": [2, 0, 1]},
    {"type": "narrow", "dim": 1, "start": 1, "length": 3},
])  # fmt: skip
#: U-Net's cropped skip: the encoder's map cropped to the upsampled one, then concatenated
CROP = spec(["J"], [1, "J", "J"], [
    conv(name="skip"),
    {"type": "maxpool2d", "kernel_size": 2},
    conv(),
    {"type": "conv_transpose2d", "out_channels": 4, "kernel_size": 2, "stride": 2, "name": "up"},
    {"type": "center_crop", "input": "skip", "like": "up", "name": "crop"},
    {"type": "concat", "inputs": ["crop", "up"]},
])  # fmt: skip
#: a bias [3, 5, 1] added to [3, J, K]: J = 5 as the formulas assume, or J = 1 broadcast
BROADCAST = spec(["J", "K"], [3, "J", "K"], [
    {"name": "bias", "type": "parameter", "shape": [3, 5, 1]},
    {"type": "add", "inputs": ["input", "bias"]},
    conv(),
])  # fmt: skip
CASES = {
    "conv1 J": (SPECS / "solve_conv1.yaml", ["J"], CONV1, {"J": (150, 300)}, {"P": 0}),
    "conv1 P, none": (SPECS / "solve_conv1.yaml", ["P"], CONV1, {"P": (0, 10)}, {"J": 224}),
    "conv1 P, loose": (SPECS / "solve_conv1.yaml", ["P"], CONV1[:1], {"P": (0, 10)}, {"J": 224}),
    "quiz conv P": (
        SPECS / "quiz_conv.yaml",
        ["P"],
        ["layers[0].output == [16, 32, 32]"],
        {"P": (0, 20)},
        dict(J=32, K=32, L=3, i=16, M=3, N=3, s=1),
    ),  # fmt: skip
    "quiz conv J, s": (
        SPECS / "quiz_conv.yaml",
        ["J", "s"],
        ["layers[0].output[1] == 8", "macs <= 200000"],
        {"J": (1, 40), "s": (1, 6)},
        dict(K=32, L=3, i=16, M=3, N=3, P=1),
    ),  # fmt: skip
    "quiz pool": (
        SPECS / "quiz_pool.yaml",
        ["J", "K"],
        ["output == [8, 4, 5]"],
        {"J": (1, 20), "K": (1, 20)},
        dict(C=8, F=2, s=2),
    ),  # fmt: skip
    "quiz pool, none": (
        SPECS / "quiz_pool.yaml",
        ["J", "K"],
        ["output == [8, 4, 5]", "output[2] < 5"],
        {"J": (0, 20), "K": (1, 20)},
        dict(C=8, F=2, s=2),
    ),  # fmt: skip
    "ceil pool": (POOL_CEIL, ["J", "P"], ["output[1] == 6"], {"J": (1, 20), "P": (0, 3)}, {}),
    "groups": (
        GROUPS,
        ["C", "i"],
        ["params <= 400", "layers[0].output[0] >= 6"],
        {"C": (1, 24), "i": (1, 24)},
        {},
    ),  # fmt: skip
    "gate": (
        GATE,
        ["J", "s"],
        ["output[1] == 2", "macs <= 2000"],
        {"J": (1, 30), "s": (1, 5)},
        {},
    ),  # fmt: skip
    "tokens": (
        TOKENS,
        ["J", "s"],
        ["macs <= 5000", "output[0] == 1"],
        {"J": (1, 24), "s": (1, 6)},
        {},
    ),  # fmt: skip
    "shuffle": (SHUFFLE, ["J", "c"], ["neurons <= 300"], {"J": (1, 12), "c": (1, 12)}, {}),
    "crop": (CROP, ["J"], ["output[1] >= 4"], {"J": (1, 40)}, {}),
    "broadcast": (
        BROADCAST,
        ["J", "K"],
        ["output[1] == 3", "neurons <= 200"],
        {"J": (1, 8), "K": (1, 9)},
        {},
    ),  # fmt: skip
    "stride": (
        STRIDED,
        ["J", "s"],
        ["layers[1].output[2] == 3", "neurons > 50"],
        {"J": (1, 30), "s": (1, 5)},
        {},
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", CASES)
def test_vectorised_equals_the_per_candidate_search(name):
    spec_, unknowns, where, ranges, values = CASES[name]
    fast, exact = both(spec_, unknowns, where, ranges, **values)
    assert fast.method.startswith("vectorised over ")
    assert "(numpy, from the symbolic formulas;" in fast.method
    assert fast.solutions == exact.solutions
    assert fast.why == exact.why


def test_the_cases_are_not_trivial():
    """Each kind of rejection happens somewhere: solutions, invalid networks, no solution."""
    counts = {}
    for name, (spec_, unknowns, where, ranges, values) in CASES.items():
        counts[name] = len(solve(spec_, unknowns, where, ranges, **values).solutions)
    assert counts["conv1 J"] == 1 and counts["conv1 P, none"] == 0 and counts["quiz pool"] == 4
    assert counts["ceil pool"] > 0 and counts["groups"] > 0 and counts["stride"] > 0
    assert counts["gate"] > 0 and counts["tokens"] > 0 and counts["shuffle"] > 0
    assert 0 < counts["crop"] < 40
    # J = 5 as assumed, and J = 1, which PyTorch broadcasts to 5
    broadcast = solve(BROADCAST, ["J", "K"], ["output[1] == 3"], {"J": (1, 8), "K": (1, 9)})
    assert {s["J"] for s in broadcast.solutions} == {1, 5}
    # an odd channel count cannot be shuffled in 2 groups; the narrow needs 4 rows
    shuffle = solve(SHUFFLE, ["J", "c"], ["neurons <= 300"], {"J": (1, 12), "c": (1, 12)})
    assert all(s["c"] % 2 == 0 and s["J"] >= 4 for s in shuffle.solutions)
    # the groups divide both channel counts: C and i multiples of 3 only
    groups = solve(GROUPS, ["C", "i"], ["params <= 400"], {"C": (1, 24), "i": (1, 24)})
    assert groups.solutions and all(s["C"] % 3 == 0 and s["i"] % 3 == 0 for s in groups.solutions)
    # a pool's padding is at most half its kernel: P = 2 and 3 are refused for kernel 3
    pool = solve(POOL_CEIL, ["J", "P"], ["output[1] >= 1"], {"J": (1, 20), "P": (0, 3)})
    assert {s["P"] for s in pool.solutions} == {0, 1}


def test_the_method_says_what_was_done():
    result = solve(SPECS / "quiz_conv.yaml", ["P"], ["layers[0].output == [16, 32, 32]"],
                   {"P": (0, 20)}, J=32, K=32, L=3, i=16, M=3, N=3, s=1)  # fmt: skip
    assert result.solutions == [{"P": 1}]
    assert result.method == ("vectorised over P in 0..20, 21 candidates (numpy, from the symbolic "
                             "formulas; 1 with a value below 1 decided and 3 checked by the exact "
                             "analysis)")  # fmt: skip
    result = solve(BROADCAST, ["J", "K"], ["neurons <= 200"], {"J": (0, 8), "K": (1, 9)})
    assert result.method.endswith("candidates (numpy, from the symbolic formulas; 9 with a value "
                                  "below 1 and 9 where a size of 1 may broadcast decided and 3 "
                                  "checked by the exact analysis)")  # fmt: skip


def test_candidates_set_aside_count_against_the_exact_limit():
    refs = [(analyze(BROADCAST, symbolic=True).totals["neurons"], "<=", 200)]
    with pytest.raises(vectorised.Unsupported, match="over 5 candidates where broadcasting"):
        vectorised.search(analyze(BROADCAST, symbolic=True), refs, ["J", "K"],
                          {"J": (1, 8), "K": (1, 9)}, lambda a: None, exact_limit=5)  # fmt: skip


# ----------------------------------------------------------------------------- a property


@st.composite
def questions(draw):
    """A small conv/pool/linear stack with one or two of J (input size), k (kernel), s
    (stride), p (padding), c (out_channels) free, random ranges and random constraints."""
    free = draw(st.lists(st.sampled_from("Jkspc"), min_size=1, max_size=2, unique=True))

    def field(name: str, fixed):
        return name if name in free and draw(st.booleans()) else fixed

    layers = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["conv", "pool", "pool"]))
        k = field("k", draw(st.integers(1, 3)))
        if kind == "conv":
            layers.append(conv(out_channels=field("c", draw(st.integers(1, 4))), kernel_size=k,
                               stride=field("s", draw(st.integers(1, 3))),
                               padding=field("p", draw(st.integers(0, 2)))))  # fmt: skip
        else:
            layers.append({"type": draw(st.sampled_from(["maxpool2d", "avgpool2d"])),
                           "kernel_size": k, "stride": field("s", draw(st.integers(1, 3))),
                           "padding": field("p", 0), "ceil_mode": draw(st.booleans())})  # fmt: skip
    if draw(st.booleans()):  # a squeeze-and-excitation gate, [C, 1, 1] into [C, h, w]
        layers[-1] = {**layers[-1], "name": "x"}
        layers += [{"type": "adaptive_avgpool2d", "output_size": 1},
                   {"type": "sigmoid", "name": "g"},
                   {"type": draw(st.sampled_from(["mul", "add"])),
                    "inputs": draw(st.permutations(["g", "x"]))}]  # fmt: skip
    if draw(st.booleans()):  # a bias [1, m, 1]: the height m as assumed, or 1 and broadcast
        layers[-1] = {**layers[-1], "name": "y"}
        layers += [{"type": "parameter", "shape": [1, draw(st.integers(1, 4)), 1], "name": "b"},
                   {"type": "add", "inputs": draw(st.permutations(["y", "b"]))}]  # fmt: skip
    if draw(st.booleans()):
        layers += [{"type": "flatten"}, {"type": "linear", "out_features": field("c", 3)}]
    size = "J" if "J" in free else draw(st.integers(4, 12))
    data = {"name": "q", "input": [2, size, size], "layers": layers}
    used = [n for n in free if _mentions(data, n)]
    if not used:
        data["input"] = [2, "J", "J"]
        used = ["J"]
    data["symbols"] = {n: None for n in used}
    ranges = {n: (draw(st.integers(0, 3)), draw(st.integers(4, 14 if n == "J" else 5)))
              for n in used}  # fmt: skip
    where = []
    for _ in range(draw(st.integers(1, 2))):
        ref = draw(st.sampled_from(["macs", "params", "neurons", "output[1]", "layers[0].params",
                                    "layers[0].output[2]", "output[0]"]))  # fmt: skip
        op = draw(st.sampled_from(["<=", ">", "==", "!=", ">="]))
        where.append(f"{ref} {op} {draw(st.integers(0, 300 if 'output' not in ref else 6))}")
    return data, used, where, ranges


def _mentions(value, name: str) -> bool:
    if isinstance(value, dict):
        return any(_mentions(v, name) for k, v in value.items() if k != "name")
    if isinstance(value, list):
        return any(_mentions(v, name) for v in value)
    return value == name


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(questions())
def test_vectorised_equals_the_search_on_random_stacks(question):
    data, unknowns, where, ranges = question
    # polynomial questions in one symbol would go to solveset: compare the two searches
    with mock.patch("archcalc.questions.solve._closed_form", return_value=None):
        try:
            fast = solve(data, unknowns, where, ranges)
        except ArchcalcError as err:  # a question the search refuses too, with the same words
            with pytest.raises(ArchcalcError) as caught:
                slow(data, unknowns, where, ranges)
            assert str(caught.value) == str(err)
            return
    exact = slow(data, unknowns, where, ranges)
    if not fast.method.startswith("vectorised over "):
        # only a reference the spec cannot answer (output[1] of a flat output) falls back
        assert "the output has" in fast.method, fast.method
    assert fast.solutions == exact.solutions
    assert fast.why == exact.why


# ----------------------------------------------------------------------------- falling back


def test_a_disagreement_in_the_sample_falls_back_to_the_search():
    real = vectorised._constraint

    def wrong(compiler, lhs, op, rhs):  # every verdict of the arrays inverted
        return compiler.logical("not", [real(compiler, lhs, op, rhs)])

    with mock.patch.object(vectorised, "_constraint", wrong):
        result = solve(SPECS / "solve_conv1.yaml", ["J"], CONV1, {"J": (150, 300)}, P=0)
    assert result.solutions == [{"J": 227}]
    assert result.method.startswith("bounded integer search over J in 150..300 (not vectorised: "
                                    "the exact analysis disagrees at J=")  # fmt: skip


def test_one_wrong_candidate_at_an_edge_is_caught():
    """The sample holds the first of each verdict, then the last: a wrong first non-solution
    is seen by the default 3 re-checks, a wrong last solution by 6."""
    real = vectorised._run_block

    def claim(pick):
        def run(block, unknowns, dtype, valid, holds, outcome, sample):
            real(block, unknowns, dtype, valid, holds, outcome, sample)
            c, verdict = pick(outcome, sample)
            sample.verdicts[c] = verdict

        return run

    def last_solution_fails(outcome, sample):
        return tuple(outcome.solutions[-1].values()), [False]

    def first_other_holds(outcome, sample):
        return sample.firsts["other"], [True]

    question = (SPECS / "quiz_pool.yaml", ["J", "K"], ["output == [8, 4, 5]"],
                {"J": (1, 20), "K": (1, 20)})  # fmt: skip
    with mock.patch.object(vectorised, "_run_block", claim(first_other_holds)):
        result = solve(*question, C=8, F=2, s=2)
    assert "not vectorised: the exact analysis disagrees at J=2 K=2" in result.method
    with mock.patch.object(vectorised, "_run_block", claim(last_solution_fails)):
        unchecked = solve(*question, C=8, F=2, s=2)
        result = solve(*question, checks=6, C=8, F=2, s=2)
    assert unchecked.method.endswith("3 checked by the exact analysis)")  # not among the 3
    assert "not vectorised: the exact analysis disagrees at J=9 K=11" in result.method


def test_the_number_of_re_checks_is_chosen():
    question = (SPECS / "quiz_pool.yaml", ["J", "K"], ["output == [8, 4, 5]"],
                {"J": (1, 20), "K": (1, 20)})  # fmt: skip
    calls = []
    for checks in (0, 1, 6, None):
        with mock.patch.object(vectorised, "_recheck", wraps=vectorised._recheck) as recheck:
            result = solve(*question, checks=checks, C=8, F=2, s=2)
        sample = recheck.call_args.args[0]
        calls.append((len(sample.items()), result.method.rsplit("; ", 1)[1]))
        assert result.solutions == [{"J": 8, "K": 10}, {"J": 8, "K": 11}, {"J": 9, "K": 10},
                                    {"J": 9, "K": 11}]  # fmt: skip
    assert calls == [(0, "0 checked by the exact analysis)"),
                     (1, "1 checked by the exact analysis)"),
                     (6, "6 checked by the exact analysis)"),
                     (3, "3 checked by the exact analysis)")]  # fmt: skip


def exact_answer(data, where_params, ranges):
    """Brute force by hand: every (J, K) whose network is valid with params >= 300."""
    found = []
    for j in range(ranges["J"][0], ranges["J"][1] + 1):
        for k in range(ranges["K"][0], ranges["K"][1] + 1):
            try:
                params = analyze(data, J=j, K=k).totals["params"]
            except ArchcalcError:
                continue
            if where_params(params):
                found.append({"J": j, "K": k})
    return found


def test_an_unsupported_formula_falls_back():
    # 64/J channels: exact division by a symbol (1/J outside a floor) is not vectorised
    data = spec(["J", "K"], [3, 16, 16], [conv(out_channels="64 / J", kernel_size="K")])
    ranges = {"J": (1, 40), "K": (1, 3)}
    result = solve(data, ["J", "K"], ["params >= 300"], ranges)
    assert "(not vectorised: a power the evaluator does not take exactly" in result.method
    want = exact_answer(data, lambda params: params >= 300, ranges)
    assert result.solutions == want and {s["J"] for s in want} <= {1, 2, 4, 8}


def test_an_unchecked_layer_type_falls_back():
    data = spec(["J", "K"], [3, 8, 8], [{"type": "upsample", "scale_factor": "J"},
                                        conv(kernel_size="K")])  # fmt: skip
    ranges = {"J": (1, 6), "K": (1, 4)}
    result = solve(data, ["J", "K"], ["params >= 100"], ranges)
    assert "(not vectorised: layers[0]: a upsample layer with a free symbol in it)" in result.method
    assert result.solutions == exact_answer(data, lambda params: params >= 100, ranges)
    assert result.solutions


def test_limits_name_the_method_that_ran():
    data = spec(["J", "K"], [3, 16, 16], [conv(out_channels="64 / J", kernel_size="K")])
    with pytest.raises(ArchcalcError, match=r"would try 160,000 candidates \(at most 100,000\) "
                       r"\(not vectorised: a power"):  # fmt: skip
        solve(data, ["J", "K"], ["params >= 300"], {"J": (1, 400), "K": (1, 400)})
    with pytest.raises(
        ArchcalcError, match=r"would try 16,000,000 candidates \(at most 10,000,000\)"
    ):
        solve(SPECS / "quiz_pool.yaml", ["J", "K"], ["output == [8, 4, 5]"],
              {"J": (1, 4000), "K": (1, 4000)}, C=8, F=2, s=2)  # fmt: skip


# ----------------------------------------------------------------------------- exactness


def test_the_evaluator_is_exact_on_rounding_and_large_values():
    import numpy as np
    import sympy

    from archcalc.language.expr import symbol

    H, W = symbol("H"), symbol("W")
    formulas = [
        sympy.floor(H / 2 - sympy.Rational(1, 2)) + 1,  # floor((H - 1)/2) + 1
        sympy.ceiling(H / 3 - W / 7) * W,
        sympy.Mod(3 * H + W, 5),
        sympy.Max(H - W, sympy.floor(W / 4)) - sympy.Min(H, 7),
        sympy.Piecewise((1, sympy.Ge(2 * H, W + 3)), (0, True)) + H**2,
        sympy.floor((H * W - 1) / 6) / 2,  # a half: kept as a fraction, not rounded
        # products sharing a factor in W are summed before it multiplies in (one with a
        # fraction, one whose other factor is a number, one with no shared factor)
        3 * (H + 1) * sympy.floor(W / 2)
        + 5 * sympy.floor(H / 3) * sympy.floor(W / 2)
        + H * sympy.floor(W / 2) / 2
        + 7 * sympy.floor(W / 2)
        + (H - 1) * W
        + 2,
    ]
    bounds = {"H": (1, 40), "W": (1, 40)}
    compiler = compiled.Compiler(["H", "W"], bounds)
    nodes = [compiler.value(f) for f in formulas]
    env = {"H": np.arange(1, 41).reshape(40, 1), "W": np.arange(1, 41).reshape(1, 40)}
    evaluate = compiled.Evaluator(env)
    for formula, node in zip(formulas, nodes):
        values = np.broadcast_to(evaluate(node), (40, 40))
        for h, w in [(1, 1), (2, 7), (7, 2), (13, 40), (40, 13), (39, 39), (5, 6)]:
            want = formula.subs({H: h, W: w})
            assert sympy.Rational(int(values[h - 1, w - 1]), node.den) == want, (formula, h, w)
    # beyond int64: Python integers, still exact
    big = H**5 * 10**15 + 1
    compiler = compiled.Compiler(["H"], {"H": (1, 10**6)})
    node = compiler.value(big)
    assert compiler.peak >= 1 << 62
    values = compiled.Evaluator({"H": np.array([10**6], dtype=object)})(node)
    assert int(values[0]) == 10**45 + 1


def test_products_beyond_int64_are_compared_exactly():
    data = spec(["J"], ["J"], [{"type": "linear", "out_features": 10**15},
                               {"type": "linear", "out_features": 10**15}])  # fmt: skip
    where = ["macs > 1000", "layers[0].weights_per_neuron <= 8"]  # macs ~ 10**30: past int64
    real, dtypes = vectorised._run_block, []

    def spy(block, unknowns, dtype, *rest):
        dtypes.append(dtype)
        return real(block, unknowns, dtype, *rest)

    with (mock.patch.object(vectorised, "_run_block", spy),
          mock.patch("archcalc.questions.solve._closed_form", return_value=None)):  # fmt: skip
        fast = solve(data, ["J"], where, {"J": (1, 12)})
    exact = slow(data, ["J"], where, {"J": (1, 12)})
    assert dtypes == ["object"] and fast.method.startswith("vectorised")
    assert fast.solutions == exact.solutions == [{"J": j} for j in range(1, 8)]


def test_an_unreadable_assumption_falls_back():
    with pytest.raises(vectorised.Unsupported, match="cannot read the assumption"):
        vectorised._assumption(compiled.Compiler(["J"], {"J": (1, 5)}), "J is even")


# ----------------------------------------------------------------------------- ResNet-50


def resnet50_hw() -> dict:
    data = yaml.safe_load((SPECS / "zoo" / "resnet50.yaml").read_text())
    assert data["input"] == [3, 224, 224]  # the spec is numeric: make H and W free
    data["input"], data["symbols"] = [3, "H", "W"], {"H": None, "W": None}
    data.pop("expect", None)
    return data


def test_resnet50_input_sizes_under_the_macs_at_224():
    data = resnet50_hw()
    macs = analyze(data, H=50, W=50).totals["macs"]
    where = [f"macs <= {macs}", "layers[0].output[1] != 25"]  # conv1 gives 25 at 49 and 50
    ranges = {"H": (40, 60), "W": (40, 60)}
    fast, exact = both(data, ["H", "W"], where, ranges)
    assert fast.method.startswith("vectorised over H in 40..60, W in 40..60, 441 candidates")
    assert fast.solutions == exact.solutions
    assert 0 < len(fast.solutions) < 441


def test_vit_input_sizes_vectorise_where_the_position_embedding_fits():
    """197 tokens (196 patches and the class token) at 224..239: ViT-B/16's position
    embedding [197, 768] added to [H//16 * W//16 + 1, 768] is assumed to fit, checked."""
    data = yaml.safe_load((SPECS / "zoo" / "vit_b_16.yaml").read_text())
    data["input"], data["symbols"] = [3, "H", "W"], {"H": None, "W": None}
    data.pop("expect")
    ranges = {"H": (220, 242), "W": (236, 241)}
    fast, exact = both(data, ["H", "W"], ["params >= 0"], ranges)
    assert fast.method.startswith("vectorised over H in 220..242, W in 236..241")
    assert fast.solutions == exact.solutions
    assert {(s["H"], s["W"]) for s in fast.solutions} == {
        (h, w) for h in range(224, 240) for w in range(236, 240)
    }


def test_solving_does_not_import_numpy_before_it_is_needed():
    code = ("import sys; from archcalc import analyze; analyze('specs/lenet5.yaml'); "
            "print('numpy' in sys.modules, 'sympy' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    assert out.split() == ["False", "False"]


def test_where_sympy_gives_up_the_search_answers():
    """Found by the property above: three ceil_mode pools with J and p free can make sympy
    raise PrecisionExhausted deciding the last window (whether it does depends on what sympy
    has cached, so it is forced here). The symbolic analysis says so in one line, and solve
    asks the numeric analysis candidate by candidate instead."""
    from sympy.core.evalf import PrecisionExhausted

    from archcalc.layers import formulas

    data = {"name": "q", "input": [2, "J", "J"], "symbols": {"J": None, "p": None}, "layers": [
        {"type": "maxpool2d", "kernel_size": 3, "stride": 3, "ceil_mode": True},
        {"type": "maxpool2d", "kernel_size": 1, "stride": 2, "padding": "p", "ceil_mode": True},
        {"type": "maxpool2d", "kernel_size": 1, "stride": 3, "ceil_mode": True}]}  # fmt: skip
    real = formulas.pool_output_size

    def gives_up(n, *args, **kwargs):
        if not isinstance(n, int):
            raise PrecisionExhausted
        return real(n, *args, **kwargs)

    question = (data, ["J", "p"], ["macs <= 0"], {"J": (0, 4), "p": (0, 4)})
    with mock.patch.object(formulas, "pool_output_size", gives_up):
        with pytest.raises(ArchcalcError, match=r"^layers\[0\]: sympy could not work out this "
                           r"maxpool2d's output size .*\(PrecisionExhausted\)"):  # fmt: skip
            analyze(data, symbolic=True)
        found = solve(*question)
    assert found.method.startswith("bounded integer search") and "sympy could not" in found.method
    expected = []
    for j in range(5):
        for p in range(5):
            try:
                macs = analyze(data, J=j, p=p).totals["macs"]
            except ArchcalcError:
                continue  # an invalid network is not a solution
            if macs <= 0:
                expected.append({"J": j, "p": p})
    assert found.solutions == expected and expected


def test_solutions_are_read_lazily_but_behave_as_a_list():
    """The vectorised search keeps its solutions as integer arrays; reading them gives the
    same dicts, in the same order, as a list would (indexing, slices, iteration, JSON)."""
    import json

    import numpy as np

    from archcalc.questions.vectorised import Assignments

    found = Assignments(["H", "W"])
    found.add(np.array([[1, 2], [1, 3]]))
    found.add(np.array([[2, 2]]))
    want = [{"H": 1, "W": 2}, {"H": 1, "W": 3}, {"H": 2, "W": 2}]
    assert found == want and list(found) == want and len(found) == 3
    assert found[-1] == want[-1] and found[1:] == want[1:] and found[::2] == want[::2]
    assert found != want[:2] and found != [*want[:2], {"H": 2, "W": 3}]
    assert all(type(v) is int for s in found for v in s.values())
    with pytest.raises(IndexError):
        found[3]
    found.merged([{"H": 0, "W": 5}])  # decided one by one (a value below 1): sorted in
    assert found == [{"H": 0, "W": 5}, *want]
    from archcalc.questions.solve import Solution

    data = dict(symbols=["H", "W"], ranges={}, method="m", solutions=found)
    assert json.loads(json.dumps(Solution(**data).to_dict()))["solutions"][0] == {"H": 0, "W": 5}


def test_nested_ceil_mode_pools_with_a_free_stride_are_answered():
    """The pools' sizes are nested Piecewise formulas of s; comparing them with the [1, 4, 1]
    bias in sympy's simplify took 26 s (a property-test example). Left as an assumption, the
    question is answered, and as the per-candidate search answers it."""
    pool = {"type": "maxpool2d", "stride": "s", "padding": 0}
    data = {"name": "q", "input": [2, 9, 9], "symbols": {"s": None}, "layers": [
        {**pool, "kernel_size": 3, "ceil_mode": True},
        {**pool, "kernel_size": 2, "ceil_mode": False},
        {**pool, "type": "avgpool2d", "kernel_size": 1, "ceil_mode": True, "name": "y"},
        {"type": "parameter", "shape": [1, 4, 1], "name": "b"},
        {"type": "add", "inputs": ["b", "y"]}]}  # fmt: skip
    question = (data, ["s"], ["layers[0].params <= 265"], {"s": (0, 4)})
    assert solve(*question).solutions == slow(*question).solutions == [{"s": 2}, {"s": 3}, {"s": 4}]
