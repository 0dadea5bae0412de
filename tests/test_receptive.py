"""Receptive fields: hand-computed tables, symbols, several paths; and PyTorch's gradients."""

from __future__ import annotations

import json

import pytest

from archcalc import analyze
from archcalc.cli import main
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
