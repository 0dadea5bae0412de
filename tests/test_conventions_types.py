"""archcalc conventions on the layer types beyond the first eight models: each tool's rule,
hand-computed on tiny specs; the ResNet paper's v1 figure; calflops' FLOPs."""

from __future__ import annotations

import pytest

from archcalc.quantities.analysis import analyze
from archcalc.quantities.conventions import conventions, tool_figure
from archcalc.quantities.resnet_paper import v1_bottlenecks
from tests.conftest import ROOT

# [3,5,5] -> conv_transpose2d 4 maps, 3x3, stride 2, padding 1, output_padding 1 -> [4,10,10]:
# MACs = C_in·C_out·k²·input positions = 3·4·9·25 = 2700; 112 parameters (108 + 4 bias)
TRANSPOSE = {"name": "t", "input": [3, 5, 5], "layers": [
    {"type": "conv_transpose2d", "out_channels": 4, "kernel_size": 3, "stride": 2,
     "padding": 1, "output_padding": 1}]}  # fmt: skip


def diff(tool: str, spec) -> int:
    figure = tool_figure(analyze(spec), tool)
    return (figure.value if figure.value is not None else figure.known) - figure.macs


@pytest.mark.parametrize(
    "tool, expected",
    [
        ("torchinfo", 112 * 100 - 2700),  # parameters at every output position
        ("fvcore", 0),
        ("ptflops", 400),  # bias: 1 per output element
        ("ptflops-aten", 400),
        ("thop", 400 * 3 * 9 - 2700),  # as a convolution: per output element C_in·k²
        ("torchscan", 400 * 3 * 9 + 4 * 2 - 2700),  # ... + 4 per spatial dimension
        ("calflops", 0),  # one group: its MACs are archcalc's
        # 2·MACs + bias over the sizes of the *convolution* formula: (5 + 2 − 3)//2 + 1 = 3
        ("calflops-flops", 2 * 2700 + 4 * 3 * 3 - 2700),
    ],
)  # fmt: skip
def test_conv_transpose_by_hand(tool, expected):
    assert analyze(TRANSPOSE).totals["macs"] == 2700
    assert diff(tool, TRANSPOSE) == expected


def test_grouped_conv_transpose_under_calflops():
    # [4,5,6] -> 6 maps, 2x2, stride 2, 2 groups: MACs 4·3·4·30 = 1440; calflops reads C_out
    # from the weight's second dimension (6/2 = 3) and divides by the groups again: 4·1·4·30
    spec = {"name": "g", "input": [4, 5, 6], "layers": [
        {"type": "conv_transpose2d", "out_channels": 6, "kernel_size": 2, "stride": 2,
         "groups": 2}]}  # fmt: skip
    assert diff("calflops", spec) == 480 - 1440
    # FLOPs: 2·480 + bias 3 maps · (2·3) conv-formula positions
    assert diff("calflops-flops", spec) == 960 + 18 - 1440


@pytest.mark.parametrize(
    "layer, expected",
    [
        # [3,4,5]: 60 elements, 3 channels
        ({"type": "instance_norm2d"}, {"torchinfo": 0, "fvcore": 240, "ptflops": 60, "thop": 120,
                                       "calflops-flops": 240}),
        ({"type": "instance_norm2d", "affine": True},
         {"torchinfo": 6, "fvcore": 300, "ptflops": 120, "thop": 240, "calflops-flops": 300}),
        ({"type": "group_norm", "num_groups": 3},
         {"torchinfo": 6, "fvcore": 300, "ptflops": 120, "thop": 0, "calflops-flops": 300}),
        ({"type": "prelu", "num_parameters": 3},
         {"torchinfo": 3, "fvcore": 0, "ptflops": 120, "thop": 60, "calflops-flops": 60}),
        ({"type": "elu"}, {"torchinfo": 0, "ptflops": 120, "thop": 0, "calflops-flops": 60}),
        ({"type": "hardswish"}, {"torchinfo": 0, "fvcore": 0, "ptflops": 0, "thop": 0,
                                 "calflops-flops": 0}),
        ({"type": "relu6"}, {"ptflops": 60, "calflops-flops": 0}),  # nn.ReLU6 calls F.hardtanh
        ({"type": "mean", "dims": [1, 2]}, {"fvcore": 0, "ptflops": 0, "thop": 0}),
        # [3,4,5] -> [3,8,10]: 240 output elements, 80 output positions
        ({"type": "upsample", "scale_factor": 2},
         {"fvcore": 240, "ptflops": 480, "thop": 240, "calflops-flops": 80}),
        ({"type": "upsample", "scale_factor": 2, "mode": "bilinear"},
         {"fvcore": 960, "ptflops": 480, "thop": 11 * 240, "calflops-flops": 80}),
        ({"type": "upsample", "scale_factor": 2, "mode": "bicubic"},
         {"fvcore": 0, "ptflops": 480, "thop": 259 * 240, "calflops-flops": 80}),
    ],
)  # fmt: skip
def test_norms_activations_upsampling_by_hand(layer, expected):
    # a 1x1 convolution first (3·3·20 = 180 MACs, bias 60) so that calflops has a parameter
    spec = {"name": "x", "input": [3, 4, 5],
            "layers": [{"type": "conv2d", "out_channels": 3, "kernel_size": 1}, layer]}  # fmt: skip
    conv = {"torchinfo": 60, "fvcore": 0, "ptflops": 60, "thop": 0, "calflops-flops": 180 + 60}
    for tool, count in expected.items():
        assert diff(tool, spec) == conv[tool] + count, tool


def test_one_d_and_three_d_under_fvcore():
    # fvcore handles adaptive average pooling and nearest upsampling on 2-d maps only
    for spec in (
        {"name": "a", "input": [3, 8], "layers": [{"type": "adaptive_avgpool1d", "output_size": 2}]},
        {"name": "b", "input": [2, 2, 3, 4], "layers": [{"type": "upsample", "scale_factor": 2}]},
    ):  # fmt: skip
        assert diff("fvcore", spec) == 0
    spec = {"name": "c", "input": [3, 4, 4], "layers": [
        {"type": "adaptive_avgpool2d", "output_size": 2}]}  # fmt: skip
    assert diff("fvcore", spec) == 48


def test_lenet_1998_layers_by_hand():
    # table conv 3 maps of [0],[1,2],[0,1,2], 3x3, no bias, on [3,6,6] -> [3,4,4]:
    # MACs (1 + 2 + 3)·9·16 = 864; then 2x2 subsampling -> [3,2,2]: MACs 3·4·4 = 48, bias 12;
    # RBF on the 12 values -> 5 units: 60 MACs
    spec = {"name": "l", "input": [3, 6, 6], "layers": [
        {"type": "conv2d", "out_channels": 3, "kernel_size": 3, "bias": False,
         "connection_table": [[0], [1, 2], [0, 1, 2]]},
        {"type": "subsample"}, {"type": "flatten"}, {"type": "rbf", "out_features": 5}]}  # fmt: skip
    assert analyze(spec).totals["macs"] == 864 + 48 + 60
    # torchinfo: table weights (6·9) × 3 output maps; subsample its 6 parameters; RBF 0
    assert tool_figure(analyze(spec), "torchinfo").value == 54 * 3 + 6
    # ptflops and thop see neither module's F.conv2d nor the RBF's @
    assert tool_figure(analyze(spec), "ptflops").value == 0
    assert tool_figure(analyze(spec), "thop").value == 0
    # the aten backend counts the convolutions and the subsampling's bias adds
    assert tool_figure(analyze(spec), "ptflops-aten").value == 864 + 48 + 60 + 12
    # calflops: the patched F.conv2d counts both convolutions, the RBF's @ is not patched
    assert tool_figure(analyze(spec), "calflops").value == 864 + 48
    assert tool_figure(analyze(spec), "calflops-flops").value == 2 * (864 + 48) + 12
    assert tool_figure(analyze(spec), "torchscan").known == 0


def test_calflops_without_parameters_raises():
    spec = {"name": "n", "input": [4], "layers": [{"type": "relu"}]}
    for tool in ("calflops", "calflops-flops"):
        figure = tool_figure(analyze(spec), tool)
        assert figure.value is None and figure.raises == "StopIteration"
        assert figure.to_dict()["raises"] == "StopIteration"


# -- the ResNet paper's figure: v1 bottlenecks put the stride on the first 1x1


def bottleneck(size: int) -> dict:
    return {"name": "b", "input": [4, size, size], "layers": [{"type": "residual", "body": [
        {"type": "conv2d", "out_channels": 2, "kernel_size": 1, "bias": False},
        {"type": "batchnorm2d"}, {"type": "relu"},
        {"type": "conv2d", "out_channels": 2, "kernel_size": 3, "stride": 2, "padding": 1,
         "bias": False},
        {"type": "batchnorm2d"}, {"type": "relu"},
        {"type": "conv2d", "out_channels": 8, "kernel_size": 1, "bias": False},
        {"type": "batchnorm2d"}],
        "shortcut": [{"type": "conv2d", "out_channels": 8, "kernel_size": 1, "stride": 2,
                      "bias": False}, {"type": "batchnorm2d"}]}]}  # fmt: skip


@pytest.mark.parametrize(
    "size, first, v1",
    [(6, 4 * 2 * 36, 4 * 2 * 9),  # 6x6 -> 3x3: the 1x1's positions divide by 4
     (7, 4 * 2 * 49, 4 * 2 * 16)],  # 7x7 -> 4x4 (ceil 7/2): 49 positions become 16
)  # fmt: skip
def test_v1_bottleneck_by_hand(size, first, v1):
    analysis = analyze(bottleneck(size))
    (block,) = v1_bottlenecks(analysis)
    assert (block.macs, block.v1_macs) == (first, v1)
    figures = {f.tool: f for f in conventions(analysis)}
    paper = figures["ResNet paper FLOPs (v1 layout)"]
    assert paper.value == int(analysis.totals["macs"]) - (first - v1)


def test_no_paper_figure_outside_the_resnet_family():
    for path in (
        "specs/lenet5.yaml",
        "specs/zoo/mobilenet_v2.yaml",
        "specs/zoo/resnext50_32x4d.yaml",
    ):
        tools = {f.tool for f in conventions(analyze(ROOT / path))}
        assert "ResNet paper FLOPs (v1 layout)" not in tools, path


#: He et al. 2015, Table 1 (x 10^9); ResNet-101 has no spec here.
PAPER = {"resnet18": 1.8, "resnet34": 3.6, "resnet50": 3.8, "resnet152": 11.3}


@pytest.mark.parametrize("name", list(PAPER))
def test_paper_figures_of_the_zoo_resnets(name):
    # the paper prints two digits, neither rounded nor truncated consistently (3.66 -> 3.6,
    # 11.28 -> 11.3): the v1 figure is within one unit of the last digit, torchvision's
    # v1.5 MACs of ResNet-50/152 (4.09, 11.51) are not
    figures = {f.tool: f for f in conventions(analyze(ROOT / "specs" / "zoo" / f"{name}.yaml"))}
    paper = figures["ResNet paper FLOPs (v1 layout)"].value
    assert abs(paper / 1e9 - PAPER[name]) < 0.1
    if name in ("resnet50", "resnet152"):
        assert abs(figures["torchvision GFLOPS"].value / 1e9 - PAPER[name]) > 0.2
