"""archcalc solve: inverse questions, closed forms and bounded searches, and why none fits."""

from __future__ import annotations

import json

import pytest

from archcalc import ArchcalcError
from archcalc.cli import main
from archcalc.questions.solve import parse_constraint, solve
from tests.conftest import ROOT, SPECS

CONV1 = ["conv1.output == [96, 55, 55]", "conv1.uncovered == 0"]


def test_alexnet_input_size_for_55_by_55_with_nothing_unused():
    result = solve(SPECS / "solve_conv1.yaml", ["J"], CONV1, {"J": (150, 300)}, P=0)
    assert result.solutions == [{"J": 227}]
    assert result.method == (
        "vectorised over J in 150..300, 151 candidates (numpy, from the "
        "symbolic formulas; 3 checked by the exact analysis)"
    )


def test_no_integer_padding_works_at_224_and_says_why():
    result = solve(SPECS / "solve_conv1.yaml", ["P"], CONV1, {"P": (0, 10)}, J=224)
    assert result.solutions == []
    assert result.why == "with exact division the constraints need P = 3/2, which is not an integer"
    # without the "nothing unused" condition, P = 2 and 3 both give 55 (with rows left over)
    loose = solve(SPECS / "solve_conv1.yaml", ["P"], CONV1[:1], {"P": (0, 10)}, J=224)
    assert loose.solutions == [{"P": 2}, {"P": 3}]


TWO_CONVS_K = {
    "name": "q",
    "input": [2, 5, 5],
    "symbols": {"k": None},
    "layers": [
        {"type": "conv2d", "out_channels": 1, "kernel_size": "k", "stride": 3, "padding": 2},
        {"type": "conv2d", "out_channels": 1, "kernel_size": "k", "stride": 2, "padding": 2},
    ],
}


def test_a_high_degree_constraint_is_searched_not_solved_in_radicals():
    """macs is a quartic in k here: sympy's solveset took minutes to write its roots (the
    fuzzer's hang), so the closed form and the 'need k = ...' explanation take degree <= 2."""
    result = solve(TWO_CONVS_K, ["k"], ["macs == 151"], {"k": (2, 5)})
    assert result.solutions == [] and result.method.startswith("vectorised over k in 2..5")
    assert (
        result.why == "no candidate satisfies all constraints at once: 'macs == 151' holds "
        "for no candidate"
    )
    # a quadratic is still solved in closed form: (8 - k)^2 = 10
    quadratic = {**TWO_CONVS_K, "layers": [{"type": "conv2d", "out_channels": 1,
                                            "kernel_size": "k", "padding": 1}]}  # fmt: skip
    result = solve(quadratic, ["k"], ["neurons == 10"], {"k": (1, 7)})
    assert result.solutions == []
    assert result.method.startswith("closed form (sympy solveset)")
    assert result.why == "the constraints allow k in {8 - sqrt(10)}, which holds no integer in 1..7"


def test_same_padding_for_a_3x3_stride_1_conv():
    values = dict(J=32, K=32, L=3, i=16, M=3, N=3, s=1)
    result = solve(
        SPECS / "quiz_conv.yaml",
        ["P"],
        ["layers[0].output == [16, 32, 32]"],
        {"P": (0, 20)},
        **values,
    )
    assert result.solutions == [{"P": 1}]


def test_largest_mlp_width_under_a_million_parameters_in_closed_form():
    result = solve(SPECS / "mlp4.yaml", ["width"], ["params < 1000000"], {"width": (1, 100000)})
    assert result.method == (
        "closed form (sympy solveset), each solution confirmed by the exact analysis"
    )
    widths = [s["width"] for s in result.solutions]
    assert widths == list(range(1, 536))  # 2·535² + 797·535 + 10 = 999,855; 536 gives 1,001,854
    none = solve(SPECS / "mlp4.yaml", ["width"], ["params == 1000000"], {"width": (1, 100000)})
    assert none.solutions == [] and "holds no integer" in none.why


def test_two_symbols_by_search():
    result = solve(SPECS / "quiz_pool.yaml", ["J", "K"], ["output == [8, 4, 5]"], {"J": (1, 20), "K": (1, 20)},
                   C=8, F=2, s=2)  # fmt: skip
    assert result.solutions == [
        {"J": 8, "K": 10},
        {"J": 8, "K": 11},
        {"J": 9, "K": 10},
        {"J": 9, "K": 11},
    ]


@pytest.mark.parametrize(
    "text, match",
    [
        ("conv1.output = 3", "expected REFERENCE OP VALUE"),
        ("conv1.colour == 3", "unknown quantity 'colour' for layer 'conv1'"),
        ("loss == 3", "unknown quantity 'loss' for a total"),
        ("params == [1, 2]", "only a whole output shape compares with a list"),
        (
            "params == __import__('os')",
            "only min, max, floor, ceil and make_divisible may be called",
        ),
        ("conv1.output == [1, 2", "unbalanced brackets"),
    ],
)
def test_bad_constraints(text, match):
    with pytest.raises(ArchcalcError, match=match):
        parse_constraint(text)


def test_bad_requests():
    with pytest.raises(ArchcalcError, match="--for Q: not a declared symbol"):
        solve(SPECS / "solve_conv1.yaml", ["Q"], CONV1)
    with pytest.raises(
        ArchcalcError, match=r"would try 16,008,001 candidates \(at most 10,000,000\)"
    ):
        solve(SPECS / "quiz_pool.yaml", ["J", "K"], ["output == [8, 4, 5]"], {}, (0, 4000),
              C=8, F=2, s=2)  # fmt: skip
    with pytest.raises(ArchcalcError, match="no layer with path or name 'conv9'"):
        solve(SPECS / "solve_conv1.yaml", ["J"], ["conv9.params == 1"], {"J": (1, 5)}, P=0)


def test_solve_command(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = main(["solve", "specs/solve_conv1.yaml", "--for", "J", "--set", "P=0", "--range", "200:260",
                 "--where", CONV1[0], "--where", CONV1[1]])  # fmt: skip
    out = capsys.readouterr().out
    assert (
        code == 0
        and "  J = 227\n" in out
        and "1 solution; smallest J = 227, largest J = 227" in out
    )
    code = main(["solve", "specs/solve_conv1.yaml", "--for", "P", "--set", "J=224", "--range", "P=0:10",
                 "--where", CONV1[0], "--where", CONV1[1], "--json"])  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["solutions"] == [] and "P = 3/2" in data["why"]


# ----------------------------------------------------------------------------- style transfer sizes


def test_style_sizes_numeric_and_symbolic():
    from archcalc import analyze
    from archcalc.questions.style import style_layers

    layers = style_layers(
        analyze(SPECS / "zoo" / "vgg19.yaml"), ["conv4_2"], ["conv1_1", "conv5_1"]
    )
    content, first, last = layers
    assert (content.filters, content.positions, content.content_terms) == (512, 28 * 28, 512 * 784)
    assert (first.filters, first.positions, first.gram) == (64, 224 * 224, 64 * 64)
    assert first.normaliser.denominator == 4 * 64**2 * (224 * 224) ** 2
    assert (last.filters, last.positions) == (512, 14 * 14)
    symbolic = style_layers(
        analyze(SPECS / "zoo" / "vgg19.yaml", symbolic=True), ["conv4_2"], ["conv1_1"]
    )
    assert symbolic[0].to_dict()["positions"] == "floor(H/8)*floor(W/8)"
    assert symbolic[1].to_dict()["normaliser"] == "1/(16384*H**2*W**2)"


def test_style_positional_names_work_without_names():
    from archcalc import analyze
    from archcalc.questions.style import find

    net = analyze(SPECS / "zoo" / "vgg16.yaml")  # no conv names: found by position
    assert find(net, "conv3_2").output == (256, 56, 56)
    with pytest.raises(ArchcalcError, match="no layer 'conv9_1'"):
        find(net, "conv9_1")


def test_style_command_with_pytorch(capsys, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.chdir(ROOT)
    code = main(["style", "specs/zoo/vgg19.yaml", "--set", "H=48", "--set", "W=48", "--verify", "--steps", "6",
                 "--json"])  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    names = {c["name"] for c in data["verify"]["checks"]}
    assert {
        "style:conv1_1:gram",
        "style:conv1_1:E_l",
        "style:conv4_2:content_terms",
        "style:optimisation",
    } <= names
    assert all(c["passed"] for c in data["verify"]["checks"])
    assert data["verify"]["losses"][-1] < data["verify"]["losses"][0]


def test_closed_form_solutions_must_be_valid_networks():
    # found while vectorising: solveset sees formulas, not validity (0 channels; 64/J not whole)
    doc = {"name": "n", "symbols": {"J": None}, "input": [1, 8, 8],
           "layers": [{"type": "conv2d", "out_channels": "J", "kernel_size": 3}]}  # fmt: skip
    result = solve(doc, ["J"], ["macs > 0"], {"J": (0, 4)})
    assert [s["J"] for s in result.solutions] == [1, 2, 3, 4]
    assert "confirmed by the exact analysis" in result.method
