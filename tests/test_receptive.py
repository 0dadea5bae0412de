"""Receptive fields: hand-computed tables, symbols, several paths; and PyTorch's gradients."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from archcalc import analyze
from archcalc.cli import main
from archcalc.quantities.effective import effective_fields
from archcalc.quantities.receptive import receptive_fields
from tests.conftest import SPECS, spec


def fields(net, name):
    """The spatial fields of a row (by path or name) or of any node (by path)."""
    rf = receptive_fields(net.graph)
    node = next((n for n in net.graph.nodes if name in (n.path, n.name)), None)
    return rf.spatial(node), rf.whole[node.id]


# VGG-16 (DOMAIN.md; torchscan publishes 212 for pool5): size/stride/padding
VGG = [("layers[0].layers[0][0].layers[0]", 3, 1, 1), ("layers[0].layers[1]", 6, 2, 2),
       ("layers[1].layers[0][0].layers[0]", 10, 2, 4), ("layers[1].layers[1]", 16, 4, 6),
       ("layers[2].layers[0][0].layers[0]", 24, 4, 10), ("layers[4].layers[1]", 212, 32, 90)]  # fmt: skip


@pytest.mark.parametrize("path, r, s, p", VGG)
def test_vgg16_fields(path, r, s, p):
    net = analyze(SPECS / "zoo/vgg16.yaml")
    assert fields(net, path) == ([(r, s, p), (r, s, p)], False)


def test_alexnet_conv1_and_pool1():
    net = analyze(SPECS / "alexnet.yaml")
    assert fields(net, "conv1")[0] == [(11, 4, 0)] * 2
    assert fields(net, "pool1")[0] == [(19, 8, 0)] * 2
    assert fields(net, "conv2")[0] == [(51, 8, 16)] * 2  # 19 + 4·8, padding 2·8


def test_symbolic_fields_and_same_padding():
    net = analyze(SPECS / "quiz_conv.yaml")
    (h, w), _ = fields(net, "layers[0]")
    assert [str(v) for v in h] == ["M", "s", "P"] and [str(v) for v in w] == ["N", "s", "P"]
    for word, before in (("same_upper", 0), ("same_lower", 1)):  # SAME only shifts P
        layer = {
            "type": "conv2d",
            "out_channels": 2,
            "kernel_size": 3,
            "stride": 2,
            "padding": word,
        }
        assert fields(analyze(spec([layer], [1, 224, 224])), "layers[0]")[0] == [(3, 2, before)] * 2
    dilated = {"type": "conv2d", "out_channels": 2, "kernel_size": 3, "dilation": 2}
    assert fields(analyze(spec([dilated], [1, 9, 9])), "layers[0]")[0] == [(5, 1, 0)] * 2


def test_paths_take_the_largest_field_and_must_be_aligned():
    net = analyze(SPECS / "zoo/resnet18.yaml")  # the shortcut's 1x1 is smaller than the body
    assert (
        fields(net, "layers[5].layers[0].add")[0] == fields(net, "layers[5].layers[0].body[4]")[0]
    )
    aligned = [{"name": "a", "type": "conv2d", "out_channels": 1, "kernel_size": 3},
               {"name": "b", "type": "center_crop", "input": "input", "like": "a"},
               {"type": "add", "inputs": ["a", "b"]}]  # fmt: skip
    assert receptive_fields(analyze(spec(aligned, [1, 8, 8])).graph).warnings == []
    skewed = [*aligned[:1], {"name": "b", "type": "narrow", "input": "input", "dim": 1, "start": 0,
                             "length": 6}, {"type": "narrow", "dim": 2, "start": 1, "length": 6,
                                            "name": "c"}, {"type": "add", "inputs": ["a", "c"]}]  # fmt: skip
    warnings = receptive_fields(analyze(spec(skewed, [1, 8, 8])).graph).warnings
    assert [w.message for w in warnings] == [
        "the paths into this add are not aligned in dimension 1: fields 3/1/0 and 1/1/0 "
        "(size/stride/padding) differ in stride or centre"
    ]


def test_what_sees_the_whole_input():
    net = analyze(SPECS / "zoo/resnet18.yaml")
    assert fields(net, "layers[11]") == ([], True)  # after adaptive average pooling
    net = analyze(SPECS / "zoo/vit_b_16.yaml")
    assert fields(net, "conv_proj") == ([(16, 16, 0)] * 2, False)
    assert fields(net, "head") == ([], True)
    se = analyze(SPECS / "zoo/mobilenet_v3_small.yaml")
    rf = receptive_fields(se.graph)
    gated = [row for row in se.rows if row.type == "mul"]
    assert gated and all(rf.whole[row.node] for row in gated)  # the SE gate pools everything


def test_rf_command_table_and_json(capsys):
    assert main(["rf", str(SPECS / "alexnet.yaml"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    conv1 = data["layers"][0]
    assert (conv1["name"], conv1["size"], conv1["stride"], conv1["padding"]) == (
        "conv1",
        [11, 11],
        [4, 4],
        [0, 0],
    )
    assert data["layers"][-1]["whole_input"] is True
    assert main(["rf", str(SPECS / "alexnet.yaml"), "--layer", "pool1"]) == 0
    out = capsys.readouterr().out
    assert "maxpool2d (pool1)" in out and "19         8          0" in out
    assert main(["explain", str(SPECS / "alexnet.yaml"), "--rf", "--layer", "conv2"]) == 0
    assert "r + d(k-1)·S = 19 + 1·4·8 = 51" in capsys.readouterr().out


@pytest.mark.parametrize("layer", ["conv2", "fc8"])  # a window's recurrence; the whole input
def test_explain_rf_lines_up_with_the_working(layer, capsys):
    """explain --rf's field and ERF lines put their "=" where the layer's other lines do."""
    assert main(["explain", str(SPECS / "alexnet.yaml"), "--rf", "--layer", layer]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    # labelled lines: "  label   = ..." (not "  n = 4,096 inputs, ..." or "  input 13×13×256 ...")
    labelled = [line for line in lines if line.find("=") > 10 and "   " in line[: line.find("=")]]
    assert any("field" in line for line in labelled)
    assert {line.index("=") for line in labelled} == {21}, "\n".join(labelled)


def _paths_1d(layers: list[tuple[int, int]]) -> list[int]:
    """Path counts from input positions to one unit through stride-1 windows (k, dilation),
    by brute force: the repeated convolution of a dilated box, written out."""
    counts = [1]
    for k, d in layers:
        width = len(counts) + d * (k - 1)
        grown = [0] * width
        for i, c in enumerate(counts):
            for t in range(k):
                grown[i + t * d] += c
        counts = grown
    return counts


def _moments(counts: list[int]) -> tuple[int, Fraction, Fraction]:
    mass = sum(counts)
    mean = Fraction(sum(i * c for i, c in enumerate(counts)), mass)
    return mass, mean, Fraction(sum((i - mean) ** 2 * c for i, c in enumerate(counts)), mass)


@pytest.mark.parametrize("layers", [[(3, 1)] * n for n in range(1, 6)] + [[(5, 1)] * 4, [(3, 2), (3, 1), (5, 3)],
                                    [(7, 1), (3, 1), (1, 1)]])  # fmt: skip
def test_effective_field_of_a_stride_1_stack_is_the_path_count_distribution(layers):
    convs = [
        {"type": "conv1d", "out_channels": 2, "kernel_size": k, "dilation": d} for k, d in layers
    ]
    net = analyze(spec(convs, (1, 64)))
    moments = effective_fields(net.graph).of(net.rows[-1].node)
    mass, mean, variance = _moments(_paths_1d(layers))
    # two output channels sum the paths of the last layer's; its input has one (the input), the
    # others two channels each: 2 · 2^(n-1) copies of every path
    assert moments.mass == 2 * 2 ** (len(layers) - 1) * mass
    assert (moments.mean[0], moments.variance[0]) == (mean, variance)
    if all(k == layers[0][0] and d == 1 for k, d in layers):  # Luo et al.: n(k²-1)/12
        assert variance == Fraction(len(layers) * (layers[0][0] ** 2 - 1), 12)


def test_effective_field_by_hand_alexnet_and_symbolic():
    net = analyze(SPECS / "zoo/alexnet.yaml")
    conv2 = effective_fields(net.graph).of(net.row("conv2").node)
    # conv1 (11/4/2): variance 120/12 = 10, mean 5 - 2 = 3; pool1 (3/2 at jump 4): + 16·8/12,
    # mean + 4; conv2 (5/1/2 at jump 8): + 64·24/12, mean unchanged
    assert conv2.variance == (Fraction(446, 3),) * 2 and conv2.mean == (7, 7)
    assert conv2.mass == 192 * 64 * 25 * 3 * 121  # output maps · input maps · taps · conv1's paths
    quiz = analyze(SPECS / "quiz_conv.yaml", symbolic=True)
    m = effective_fields(quiz.graph).of(quiz.rows[0].node)
    assert [str(v) for v in m.variance] == ["M**2/12 - 1/12", "N**2/12 - 1/12"]


def test_effective_field_of_a_residual_mixes_the_paths():
    body = [{"type": "conv1d", "out_channels": 1, "kernel_size": 3, "padding": 1}]
    net = analyze(spec([{"type": "residual", "body": body}], (1, 16)))
    m = effective_fields(net.graph).of(net.graph.nodes[-1])
    # the identity (1 path at 0) and the convolution (3 paths at -1, 0, 1): mean 0, variance 2/4
    assert (m.mass, m.mean, m.variance) == (4, (0,), (Fraction(1, 2),))


def test_effective_field_is_absent_where_the_gradient_is_not_linear():
    net = analyze(SPECS / "zoo/efficientnet_b0.yaml")
    erf = effective_fields(net.graph)
    gated = [row for row in net.rows if row.type == "mul"]
    assert gated and all(erf.of(row.node) is None for row in gated)  # an SE gate multiplies


@pytest.mark.parametrize("name, values", [("lenet5.yaml", {}), ("alexnet.yaml", {}),
                                          ("zoo/resnet18.yaml", {}), ("zoo/googlenet.yaml", {}),
                                          ("zoo/unet.yaml", {"S": 188}), ("zoo/convnext_tiny.yaml", {}),
                                          ("zoo/lenet5_1998.yaml", {})])  # fmt: skip
def test_fields_equal_the_gradient_support_in_pytorch(name, values):
    pytest.importorskip("torch", reason="needs the [verify] extra")
    from verify.rfcheck import rf_checks

    checks = rf_checks(analyze(SPECS / name, **values), limit=25)
    assert len(checks) >= 4
    assert [(c.name, c.expected, c.measured) for c in checks if not c.passed] == []
    assert any(c.name.startswith("erf:") for c in checks)  # the effective field, where linear


def _chain(n: int, activation: str | None, k: int = 3, extra: list | None = None) -> dict:
    layers: list = []
    for i in range(n):
        layers.append({"type": "conv2d", "out_channels": 8, "kernel_size": k, "bias": False})
        if activation and i < n - 1:
            layers.append({"type": activation})
        if extra and i == 1:
            layers += extra
    return {"name": "chain", "input": [8, 29, 29], "layers": layers}


@pytest.mark.parametrize("net, variance", [
    (_chain(8, None), Fraction(16, 3)),  # n(k²-1)/12 = 8·8/12: exact in expectation
    (_chain(8, "relu"), Fraction(16, 3)),  # gates assumed independent of the weights
    (_chain(8, "tanh"), Fraction(16, 3)),
    (_chain(5, "relu", k=5), Fraction(10)),  # 5·24/12
    (_chain(6, "relu", extra=[{"type": "avgpool2d", "kernel_size": 2},
                              {"type": "batchnorm2d"}]), None),
])  # fmt: skip
def test_effective_field_under_random_init_is_the_path_distribution(net, variance):
    """Luo et al.'s random-init effective field: E[g²] over initialisations has the width
    of the all-ones path count (the init model's independence assumption), measured in
    PyTorch over 64 initialisations of the recommended scheme."""
    pytest.importorskip("torch", reason="needs the [verify] extra")
    from verify.rfcheck import erf_init_check

    analysis = analyze(net)
    (check,) = erf_init_check(analysis)
    assert check.passed, (check.expected, check.measured, check.detail)
    if variance is not None:
        assert check.expected == [round(float(variance), 4)] * 2
    assert all(abs(m - e) / e < 0.06 for m, e in zip(check.measured, check.expected))


def test_the_random_init_check_fails_where_the_width_is_wrong(monkeypatch):
    """The check has power: a prediction 15 % too wide fails against the same samples."""
    pytest.importorskip("torch", reason="needs the [verify] extra")
    from archcalc.quantities import effective
    from verify import rfcheck

    real = effective.EffectiveFields.of

    def wider(self, node):
        m = real(self, node)
        if m is None:
            return None
        return effective.Moments(m.mass, m.jump, m.mean, tuple(v * 1.15 for v in m.variance))

    monkeypatch.setattr(effective.EffectiveFields, "of", wider)
    (check,) = rfcheck.erf_init_check(analyze(_chain(8, "relu")))
    assert not check.passed


def test_the_random_init_check_takes_the_chain_before_any_sum():
    """After a sum the branches mix by their gains, not by their path counts: the check looks
    at the deepest layer the input reaches by a chain; none for a network too large to
    sample (AlexNet: its chain is there, 0.7 GMACs are not)."""
    pytest.importorskip("torch", reason="needs the [verify] extra")
    from verify.rfcheck import erf_init_check

    conv = {"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1, "bias": False}
    net = {"name": "r", "input": [8, 21, 21], "layers": [
        {**conv, "padding": 0, "activation": "relu"}, {**conv, "padding": 0},
        {"type": "residual", "body": [{**conv, "activation": "relu"}, conv]}, {"type": "relu"},
        {**conv, "padding": 0}]}  # fmt: skip
    (check,) = erf_init_check(analyze(net))
    assert check.name == "erf-init:layers[2].body[1]" and check.passed  # the add is not
    assert erf_init_check(analyze(SPECS / "alexnet.yaml")) == []


@pytest.mark.parametrize("groups", [1, 2, 4, 8])
def test_grouped_windows_read_their_own_channels_runs(groups):
    """Groups lying wholly in one run of alike channels are taken at once; the result equals
    the same convolution written out group by group (narrow, convolve, concatenate),
    including groups that straddle the two runs."""
    branches = [
        {"type": "conv1d", "out_channels": 3, "kernel_size": 3, "name": "a", "input": "input"},
        {"type": "conv1d", "out_channels": 5, "kernel_size": 5, "padding": 1, "name": "b",
         "input": "input"},
        {"type": "concat", "inputs": ["a", "b"], "name": "ab"},
    ]  # fmt: skip
    grouped = analyze(spec([*branches, {"type": "conv1d", "out_channels": 8, "kernel_size": 3,
                                        "groups": groups}], (1, 32)))  # fmt: skip
    per = 8 // groups
    split = [layer for g in range(groups) for layer in (
        {"type": "narrow", "dim": 0, "start": g * per, "length": per, "input": "ab"},
        {"type": "conv1d", "out_channels": per, "kernel_size": 3, "name": f"g{g}"})]  # fmt: skip
    split += [{"type": "concat", "inputs": [f"g{g}" for g in range(groups)]}] * (groups > 1)
    written_out = analyze(spec([*branches, *split], (1, 32)))

    def runs(net):
        erf = effective_fields(net.graph)
        return [(c, m.mass, m.mean, m.variance) for c, m in erf.channels[net.graph.nodes[-1].id]]

    assert [c for c, *_ in runs(grouped)] != [8] or groups == 1  # the runs are told apart
    assert runs(grouped) == runs(written_out)


def test_a_depthwise_window_over_a_trillion_channels_is_one_step():
    # found by benchmarks/fuzz.py: MobileNetV2 with a block dropped multiplies its channels
    # to 10^13, and the effective field walked every depthwise group (a hang in `rf`)
    def net(channels: int):
        return analyze(spec([{"type": "conv1d", "out_channels": channels, "kernel_size": 3,
                              "groups": channels}], (channels, 16)))  # fmt: skip

    small, huge = net(4), net(10**12)
    a = effective_fields(small.graph).of(small.rows[-1].node)
    b = effective_fields(huge.graph).of(huge.rows[-1].node)
    assert (b.mass, b.mean, b.variance) == (a.mass * 10**12 // 4, a.mean, a.variance)
