"""Course questions: augmentation counts, published figures, the backward init rule, minimum
input sizes."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from archcalc import ArchcalcError, analyze
from archcalc.cli import main
from archcalc.init.recommend import recommend, weight_variance
from archcalc.questions.augment import augmentation
from archcalc.questions.explain import published_text, significant
from archcalc.render.tables import assumption_lines
from tests.conftest import SPECS


@pytest.mark.parametrize("image, crop, flip, patches, paper, test", [
    ((256, 256), (224, 224), True, 2178, 2048, 10),   # AlexNet: 33·33·2, the paper's 32·32·2
    ((256, 256), (224, 224), False, 1089, 1024, 5),
    ((32, 32), (28, 28), True, 50, 32, 10),
    ((256, 320), (224, 224), True, 33 * 97 * 2, 32 * 96 * 2, 10),
    ((224, 224), (224, 224), True, 2, 0, 10),          # one position, two reflections
])  # fmt: skip
def test_augmentation_counts(image, crop, flip, patches, paper, test):
    a = augmentation(image, crop, flip)
    assert (a.patches, a.paper_factor, a.test_patches) == (patches, paper, test)


def test_augment_command(capsys):
    assert main(["augment", "--image", "256", "--crop", "224", "--flip"]) == 0
    out = capsys.readouterr().out
    assert "33 × 33 × 2 (horizontal reflections) = 2,178" in out and '"a factor of 2048"' in out
    assert main(["augment", "--image", "256", "--crop", "224", "--flip", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["patches"] == 2178
    assert main(["augment", "--image", "200", "--crop", "224"]) == 1
    assert "the crop must fit the image" in capsys.readouterr().err


def test_published_figures_say_which_convention_they_match(capsys):
    assert main(["explain", str(SPECS / "alexnet.yaml")]) == 0
    out = capsys.readouterr().out.split("published figures:")[1]
    assert (
        "60,000,000 parameters (the paper): matches parameters 60,965,224 (to 1 significant digit)"
        in out
    )
    assert "650,000 neurons (the paper): neurons 659,272, loosely rounded (1.4% above" in out
    assert (
        '630,000,000 connections (the course slide, "630 million connections"): matches no '
        "convention archcalc counts (parameters 60,965,224, neurons 659,272, connections "
        "725,066,088, MACs 724,406,816, FLOPs 1,448,813,632; to 2 significant digits)"
    ) in out


def test_significant_digits_and_matching():
    assert [significant(v) for v in (6.3e8, 6e7, 1.5e9, 4.1, 1000)] == [2, 1, 2, 2, 1]

    class Figure:
        value, says, source, digits = 1.45e9, "FLOPs", None, None

    totals = {"params": 1, "neurons": 1, "connections": 1, "macs": 724406816, "flops": 1448813632}
    assert (
        published_text(Figure, totals)
        == "1,450,000,000 FLOPs: matches FLOPs 1,448,813,632 (to 3 significant digits)"
    )


def test_kaiming_out_keeps_the_gradient_variance():
    net = analyze(SPECS / "deep_relu_mlp.yaml")
    recs = recommend(net)
    assert weight_variance(recs[0], "kaiming_out") == Fraction(2, 128) == 2 / recs[0].fans.fan_out
    from archcalc.init.propagation import propagate

    layers = propagate(net, "kaiming_out").layers
    assert {round(layer.backward, 9) for layer in layers[:-1]} == {2.0}  # G1·n_out·Var[w] = 1


def _relu_mlp(depth: int) -> dict:
    hidden = [{"type": "linear", "out_features": 128, "activation": "relu"}] * (depth - 1)
    return {"name": f"relu{depth}", "input": [64],
            "layers": [*hidden, {"type": "linear", "out_features": 10}]}  # fmt: skip


def test_he_et_al_22_layers_degrade_30_layers_vanish():
    from archcalc.init.propagation import propagate

    shallow = propagate(analyze(_relu_mlp(22)), "lecun").verdict
    deep = propagate(analyze(_relu_mlp(30)), "lecun").verdict
    # 2^21 = 2,097,152 trains (more slowly); 2^29 = 536,870,912 stalls
    assert "degrading signal from depth 8 (layers[7]), 1/2.1e+06 at depth 22" in shallow
    assert "trains, more slowly" in shallow and "vanishing" not in shallow
    assert "vanishing signal from depth 8 (layers[7]), 1/5.37e+08 at depth 30" in deep
    assert "expect training to stall" in deep
    assert "exploding gradient" in propagate(analyze(_relu_mlp(3)), "normal:100").verdict


@pytest.mark.parametrize(
    ("value", "word"),
    [(0.5, None), (0.009, "degrading"), (1.01e-8, "degrading"), (0.99e-8, "vanishing"),
     (101.0, "growing"), (1e8, "growing"), (1.01e8, "exploding"), (0.0, "vanishing")],
)  # fmt: skip
def test_layer_flags_by_how_far_out(value, word):
    from archcalc.init.propagation import LayerPrediction

    layer = LayerPrediction(1, None, 1.0, value, 1.0, value, 1.0, 1.0, 1.0)
    assert layer.flag() == word


def test_init_table_shows_the_gains(capsys):
    assert main(["init", str(SPECS / "deep_relu_mlp.yaml")]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("Path"))
    assert header.split()[3:5] == ["G0", "G1"]
    assert "G0 = E[φ(z)²]/Var[z] and G1 = E[φ'(z)²]" in out


def test_symbolic_sizes_summarised_as_the_smallest_input():
    net = analyze(SPECS / "zoo/unet.yaml", symbolic=True)
    assert len(net.assumptions) > 20
    (line,) = assumption_lines(net.assumptions)
    assert line.startswith("assumes: S >= 188 (the tightest of")
    # and 188 is right: the smallest U-Net input analysed without a problem
    analyze(SPECS / "zoo/unet.yaml", S=188)
    with pytest.raises(ArchcalcError):
        analyze(SPECS / "zoo/unet.yaml", S=187)


# ----------------------------------------------------------------------------- pictures


def _svg(tmp_path, *argv) -> str:
    path = tmp_path / "picture.svg"
    assert main(["draw", *argv, "-o", str(path)]) == 0
    return path.read_text()


def test_draw_a_convolution_with_padding_and_stride(tmp_path):
    svg = _svg(tmp_path, str(SPECS / "quiz_conv.yaml"), "--layer", "layers[0]", "--set", "J=7", "--set",
               "K=7", "--set", "L=1", "--set", "i=1", "--set", "M=3", "--set", "N=3", "--set", "s=2",
               "--set", "P=1")  # fmt: skip
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    # a 9×9 padded grid: 32 padding cells (dashed) and 49 input cells, plus 16 output cells
    assert svg.count('stroke-dasharray="4 3"') == 81 - 49
    assert "floor((7 + 2·1 - 1·2 - 1)/2) + 1 = 4" in svg and "stride 2" in svg


def test_draw_shows_the_uncovered_border_and_a_transposed_convolution(tmp_path):
    svg = _svg(
        tmp_path, str(SPECS / "zoo/resnet18.yaml"), "--layer", "layers[5].layers[0].shortcut[0]"
    )
    assert "1 position never covered" in svg  # (56 - 1)/2 = 27.5; the corner view cannot show it
    svg = _svg(tmp_path, str(SPECS / "quiz_conv.yaml"), "--layer", "layers[0]", "--set", "J=8", "--set",
               "K=8", "--set", "L=1", "--set", "i=1", "--set", "M=3", "--set", "N=3", "--set", "s=2",
               "--set", "P=1")  # fmt: skip
    assert (
        "1 position never covered" in svg and svg.count('fill="#f4b6b6"') == 10 + 9
    )  # last row, column
    svg = _svg(tmp_path, str(SPECS / "zoo/dcgan_generator.yaml"), "--layer", "layers[3].layers[0]")
    assert "(4 - 1)·2 - 2·1 + 1·3 + 0 + 1 = 8" in svg and 'fill="#f3f3f3"' in svg  # inserted zeros


def test_draw_layer_arrow_label_stays_between_the_grids():
    from archcalc.render.draw import layer_picture

    for spec, layer in (("zoo/dcgan_generator.yaml", "layers[6]"), ("lenet5.yaml", "conv1")):
        canvas = layer_picture(analyze(SPECS / spec), layer)
        texts = [item for item in canvas.items if item[0] == "text"]
        (label,) = [t for t in texts if "convolution" in t[3] and len(t[3].split()) <= 2]
        _, x, _, text, size, anchor, *_ = label
        assert anchor == "middle"
        # the output grid is the last outlined rectangle drawn right of the input grid
        out_left = max(item[1] for item in canvas.items if item[0] == "rect" and item[7] == 1.2)
        assert x + len(text) * size * 0.6 / 2 < out_left, (spec, text)


def test_draw_layer_names_only_what_it_shows():
    from archcalc.render.draw import layer_picture

    def texts(spec: str, layer: str) -> str:
        canvas = layer_picture(analyze(SPECS / spec), layer)
        return "\n".join(item[3] for item in canvas.items if item[0] == "text")

    plain = texts("alexnet.yaml", "layers[0]")  # 227, no padding, every position covered
    assert "white: input   coloured: the first windows and the units they make" in plain
    assert "padding" not in plain.split("\n")[-1] and "the 227×227 input, and of" in plain
    assert "stride 4" in plain
    padded = texts("alexnet_conv1_224.yaml", "layers[0]")  # P = 2: one position never covered
    assert "grey dashed: padding   red: never covered" in padded
    assert "the 228×228 padded grid" in padded
    spread = texts("zoo/dcgan_generator.yaml", "layers[6]")  # a transposed convolution
    assert "step 1" in spread and "stride 1" not in spread and "light: inserted zeros" in spread


def test_draw_refuses_what_it_cannot_draw(tmp_path, capsys):
    assert (
        main(
            [
                "draw",
                str(SPECS / "lenet5.yaml"),
                "--layer",
                "layers[0]",
                "-o",
                str(tmp_path / "x.txt"),
            ]
        )
        == 1
    )
    assert "expected a file name ending in .svg or .png" in capsys.readouterr().err
    assert (
        main(
            [
                "draw",
                str(SPECS / "mlp4.yaml"),
                "--layer",
                "layers[0]",
                "-o",
                str(tmp_path / "x.svg"),
            ]
        )
        == 1
    )
    assert "draw --layer shows windowed layers" in capsys.readouterr().err


def test_draw_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "conv1.png"
    assert main(["draw", str(SPECS / "alexnet.yaml"), "--layer", "conv1", "-o", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_draw_the_network_as_lectures_draw_lenet(tmp_path, golden):
    svg = _svg(tmp_path, str(SPECS / "lenet5.yaml"))
    # one block per layer with its shape on it, C@H×W for maps, N for vectors
    for shape in ("1@28×28", "6@24×24", "6@12×12", "16@8×8", "16@4×4", ">256<", ">120<", ">84<"):
        assert shape in svg, shape
    assert "conv2d 5×5 + relu" in svg and "maxpool2d 2×2 /2" in svg and "30,840 params" in svg
    assert svg.count('marker-end="url(#arrow)"') == 8  # a chain: one arrow per layer
    golden("lenet5.yaml.draw.svg", svg)


def test_draw_skips_as_arcs_and_composites_folded(tmp_path):
    from archcalc.render.network import network_picture

    unet = network_picture(analyze(SPECS / "zoo/unet.yaml"))
    from archcalc.render.network import ARCS

    arcs = [item for item in unet.items if item[0] == "line" and item[5] in ARCS]
    # four skips (encoder -> crop) and four concats reading the upsampling two units back;
    # each arc is drawn up, across and down
    assert len(arcs) == 3 * (4 + 4)
    resnet = analyze(SPECS / "zoo/resnet50.yaml")
    folded = network_picture(resnet)
    texts = [item[3] for item in folded.items if item[0] == "text"]
    assert "5 × bottleneck" in texts and "2048@7×7" in texts
    opened = network_picture(resnet, ["layers[4]", "layers[4].layers[0]"])
    texts = [item[3] for item in opened.items if item[0] == "text"]
    assert {"body[0]", "shortcut[0]", "+"} <= set(texts) and "layers[4]" not in texts
    everything = network_picture(resnet, ["all"])
    assert sum(item[0] == "rect" and item[5] == "#fff" for item in everything.items) == 16  # adds


def test_draw_arcs_at_one_unit_side_by_side():
    """A unit several arcs reach or leave (an Inception concat) gets them on separate lines."""
    from archcalc.render.network import ARCS, network_picture

    branches = [[{"type": "conv2d", "out_channels": 2, "kernel_size": 1}] * n for n in (1, 2, 3, 4)]
    net = {"name": "t", "input": [3, 8, 8], "layers": [
        {"name": "cat", "type": "concat", "branches": branches},
        {"name": "a", "type": "conv2d", "out_channels": 8, "kernel_size": 1},
        {"name": "sum", "type": "add", "inputs": ["a", "cat"]},
        {"type": "concat", "inputs": ["a", "cat", "sum"]},
    ]}  # fmt: skip
    canvas = network_picture(analyze(net), ["all"])
    arcs = [item for item in canvas.items if item[0] == "line" and item[5] in ARCS]
    vertical = [item[1] for item in arcs if item[1] == item[3]]
    assert len(vertical) == 2 * len(arcs) // 3 > 8
    assert len(set(vertical)) == len(vertical)  # no two arcs drop or rise on one line


def test_draw_expand_opens_a_block_call_down_to_its_items():
    """--expand of a block whose body is one composite (Inception's Mixed_5b: one concat)
    shows the composite's items, not the same single unit renamed layers[0]."""
    from archcalc.render.network import network_picture

    conv = {"type": "conv2d", "out_channels": 2, "kernel_size": 1}
    net = {"name": "t", "input": [3, 8, 8],
           "blocks": {"mixed": {"layers": [{"type": "concat", "branches": [[conv], [conv, conv]]}]}},
           "layers": [{"name": "m", "type": "mixed"}, {"type": "flatten"}]}  # fmt: skip
    texts = [item[3] for item in network_picture(analyze(net), ["m"]).items if item[0] == "text"]
    assert {"branches[0][0]", "branches[1][1]", "concat"} <= set(texts)
    assert "m" not in texts and "layers[0]" not in texts


def test_draw_network_refusals(tmp_path, capsys):
    out = tmp_path / "x.svg"
    assert (
        main(["draw", str(SPECS / "zoo/resnet50.yaml"), "--expand", "layer9", "-o", str(out)]) == 1
    )
    assert "--expand: no item 'layer9' in resnet50" in capsys.readouterr().err
    assert main(["draw", str(SPECS / "quiz_conv.yaml"), "-o", str(out)]) == 1
    assert ("draw needs numbers; give J, K, L, i, M, N, s and P values (--set J=VALUE --set "
            "K=VALUE ...)") in capsys.readouterr().err  # fmt: skip
    with pytest.raises(SystemExit):
        main(
            [
                "draw",
                str(SPECS / "lenet5.yaml"),
                "--layer",
                "conv1",
                "--expand",
                "all",
                "-o",
                str(out),
            ]
        )


def test_draw_brackets_every_opened_composite_with_its_path():
    """With every composite open, ResNet-18's items are all body[0]...body[4]: a bracket under
    each opened composite says whose they are, an outer one below its inner ones."""
    from archcalc.render.network import network_picture

    canvas = network_picture(analyze(SPECS / "zoo/resnet18.yaml"), ["all"])
    texts = {item[3]: item[2] for item in canvas.items if item[0] == "text"}  # text -> y
    outer, first, second = ("layers[4]: 2 × basic, 147,968 params",
                            "[0].layers[0]: basic, 73,984 params",
                            "[1].layers[0]: basic, 73,984 params")  # fmt: skip
    assert {outer, first, second} <= set(texts)
    assert texts[outer] > texts[first] == texts[second] > texts["body[0]"]
    # one bracket (three lines: two ticks and the span) per opened composite: the 7 items
    # after the stem, and the two blocks of layers[4] (a composite whose body is a single
    # composite opens through to it, so the 1 x basic repeats are one bracket each)
    grey = [item for item in canvas.items if item[0] == "line" and "#999" in item]
    assert len(grey) == 3 * (7 + 2)
