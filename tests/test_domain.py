"""The worked answers of the course (shared DOMAIN.md) must come out exactly."""

from __future__ import annotations

import pytest

from archcalc import analyze
from archcalc.quantities.expectations import check_expectations
from tests.conftest import SPECS

# spec, layer path -> weights per neuron, output (channels first), neurons, connections, params
WORKED = [
    ("lenet5_32.yaml", "conv1", 26, (6, 28, 28), 4704, 122304, 156),
    ("alexnet_conv1_224.yaml", "conv1", 364, (96, 55, 55), 290400, 105705600, 34944),
    ("alexnet_conv1_224.yaml", "pool1", None, (96, 27, 27), None, None, 0),
    ("atari_dqn.yaml", "conv1", 257, (16, 20, 20), 6400, 1644800, 4112),
    ("atari_dqn.yaml", "conv2", 257, (32, 9, 9), 2592, 666144, 8224),
    ("atari_dqn.yaml", "fc", 2593, (256,), 256, 663808, 663808),
    ("atari_dqn.yaml", "output", 257, (18,), 18, 4626, 4626),
]


@pytest.mark.parametrize("name, layer, per_neuron, output, neurons, connections, params", WORKED)
def test_worked_answers(name, layer, per_neuron, output, neurons, connections, params):
    row = analyze(SPECS / name).row(layer)
    assert (row.weights_per_neuron, row.output, row.neurons) == (per_neuron, output, neurons)
    assert (row.connections, row.params) == (connections, params)


@pytest.mark.parametrize(
    "name, params, neurons",
    [
        ("atari_dqn.yaml", 680770, None),
        ("lenet5.yaml", 44426, None),
        ("lenet5_32.yaml", 61706, None),
        ("alexnet.yaml", 60965224, 659272),  # "60 million parameters and 650,000 neurons"
    ],
)
def test_network_totals(name, params, neurons):
    totals = analyze(SPECS / name).totals
    assert totals["params"] == params
    if neurons is not None:
        assert totals["neurons"] == neurons


def test_lenet_first_linear_layer_inputs():
    assert analyze(SPECS / "lenet5.yaml").row("fc1").input == (256,)  # 16*4*4
    assert analyze(SPECS / "lenet5_32.yaml").row("fc1").input == (400,)  # 16*5*5


def test_quiz_answers_are_symbolic_and_substitute():
    quiz = analyze(SPECS / "quiz_conv.yaml")
    assert quiz.symbolic
    assert [str(v) for v in quiz.to_dict()["output"]] == [
        "i", "floor((J + 2*P - M)/s) + 1", "floor((K + 2*P - N)/s) + 1",
    ]  # fmt: skip
    assert quiz.to_dict()["totals"]["params"] == "i*(L*M*N + 1)"
    lecture = dict(J=224, K=224, L=3, i=96, M=11, N=11, s=4, P=2)
    numeric = analyze(SPECS / "quiz_conv.yaml", **lecture)
    assert numeric.output == (96, 55, 55) and numeric.totals["params"] == 34944
    assert numeric.totals["connections"] == 105705600
    pool = analyze(SPECS / "quiz_pool.yaml", J=55, K=55, C=96, F=3, s=2)
    assert pool.output == (96, 27, 27)
    assert analyze(SPECS / "quiz_pool.yaml").to_dict()["output"] == [
        "C", "floor((J - F)/s) + 1", "floor((K - F)/s) + 1",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "path", sorted(SPECS.glob("*.yaml")) + sorted(SPECS.glob("zoo/*.yaml")), ids=lambda p: p.name
)
def test_shipped_specs_meet_their_expectations(path):
    analysis = analyze(path)
    assert analysis.spec.expect is not None or any(item.expect for item in analysis.items)
    assert check_expectations(analysis) == []


def test_a_wrong_expectation_is_reported():
    import yaml

    data = yaml.safe_load((SPECS / "atari_dqn.yaml").read_text())
    data["layers"][1]["expect"]["connections"] = 666000
    found = [str(m) for m in check_expectations(analyze(data))]
    assert found == ["layers[1] connections: expected 666000, computed 666144"]


# torchvision's published figures: parameters exactly, GFLOPS (= MACs) as rounded there
ZOO = [
    ("vgg16", 138357544, "15.47"), ("vgg19", 143667240, "19.63"), ("resnet18", 11689512, "1.81"),
    ("resnet34", 21797672, "3.66"), ("resnet50", 25557032, "4.09"), ("resnet152", 60192808, "11.51"),
    ("alexnet", 61100840, "0.71"), ("googlenet", 6624904, "1.5"), ("densenet121", 7978856, "2.83"),
]  # fmt: skip


@pytest.mark.parametrize("name, params, gflops", ZOO)
def test_zoo_matches_published_figures(name, params, gflops):
    totals = analyze(SPECS / "zoo" / f"{name}.yaml").totals
    assert totals["params"] == params
    digits = len(gflops.replace(".", "").lstrip("0"))
    assert f"{totals['macs'] / 1e9:.{digits}g}" == gflops


def test_nature_dqn_layer_table():
    net = analyze(SPECS / "zoo" / "dqn_nature.yaml")
    assert [net.row(n).output for n in ("conv1", "conv2", "conv3", "fc")] == [
        (32, 20, 20), (64, 9, 9), (64, 7, 7), (512,),
    ]  # fmt: skip
    assert net.totals["params"] == 1693362 and analyze(
        SPECS / "zoo" / "dqn_nature.yaml", actions=4
    ).output == (4,)


def test_preactivation_resnet_moves_only_the_batch_norms():
    plain = analyze(SPECS / "zoo" / "resnet18.yaml")
    pre = analyze(SPECS / "zoo" / "preact_resnet18.yaml")
    convs = lambda a: sum(r.params for r in a.rows if r.fan_in is not None)  # noqa: E731
    assert convs(plain) == convs(pre) == 11689512 - 9600
    assert pre.totals["params"] == 11687848 and pre.totals["macs"] == plain.totals["macs"]
    # nothing follows the sum in a pre-activation block; ResNet-18 applies ReLU after it
    assert not any(r.path.endswith("layers[0].activation") for r in pre.rows)
    assert any(r.path.endswith("layers[0].activation") for r in plain.rows)


def test_lenet5_as_published_in_1998():
    net = analyze(SPECS / "zoo" / "lenet5_1998.yaml")
    table = {name: (net.row(name).params, net.row(name).connections) for name in
             ("C1", "S2", "C3", "S4", "C5", "F6", "output")}  # fmt: skip
    assert table == {"C1": (156, 122304), "S2": (12, 5880), "C3": (1516, 151600), "S4": (32, 2000),
                     "C5": (48120, 48120), "F6": (10164, 10164), "output": (0, 840)}  # fmt: skip
    assert (net.totals["params"], net.totals["connections"]) == (60000, 340908)
    assert net.row("C3").weights_per_neuron is None  # 76, 101 or 151 depending on the map
    assert net.row("S2").weights_per_neuron == 5  # 4 inputs + bias
