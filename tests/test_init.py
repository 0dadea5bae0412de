"""Initialisation: fans, gains, quadrature, variance propagation, the init command."""

from __future__ import annotations

import json
import math

import mpmath
import pytest

from archcalc import analyze
from archcalc.init.activations import moments
from archcalc.init.gaussian import expect, hermite_rule, max_moments
from archcalc.init.propagation import propagate
from archcalc.init.recommend import fans, recommend
from tests.conftest import ROOT, SPECS, spec

mpmath.mp.dps = 30


def mlp(activation="relu", depth=30, width=128, inputs=64, outputs=10, **extra):
    hidden = [{"type": "linear", "out_features": width, "activation": activation, **extra}] * (
        depth - 1
    )
    return spec([*hidden, {"type": "linear", "out_features": outputs}], [inputs])


# ----------------------------------------------------------------------------- quadrature


def reference(f, sigma, mu=0.0):
    """E[f(mu + sigma z)] by mpmath to 30 digits, split at the kink and around the bulk."""
    g = lambda z: f(mu + sigma * z) * mpmath.npdf(z)  # noqa: E731
    cut = -mpmath.mpf(mu) / sigma
    return float(mpmath.quad(g, sorted({-mpmath.inf, -1, cut, 1, mpmath.inf})))


SMOOTH = {
    "tanh": (math.tanh, mpmath.tanh),
    "tanh'": (lambda x: 1 - math.tanh(x) ** 2, lambda x: 1 - mpmath.tanh(x) ** 2),
    "sigmoid": (lambda x: 1 / (1 + math.exp(-x)), lambda x: 1 / (1 + mpmath.exp(-x))),
    "gelu": (lambda x: x * 0.5 * math.erfc(-x / math.sqrt(2)), lambda x: x * mpmath.ncdf(x)),
}


@pytest.mark.parametrize("name", sorted(SMOOTH))
@pytest.mark.parametrize("sigma", [0.01, 0.3, 1.0, 3.0, 30.0])
@pytest.mark.parametrize("power", [1, 2])
def test_quadrature_matches_mpmath(name, sigma, power):
    ours, exact = SMOOTH[name]
    value = expect(lambda x: ours(x) ** power, 0.0, sigma)
    truth = reference(lambda x: exact(x) ** power, sigma)
    assert value == pytest.approx(truth, rel=1e-9, abs=1e-14)


@pytest.mark.parametrize("name, alpha", [("elu", 1.0), ("selu", None)])
@pytest.mark.parametrize("mu, var", [(0.0, 1.0), (0.5, 2.0), (-1.0, 0.25)])
def test_kinked_activations_match_mpmath(name, alpha, mu, var):
    from archcalc.init.activations import SELU_ALPHA, SELU_SCALE

    a, s = (alpha, 1.0) if name == "elu" else (SELU_ALPHA, SELU_SCALE)
    phi = lambda x: s * (x if x > 0 else a * (mpmath.exp(x) - 1))  # noqa: E731
    dphi = lambda x: s * (1 if x > 0 else a * mpmath.exp(x))  # noqa: E731
    first, second, slope = moments(name, mu, var, None, alpha)
    sigma = math.sqrt(var)
    assert first == pytest.approx(reference(phi, sigma, mu), rel=1e-9, abs=1e-12)
    assert second == pytest.approx(reference(lambda x: phi(x) ** 2, sigma, mu), rel=1e-9)
    assert slope == pytest.approx(reference(lambda x: dphi(x) ** 2, sigma, mu), rel=1e-9)


def test_known_values():
    assert moments("relu", 0.0, 1.0)[1:] == (0.5, 0.5)  # ReLU halves; E[relu'^2] = 1/2
    assert moments("tanh", 0.0, 1.0)[1] == pytest.approx(0.394294490397841174, rel=1e-12)
    mean, m2, _ = moments("selu", 0.0, 1.0)  # SELU's fixed point
    assert abs(mean) < 1e-12 and m2 == pytest.approx(1.0, rel=1e-12)
    assert max_moments(2)[0] == pytest.approx(1 / math.sqrt(math.pi), rel=1e-12)
    assert max_moments(3)[0] == pytest.approx(1.5 / math.sqrt(math.pi), rel=1e-12)
    assert max_moments(2)[1] == pytest.approx(1.0, rel=1e-12)  # E[max(z1,z2)^2] = 1


@pytest.mark.parametrize("mu, var", [(0.0, 1.0), (0.7, 3.0), (-0.4, 0.5)])
@pytest.mark.parametrize("slope", [None, 0.2])
def test_relu_and_leaky_closed_forms_match_quadrature(mu, var, slope):
    sigma = math.sqrt(var)
    a = 0.0 if slope is None else slope
    name = "relu" if slope is None else "leaky_relu"
    first, second, deriv = moments(name, mu, var, slope)
    phi = lambda x: x if x > 0 else a * x  # noqa: E731
    assert first == pytest.approx(expect(phi, mu, sigma, kink=0.0), rel=1e-10, abs=1e-13)
    assert second == pytest.approx(expect(lambda x: phi(x) ** 2, mu, sigma, kink=0.0), rel=1e-10)
    step = lambda x: 1.0 if x > 0 else a * a  # noqa: E731
    assert deriv == pytest.approx(expect(step, mu, sigma, kink=0.0), rel=1e-10)


def test_even_hermite_rule_has_no_node_at_the_kink():
    nodes, weights = hermite_rule()
    assert len(nodes) % 2 == 0 and min(abs(x) for x in nodes) > 1e-3
    assert sum(weights) == pytest.approx(1.0, abs=1e-13)
    # An odd rule puts a node of large weight exactly at 0, where ReLU's derivative jumps:
    odd_nodes, odd_weights = hermite_rule(31)
    at_zero = [w for x, w in zip(odd_nodes, odd_weights) if abs(x) < 1e-12]
    assert at_zero and at_zero[0] > 0.1


# ----------------------------------------------------------------------------- fans and recommendations


def test_grouped_conv_fans_and_torchs_difference():
    a = analyze(spec([{"type": "conv2d", "out_channels": 256, "kernel_size": 5, "padding": 2, "groups": 2}],
                     [96, 27, 27]))  # fmt: skip
    fan = fans(a.rows[0])
    assert (fan.fan_in, fan.fan_out) == (48 * 25, 128 * 25)
    assert (fan.torch_fan_in, fan.torch_fan_out) == (48 * 25, 256 * 25)
    assert fan.torch_differs == "PyTorch's fan_out is 6400"


def test_strided_and_transposed_fans():
    conv = analyze(
        spec([{"type": "conv2d", "out_channels": 8, "kernel_size": 4, "stride": 2}], [3, 16, 16])
    )
    fan = fans(conv.rows[0])
    assert (fan.fan_in, fan.fan_out, fan.forward, fan.backward) == (48, 128, 48, 32)
    up = analyze(spec([{"type": "conv_transpose2d", "out_channels": 8, "kernel_size": 4, "stride": 2,
                        "padding": 1}], [16, 7, 7]))  # fmt: skip
    fan = fans(up.rows[0])
    # each output sees (16·16)/4 = 64 inputs on average; each input feeds 8·16 outputs
    assert (fan.fan_in, fan.fan_out, fan.forward, fan.backward) == (64, 128, 64, 128)
    assert (fan.torch_fan_in, fan.torch_fan_out) == (
        128,
        256,
    )  # from the weight shape (16, 8, 4, 4)


def test_recommendations_follow_the_activation():
    layers = [
        {"type": "conv2d", "out_channels": 4, "kernel_size": 3},
        {"type": "batchnorm2d"}, {"type": "maxpool2d", "kernel_size": 2}, {"type": "relu"},
        {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "activation": "tanh"},
        {"type": "flatten"},
        {"type": "linear", "out_features": 8, "activation": "selu"},
        {"type": "linear", "out_features": 8}, {"type": "dropout"}, {"type": "leaky_relu", "negative_slope": 0.2},
        {"type": "linear", "out_features": 3},
    ]  # fmt: skip
    recs = recommend(analyze(spec(layers, [3, 16, 16])))
    assert [(r.activation, r.scheme) for r in recs] == [
        ("relu", "kaiming"), ("tanh", "xavier"), ("selu", "lecun"), ("leaky_relu", "kaiming"),
        ("identity", "xavier"),
    ]  # fmt: skip
    relu, tanh, selu, leaky, last = recs
    assert relu.variance == pytest.approx(2 / 27) and relu.torch_gain == pytest.approx(math.sqrt(2))
    assert tanh.variance == pytest.approx(2 / (36 + 36)) and tanh.torch_gain == pytest.approx(5 / 3)
    assert selu.variance == pytest.approx(1 / (4 * 5 * 5)) and selu.torch_gain == 0.75
    assert leaky.variance == pytest.approx(2 / (1.04 * 8))
    assert leaky.torch == ('torch.nn.init.kaiming_normal_(layer.weight, a=0.2, mode="fan_in", '
                           'nonlinearity="leaky_relu"); torch.nn.init.zeros_(layer.bias)')  # fmt: skip
    assert last.bound == pytest.approx(math.sqrt(6 / (8 + 3)))
    assert (
        last.keras
        == 'keras.initializers.VarianceScaling(scale=1, mode="fan_avg", distribution="uniform")'
    )
    assert (relu.g0, relu.g1, tanh.g0, tanh.g1) == (0.5, 0.5, 1, 1)


def test_residual_body_end_sees_the_activation_after_the_sum():
    block = {"type": "residual", "activation": "relu", "body": [
        {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"type": "batchnorm2d"}]}  # fmt: skip
    recs = recommend(analyze(spec([block], [4, 8, 8])))
    assert [r.activation for r in recs] == ["relu"]


def test_grouped_xavier_gives_the_bound_explicitly():
    layers = [
        {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "groups": 2, "activation": "tanh"}
    ]
    rec = recommend(analyze(spec(layers, [4, 8, 8])))[0]
    assert rec.torch.startswith(
        "torch.nn.init.uniform_(layer.weight, -"
    )  # PyTorch's fan_out differs


def test_a_strided_linear_layer_gets_lecun_not_xavier():
    # ViT's 16x16/16 patch embedding: Xavier's n_out is the kernel's 768·256 taps, but each
    # input pixel is in one window and reaches 768 outputs; Xavier would shrink the variance
    # 128-fold ("degrading" at the first layer); LeCun's 1/n_in keeps it (and is torchvision's
    # own choice there, std sqrt(1/fan_in))
    net = analyze(SPECS / "zoo" / "vit_b_16.yaml")
    rec = recommend(net)[0]
    assert (rec.fans.fan_in, rec.fans.fan_out, rec.fans.backward) == (768, 196_608, 768)
    assert rec.scheme == "lecun" and rec.variance == pytest.approx(1 / 768)
    assert rec.torch.startswith("torch.nn.init.normal_(layer.weight, std=0.0360844)")
    assert rec.reason == ("a strided layer: Xavier's n_out, the kernel's 196,608 taps, overstates "
                          "the 768 outputs each input reaches and would shrink the signal; "
                          "LeCun's Var[w] = 1/n_in keeps it")  # fmt: skip
    assert "healthy" in propagate(net).verdict
    # without a stride, or with a stride that is a symbol: Xavier, as the course defines it
    plain = recommend(analyze(spec([{"type": "conv2d", "out_channels": 8, "kernel_size": 3}],
                                   [3, 8, 8])))[0]  # fmt: skip
    assert plain.scheme == "xavier" and plain.variance == pytest.approx(2 / (27 + 72))
    assert plain.torch.startswith("torch.nn.init.xavier_uniform_(layer.weight)")
    quiz = recommend(analyze(SPECS / "quiz_conv.yaml", symbolic=True))[0]
    assert quiz.scheme == "xavier"
    # a transposed convolution's inputs reach every tap: its stride changes nothing here
    last = recommend(analyze(SPECS / "zoo" / "dcgan_generator.yaml"))[-1]
    assert (last.row.type, last.activation, last.scheme) == ("conv_transpose2d", "tanh", "xavier")


def test_reasons_say_what_the_rule_does_for_the_activation():
    layers = [{"type": "linear", "out_features": 8, "activation": "gelu"},
              {"type": "linear", "out_features": 8}, {"type": "layernorm"},
              {"type": "linear", "out_features": 3}]  # fmt: skip
    gelu, inner, last = (r.reason for r in recommend(analyze(spec(layers, [8]))))
    kept = moments("gelu", 0.0, 1.0)[1]
    assert round(kept, 2) == 0.43  # not ReLU's 1/2, nor the linearised 1/4
    assert gelu == ("gelu is ReLU-like (at unit variance it keeps 0.43 of it, ReLU 0.50): "
                    "Kaiming/He's Var[w] = 2/n_in, the ReLU rule")  # fmt: skip
    assert inner.startswith("a layer with no activation after it is linear")
    assert last.startswith("the output layer is linear")


# ----------------------------------------------------------------------------- propagation


def test_thirty_relu_layers_halve_with_lecun_and_hold_with_kaiming():
    net = analyze(mlp())
    lecun = propagate(net, "lecun")
    ratio = lecun.layers[-1].forward / lecun.layers[0].forward
    assert ratio == pytest.approx(2.0**-29, rel=1e-12)
    kaiming = propagate(net, "kaiming")
    assert [layer.forward for layer in kaiming.layers] == pytest.approx([2.0] * 30, rel=1e-12)
    # Backward: 2/n keeps the gradient through every hidden layer (n_out = n_in = 128)
    hidden = [layer.backward for layer in kaiming.layers[1:-1]]
    assert max(hidden) / min(hidden) == pytest.approx(1.0, rel=1e-12)
    assert lecun.first_signal().depth == 8  # 2^-7 < 1e-2 at the 8th layer
    assert "vanishing signal from depth 8" in lecun.verdict


def test_torch_default_shrinks_by_a_sixth_per_relu_layer():
    layers = propagate(analyze(mlp()), "torch_default").layers
    for before, after in zip(layers[1:-1], layers[2:-1]):
        assert after.forward / before.forward == pytest.approx(1 / 6, rel=1e-12)


def test_product_formula_equals_exact_for_relu_but_not_tanh():
    relu = propagate(analyze(mlp(depth=10)), "kaiming")
    assert relu.output_variance == pytest.approx(relu.output_variance_product, rel=1e-12)
    tanh = propagate(analyze(mlp("tanh", depth=10)), "xavier")
    # tanh saturates: the exact map loses variance that the linear G0 = 1 does not
    assert tanh.output_variance < 0.7 * tanh.output_variance_product


def test_batchnorm_resets_the_signal():
    net = analyze(SPECS / "deep_relu_bn.yaml")
    p = propagate(net, "torch_default")
    # BN resets to 1, ReLU halves it, Var[w] = 1/(3n) gives n·1/(3n)·1/2 = 1/6 at every layer
    assert [layer.forward for layer in p.layers[1:]] == pytest.approx([1 / 6] * 29, rel=1e-12)
    assert p.first_signal() is None  # no init makes the signal vanish
    # ...but BN's batch coupling makes gradients grow by pi/(pi-1) per BN-ReLU layer
    hidden = [layer.backward for layer in p.layers[1:-1]]
    for deeper, shallower in zip(hidden[1:], hidden):
        assert shallower / deeper == pytest.approx(math.pi / (math.pi - 1), rel=1e-9)
    assert "growing gradient from depth 15 backwards" in p.verdict  # x1.5e4: trains
    plain = propagate(analyze(SPECS / "deep_relu_mlp.yaml"), "torch_default")
    assert plain.first_signal().depth == 3


def test_residual_variances_add_and_gradients_add():
    body = [{"type": "linear", "out_features": 4}]
    net = analyze(
        spec([{"type": "residual", "body": body}, {"type": "linear", "out_features": 4}], [4])
    )
    p = propagate(net, "normal:0.25")  # Var[w] = 1/16: body pre-variance 4/16
    assert p.layers[0].forward == pytest.approx(0.25)
    assert p.layers[1].forward == pytest.approx(4 / 16 * (1 + 0.25))  # sees 1 + 1/4
    # backward: unit gradient -> last layer gives 4/16 at its input; the sum passes it to both
    assert p.layers[1].backward == pytest.approx(0.25)
    assert p.input_gradient == pytest.approx(0.25 + 0.25 * 0.25)


def test_concat_mixes_channels():
    layer = {"type": "concat", "branches": [[{"type": "linear", "out_features": 2}], []]}
    net = analyze(spec([layer, {"type": "linear", "out_features": 1}], [4]))
    p = propagate(net, "normal:0.5")  # branch pre-variance 4 * 0.25 = 1... second branch identity
    assert p.layers[0].forward == pytest.approx(1.0)
    assert p.layers[1].forward == pytest.approx(6 * 0.25 * (2 * 1.0 + 4 * 1.0) / 6)


def test_pooling_dropout_and_batchnorm_factors():
    def second_layer(layers, shape):
        net = analyze(
            spec([*layers, {"type": "flatten"}, {"type": "linear", "out_features": 1}], shape)
        )
        return propagate(net, "normal:1").layers[-1]

    plain = second_layer([], [1, 4, 4])
    assert plain.forward == pytest.approx(16.0)
    assert second_layer(
        [{"type": "avgpool2d", "kernel_size": 2}], [1, 4, 4]
    ).forward == pytest.approx(4 * 1 / 4)
    assert second_layer([{"type": "dropout", "p": 0.5}], [1, 4, 4]).forward == pytest.approx(32.0)
    e1, e2 = max_moments(4)
    assert second_layer(
        [{"type": "maxpool2d", "kernel_size": 2}], [1, 4, 4]
    ).forward == pytest.approx(4 * e2)
    bn = analyze(spec([{"type": "linear", "out_features": 4}, {"type": "batchnorm1d"},
                       {"type": "linear", "out_features": 1}], [4]))  # fmt: skip
    p = propagate(bn, "normal:2")  # pre-variance 16; BN divides the gradient by it
    assert p.layers[1].forward == pytest.approx(4 * 4 * 1.0)
    # last layer: n_out·Var[w]·1 = 1·4 = 4; BN divides by its input variance 16; first: 4·4·(4/16)
    assert p.layers[1].backward == pytest.approx(4.0)
    assert p.layers[0].backward == pytest.approx(4 * 4 * (4 / 16), rel=1e-12)


def test_symbolic_spec_gives_factor_formulas(capsys, monkeypatch):
    from archcalc.cli import main

    monkeypatch.chdir(ROOT)
    assert main(["init", "specs/deep_relu_mlp.yaml", "--symbolic", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layers"][1]["fan_in"] == "width" and data["layers"][1]["factor"] == "1"
    assert data["layers"][-1]["factor"] == "2*width/(width + 10)"
    with pytest.raises(Exception, match="variance propagation needs numbers"):
        propagate(analyze(SPECS / "deep_relu_mlp.yaml", symbolic=True))


# ----------------------------------------------------------------------------- the command


def test_init_json_shape(capsys, monkeypatch):
    from archcalc.cli import main

    monkeypatch.chdir(ROOT)
    assert main(["init", "specs/deep_relu_mlp.yaml", "--scheme", "lecun", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"scheme", "layers", "output_variance", "warnings"} <= set(data)
    first = data["layers"][0]
    assert {"path", "type", "fan_in", "fan_out", "activation", "gain", "recommended",
            "forward_variance", "backward_variance"} <= set(first)  # fmt: skip
    assert set(first["recommended"]) >= {"scheme", "variance", "std", "bound", "torch", "keras"}
    assert data["output_variance"] == pytest.approx(2.0**-29, rel=1e-9)  # layer 1: 64·(1/64)·1 = 1


@pytest.mark.parametrize("name, scheme", [("deep_relu_mlp.yaml", "lecun"), ("deep_tanh_mlp.yaml", "recommended"),
                                          ("atari_dqn.yaml", "recommended"), ("alexnet.yaml", "torch_default")])  # fmt: skip
def test_init_table_golden(name, scheme, capsys, golden, monkeypatch):
    from archcalc.cli import main

    monkeypatch.chdir(ROOT)
    assert main(["init", f"specs/{name}", "--scheme", scheme]) == 0
    golden(f"{name}.init-{scheme}.txt", capsys.readouterr().out)


def test_bad_scheme_is_a_usage_error(capsys, monkeypatch):
    from archcalc.cli import main

    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as info:
        main(["init", "specs/lenet5.yaml", "--scheme", "he"])
    assert info.value.code == 2
    assert (
        "--scheme: expected one of recommended, kaiming, kaiming_out, xavier, lecun, torch_default or normal:STD"
        in capsys.readouterr().err
    )


def test_plot_writes_a_png(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from archcalc.cli import main

    monkeypatch.chdir(ROOT)
    out = tmp_path / "variance.png"
    assert main(["init", "specs/deep_relu_mlp.yaml", "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_plot_without_matplotlib_says_how_to_install(tmp_path, monkeypatch, capsys):
    import sys

    from archcalc.cli import main

    monkeypatch.chdir(ROOT)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main(["init", "specs/lenet5.yaml", "--plot", str(tmp_path / "x.png")]) == 1
    assert "--plot needs matplotlib: pip install 'archcalc[plot]'" in capsys.readouterr().err


def test_adaptive_average_pooling_that_enlarges_its_input():
    """4 -> 7 per dimension: 3 windows of 2 positions and 4 of 1; the variance of independent
    elements is divided by each window's size, E[1/size] = (4·1 + 3·1/2)/7 per dimension (the old
    model took the window as in/out = 4/7 and predicted a variance 350 times too large)."""
    net = analyze({"name": "up", "input": [8, 4, 4], "layers": [
        {"type": "conv2d", "out_channels": 8, "kernel_size": 1},
        {"type": "adaptive_avgpool2d", "output_size": 7},
        {"type": "flatten"}, {"type": "linear", "out_features": 10}]})  # fmt: skip
    layers = propagate(net, "recommended").layers
    assert layers[0].forward == pytest.approx(1.0)
    assert layers[1].forward == pytest.approx(392 * 2 / 402 * (5.5 / 7) ** 2, rel=1e-12)


def _scaled_branches(init: float, blocks: int = 12) -> dict:
    """Residual blocks whose branch ends in a learned scale (ConvNeXt's layer scale)."""
    branch = {"params": [], "layers": [
        {"name": "gamma", "type": "parameter", "shape": [8, 1, 1], "init": init},
        {"type": "conv2d", "input": "input", "out_channels": 8, "kernel_size": 3, "padding": 1},
        {"type": "relu"},
        {"name": "out", "type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1},
        {"type": "mul", "inputs": ["gamma", "out"]}]}  # fmt: skip
    block = {"params": [], "layers": [{"type": "residual", "body": [{"type": "branch"}]}]}
    body = [{"type": "scaled"} for _ in range(blocks)]
    return {"name": "scaled", "input": [8, 8, 8], "blocks": {"branch": branch, "scaled": block},
            "layers": [{"type": "conv2d", "out_channels": 8, "kernel_size": 1}, *body]}  # fmt: skip


def test_a_gradient_small_behind_a_layer_scale_is_not_called_a_stall():
    # the gradient reaching a branch's weights starts 1e-12 small behind a scale initialised
    # to 1e-6, by design: the scale's own gradient is not small, so it grows
    net = analyze(SPECS / "zoo" / "convnext_tiny.yaml")
    verdict = propagate(net).verdict
    assert "vanishing gradient" in verdict and "expect training to stall" not in verdict
    assert "a learned scale initialised to 1e-06: small by design, not a stall" in verdict
    assert "behind a layer scale" in propagate(net).summary
    # the same blocks with a scale of 1: no such remark
    tiny, plain = (propagate(analyze(_scaled_branches(init))) for init in (1e-6, 1.0))
    assert (
        "vanishing gradient" in tiny.verdict
        and "a learned scale initialised to 1e-06" in tiny.verdict
    )
    assert "layer scale" not in plain.summary and "learned scale" not in plain.verdict


def test_squeeze_and_excitation_gates_are_told_apart_from_the_signal():
    """A gate's pre-activation is a per-channel mean: small by design (EfficientNet-B0's
    0.0018..0.098), flagged as a gate and left out of the verdict, which judges the path the
    signal takes; the layers a gate multiplies into are not gates."""
    from archcalc.init.propagation import gate_nodes

    net = analyze(SPECS / "zoo" / "efficientnet_b0.yaml")
    p = propagate(net, "recommended")
    gates = [layer for layer in p.layers if layer.gate]
    assert len(gates) == 32  # 16 MBConv blocks, two 1x1 convolutions in each gate
    assert all(layer.row.output[1:] == (1, 1) for layer in gates)
    assert {layer.recommendation.activation for layer in gates} == {"silu", "sigmoid"}
    assert any(layer.flag() == "degrading (gate)" for layer in gates)
    assert p.first_signal() is None  # the signal's own path stays in the band
    assert "degrading signal" not in p.verdict
    assert "over 50 weighted layers and 32 on gate branches (squeeze-and-excitation" in p.verdict
    nodes = net.graph.nodes
    muls = [n for n in nodes if n.type == "mul"]
    assert muls and all(sum(i in gate_nodes(net.graph) for i in m.inputs) == 1 for m in muls)
    # no gates where none are: ResNet-50's verdict and flags as before
    assert not any(
        layer.gate for layer in propagate(analyze(SPECS / "zoo" / "resnet50.yaml")).layers
    )
