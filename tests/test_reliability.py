"""Regression tests for the "wrong or stuck" cases: each once gave an internal error, a
silent wrong answer or a hang on reachable input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archcalc import analyze
from archcalc.cli import main
from archcalc.errors import ArchcalcError
from archcalc.language.expr import symbol
from archcalc.layers.formulas import (
    adaptive_window_counts,
    pool_output_size,
    taps_in_bounds,
    window_counts,
)
from tests.conftest import ROOT, spec


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# ----------------------------------------------------------------------------- padding words as numbers


@pytest.mark.parametrize(
    "layer, field",
    [
        ({"type": "conv2d", "out_channels": 4, "kernel_size": 3, "stride": "same"}, "stride"),
        ({"type": "maxpool2d", "kernel_size": 2, "padding": "same"}, "padding"),
        ({"type": "avgpool2d", "kernel_size": 2, "padding": "valid"}, "padding"),
        ({"type": "linear", "out_features": "valid"}, "out_features"),
        ({"type": "conv2d", "out_channels": "same + 1", "kernel_size": 3}, "out_channels"),
    ],
)
def test_padding_words_in_integer_fields_are_errors(layer, field):
    shape = (8,) if layer["type"] == "linear" else (3, 32, 32)
    with pytest.raises(ArchcalcError) as info:
        analyze(spec([layer], shape))
    assert info.value.path == f"layers[0].{field}"
    assert "is a padding mode, not a number: it applies only to the padding of a convolution" in (
        info.value.message
    )


def test_same_padding_on_a_conv_still_works():
    net = analyze(
        spec([{"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": "same"}])
    )
    assert net.output == (4, 32, 32)


# ----------------------------------------------------------------------------- symbolic division by zero


@pytest.mark.parametrize("text", ["x/(x-x)", "x % (x-x)", "max(x, x/(x-x))", "x // (2*x - x - x)",
                                  "x / ((x+1)**2 - x**2 - 2*x - 1)"])  # fmt: skip
def test_symbolic_division_by_zero_is_an_error(text):
    with pytest.raises(ArchcalcError, match=r"division by zero in"):
        analyze(spec([{"type": "linear", "out_features": text}], (8,), symbols={"x": None}))


def test_symbolic_division_by_zero_through_the_cli(tmp_path, capsys):
    path = write(tmp_path, "z.yaml", "name: z\nsymbols: {x: null}\ninput: [8]\n"
                 "layers:\n  - {type: linear, out_features: 'x/(x-x)'}\n")  # fmt: skip
    code, out, err = run(capsys, "analyze", path)
    assert code == 1 and "zoo" not in out
    assert (
        err == f"archcalc: error: {path}:5: layers[0].out_features: division by zero in 'x/(x-x)'\n"
    )


# ----------------------------------------------------------------------------- init overflow


def test_normal_std_out_of_range_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["init", str(ROOT / "specs/deep_relu_mlp.yaml"), "--scheme", "normal:1e200"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "normal:STD needs a number between 1e-100 and 1e+100. Received: normal:1e200" in err
    assert err.startswith("usage: archcalc init ")  # the command's usage, not the top level's
    assert "archcalc init: error: --scheme: " in err


@pytest.mark.parametrize("std", ["1e100", "1e-100"])
@pytest.mark.parametrize("name", ["deep_relu_mlp", "deep_tanh_mlp", "deep_relu_bn"])
def test_extreme_init_saturates_instead_of_overflowing(std, name, capsys):
    code, out, _ = run(capsys, "init", str(ROOT / f"specs/{name}.yaml"), "--scheme", f"normal:{std}",
                       "--json")  # fmt: skip
    assert code == 0
    data = json.loads(out)
    values = [layer[key] for layer in data["layers"]
              for key in ("forward_variance", "backward_variance", "backward_norm_ratio")]  # fmt: skip
    assert all(0.0 <= v <= 1e300 for v in values)  # no nan, no inf
    assert ("exploding" if std == "1e100" else "vanishing") in data["verdict"]


# ----------------------------------------------------------------------------- solve with free symbols


@pytest.mark.parametrize("where", ["params < 1000000", "neurons != 7"])
def test_solve_refuses_free_symbols(where, capsys):
    code, out, err = run(capsys, "solve", str(ROOT / "specs/quiz_conv.yaml"), "--for", "i",
                         "--where", where)  # fmt: skip
    assert code == 1 and out == ""
    assert "cannot solve for i while J, K, L, M, N, s, P have no value: give them with --set" in err


def test_solve_takes_the_free_symbols_with_set(capsys):
    values = ["--set", "J=32", "--set", "K=32", "--set", "L=3", "--set", "M=3", "--set", "N=3",
              "--set", "s=1", "--set", "P=1"]  # fmt: skip
    code, out, _ = run(capsys, "solve", str(ROOT / "specs/quiz_conv.yaml"), "--for", "i",
                       "--where", "params <= 280", "--range", "1:100", *values)  # fmt: skip
    assert code == 0
    assert "smallest i = 1, largest i = 10" in out  # 28 parameters per filter


# ----------------------------------------------------------------------------- pooling in closed form


@given(
    n=st.integers(1, 40), k=st.integers(1, 6), s=st.integers(1, 4), d=st.integers(1, 3),
    p=st.integers(0, 3), ceil=st.booleans(),
)  # fmt: skip
def test_window_counts_equal_counting_every_window(n, k, s, d, p, ceil):
    p = min(p, k // 2)
    if n + 2 * p < d * (k - 1) + 1:
        return
    out = pool_output_size(n, k, s, p, d, ceil)
    brute = Counter(taps_in_bounds(1, k, 1, p - o * s, d, n) for o in range(out))
    assert window_counts(n, out, k, s, p, d) == brute


@given(n=st.integers(1, 80), out=st.integers(1, 80))
def test_adaptive_window_counts_equal_counting_every_window(n, out):
    brute = Counter(-((-(o + 1) * n) // out) - (o * n) // out for o in range(out))
    assert adaptive_window_counts(n, out) == brute


HUGE_INPUTS = [
    "name: big\ninput: [3, 1000000000000000, 8]\nlayers:\n"
    "  - {type: conv2d, out_channels: 4, kernel_size: 3, padding: 1, activation: relu}\n"
    "  - {type: maxpool2d, kernel_size: 2}\n  - {type: adaptive_avgpool2d, output_size: [7, 3]}\n"
    "  - {type: flatten}\n  - {type: linear, out_features: 10}\n",
    "name: signal\ninput: [1, 9600000]\nlayers:\n"
    "  - {type: conv1d, out_channels: 4, kernel_size: 9, padding: 4, activation: relu}\n"
    "  - {type: maxpool1d, kernel_size: 3, stride: 2, padding: 1}\n"
    "  - {type: adaptive_maxpool1d, output_size: 1000}\n  - {type: flatten}\n"
    "  - {type: linear, out_features: 10}\n",
]


@pytest.mark.parametrize("text", HUGE_INPUTS, ids=["1e15-rows", "9.6M-samples"])
def test_analyze_does_not_hang_on_huge_tensors(text, tmp_path):
    """Not a timing test: a hang detector. The closed forms take well under a second."""
    path = write(tmp_path, "big.yaml", text)
    done = subprocess.run([sys.executable, "-m", "archcalc", "analyze", path], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "init: recommended ->" in done.stdout


def test_no_propagation_without_weighted_layers(monkeypatch):
    from archcalc.init import propagation
    from archcalc.render import tables as render

    def fail(*args, **kwargs):
        raise AssertionError("propagate() called for a network without weights")

    monkeypatch.setattr(propagation, "propagate", fail)
    net = analyze(spec([{"type": "relu"}] * 50, (16,)))
    assert render.init_verdict(net) == "init: no weighted layers"


def test_image_laws_are_computed_only_when_read():
    from archcalc.init import meanfield

    out, _ = meanfield.activation("relu", {}, meanfield.Moments.iid(0.0, 1.0))
    assert isinstance(out.law_source, meanfield.Deferred) and out.law_source.value is None
    law = out.law
    assert out.law is law  # computed once, then kept
    assert abs(sum(w for w, _, _ in law) - 1) < 1e-12
    assert abs(sum(w * mu for w, mu, _ in law) - out.mean) < 1e-12


# ----------------------------------------------------------------------------- expectations everywhere

FAILING = (
    "name: e\ninput: [8]\nexpect: {params: 10}\nlayers:\n  - {type: linear, out_features: 4}\n"
)


@pytest.mark.parametrize("command", [["analyze"], ["analyze", "--json"], ["explain"], ["init"]])
def test_every_command_reports_failed_expectations(command, tmp_path, capsys):
    path = write(tmp_path, "e.yaml", FAILING)
    code, out, err = run(capsys, command[0], path, *command[1:])
    assert code == 1 and out
    assert err == f"archcalc: error: {path}: expectation failed: params: expected 10, computed 36\n"


def test_expectations_with_overridden_symbols_are_a_note(capsys):
    code, _, err = run(capsys, "analyze", str(ROOT / "specs/atari_dqn.yaml"), "--set", "A=4")
    assert code == 0
    assert "5 expect: entries do not hold with these symbol values" in err


# ----------------------------------------------------------------------------- symbolic init schemes


@pytest.mark.parametrize(
    "scheme, variance, factor",
    [
        ("recommended", "2/(L*M*N + M*N*i)", "2*L*M*N/(L*M*N + M*N*i)"),
        ("lecun", "1/(L*M*N)", "1"),
        ("kaiming", "2/(L*M*N)", "2"),
        ("torch_default", "1/(3*L*M*N)", "1/3"),
    ],
)
def test_symbolic_init_follows_the_scheme(scheme, variance, factor, capsys):
    code, out, _ = run(capsys, "init", str(ROOT / "specs/quiz_conv.yaml"), "--scheme", scheme,
                       "--json")  # fmt: skip
    assert code == 0
    layer = json.loads(out)["layers"][0]
    assert (layer["weight_variance"], layer["factor"]) == (variance, factor)
    code, out, _ = run(capsys, "init", str(ROOT / "specs/quiz_conv.yaml"), "--scheme", scheme)
    assert f"init: {scheme} (symbolic)" in out and factor in out


def test_a_layer_no_output_depends_on_is_not_walked_by_the_init_model():
    # found by benchmarks/fuzz.py: a U-Net whose decoder no longer reads a pooled skip
    from archcalc.init.propagation import propagate

    net = analyze(spec([
        {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1, "name": "a"},
        {"type": "maxpool2d", "kernel_size": 2, "name": "unused"},
        {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1, "input": "a"},
    ], (3, 8, 8)))  # fmt: skip
    assert [w.message for w in net.warnings][0].startswith("layers[1]: no output depends on it")
    assert "healthy" in propagate(net, "recommended").verdict


def test_padding_words_only_where_padding_is_meant():
    # found by benchmarks/fuzz.py: `same_upper` passed through as a value of in_features
    with pytest.raises(ArchcalcError, match="'same_upper' is a padding mode, not a number"):
        analyze(spec([{"type": "linear", "in_features": "same_upper", "out_features": 3}], (4,)))
    net = analyze(spec([{"type": "conv2d", "out_channels": 2, "kernel_size": 3, "stride": 2,
                         "padding": "same_upper"}], (1, 7, 7)))  # fmt: skip
    assert tuple(net.output) == (2, 4, 4)  # ceil(7/2)


def test_a_symbolic_centre_crop_gives_a_field_and_says_what_it_assumed():
    # found by benchmarks/fuzz.py: rf and ERF failed on a crop whose offset is a formula
    from archcalc.quantities.effective import effective_fields
    from archcalc.quantities.receptive import receptive_fields

    doc = spec([
        {"type": "conv2d", "out_channels": 2, "kernel_size": 3},
        {"type": "center_crop", "size": [4, 4]},
    ], (1, "H", "H"))  # fmt: skip
    doc["symbols"] = {"H": None}
    net = analyze(doc)
    rf = receptive_fields(net.graph)
    assert "exact where n - size is even" in " ".join(rf.notes.values())
    numeric = receptive_fields(analyze({**doc, "symbols": {"H": 10}}).graph)
    ((size, stride, padding),) = rf.spatial(2)[:1]
    assert (size, stride) == numeric.spatial(2)[0][:2] == (3, 1)
    # H = 10: the conv gives 8, the crop to 4 starts at (8 - 4)/2 = 2: P = -2 either way
    assert padding.subs(symbol("H"), 10) == numeric.spatial(2)[0][2] == -2
    effective_fields(net.graph)  # refuses the crop inside, as not linear: no exception
