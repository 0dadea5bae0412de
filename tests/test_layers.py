"""Every layer type against hand-computed rows.

Each case: layer, input shape -> output, weights per neuron, neurons,
connections, parameters, MACs (None where a quantity does not apply).
"""

from __future__ import annotations

import pytest

from archcalc import analyze
from tests.conftest import spec

CASES = [
    # conv2d: LeNet conv1 (DOMAIN.md), 6 filters 5x5 over 32x32x1
    ({"type": "conv2d", "out_channels": 6, "kernel_size": 5}, [1, 32, 32],
     (6, 28, 28), 26, 4704, 122304, 156, 4704 * 25),
    # AlexNet conv1, lecture version: 224 + P=2, 96 filters 11x11, s=4
    ({"type": "conv2d", "out_channels": 96, "kernel_size": 11, "stride": 4, "padding": 2}, [3, 224, 224],
     (96, 55, 55), 364, 290400, 105705600, 34944, 290400 * 363),
    # grouped: AlexNet conv2, each filter sees 48 of 96 maps
    ({"type": "conv2d", "out_channels": 256, "kernel_size": 5, "padding": 2, "groups": 2}, [96, 27, 27],
     (256, 27, 27), 1201, 186624, 186624 * 1201, 307456, 186624 * 1200),
    # dilation 2, no bias: effective window 5, 10 - 5 + 1 = 6
    ({"type": "conv2d", "out_channels": 8, "kernel_size": 3, "dilation": 2, "bias": False}, [4, 10, 10],
     (8, 6, 6), 36, 288, 288 * 36, 288, 288 * 36),
    # rectangular: H = floor((9 + 2 - 3)/2) + 1 = 5, W = floor((12 - 5)/3) + 1 = 3
    ({"type": "conv2d", "out_channels": 3, "kernel_size": [3, 5], "stride": [2, 3], "padding": [1, 0]},
     [2, 9, 12], (3, 5, 3), 31, 45, 1395, 93, 1350),
    # padding 'same' with an even kernel keeps the size
    ({"type": "conv2d", "out_channels": 4, "kernel_size": 4, "padding": "same"}, [3, 17, 17],
     (4, 17, 17), 49, 1156, 1156 * 49, 196, 1156 * 48),
    ({"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": "valid"}, [3, 5, 5],
     (4, 3, 3), 28, 36, 1008, 112, 972),
    # conv1d: floor((100 - 5)/2) + 1 = 48
    ({"type": "conv1d", "out_channels": 8, "kernel_size": 5, "stride": 2}, [4, 100],
     (8, 48), 21, 384, 8064, 168, 7680),
    ({"type": "conv3d", "out_channels": 4, "kernel_size": 3}, [2, 8, 8, 8],
     (4, 6, 6, 6), 55, 864, 47520, 220, 864 * 54),
    # transposed: (7-1)*2 - 2 + 3 + 1 = 14; MACs = input units x (C_out/g) k^2
    ({"type": "conv_transpose2d", "out_channels": 32, "kernel_size": 4, "stride": 2, "padding": 1},
     [64, 7, 7], (32, 14, 14), None, 6272, 49 * 64 * 32 * 16 + 6272, 64 * 32 * 16 + 32, 49 * 64 * 32 * 16),
    ({"type": "conv_transpose2d", "out_channels": 4, "kernel_size": 3, "stride": 2, "output_padding": 1,
      "groups": 2, "bias": False}, [6, 5, 5], (4, 12, 12), None, 576, 25 * 6 * 2 * 9, 6 * 2 * 9, 25 * 6 * 2 * 9),
    # linear: DQN fc
    ({"type": "linear", "out_features": 256}, [2592], (256,), 2593, 256, 663808, 663808, 663552),
    ({"type": "linear", "out_features": 3, "bias": False}, [10], (3,), 10, 3, 30, 30, 30),
    # pooling
    ({"type": "maxpool2d", "kernel_size": 3, "stride": 2}, [96, 55, 55], (96, 27, 27), None, None, None, 0, 0),
    ({"type": "maxpool2d", "kernel_size": 3, "stride": 2, "ceil_mode": True}, [1, 6, 6],
     (1, 3, 3), None, None, None, 0, 0),
    # ceil_mode: a last window that would start in the right padding is dropped (4 -> 3)
    ({"type": "maxpool2d", "kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}, [1, 5, 5],
     (1, 3, 3), None, None, None, 0, 0),
    ({"type": "maxpool2d", "kernel_size": 2, "dilation": 2}, [1, 9, 9], (1, 4, 4), None, None, None, 0, 0),
    # ceil_mode lets a window hang off the padded input (found by the torch property test):
    # ceil((1 + 2 - 4)/2) + 1 = 1, and PyTorch accepts it
    ({"type": "avgpool2d", "kernel_size": 4, "stride": 2, "padding": 1, "ceil_mode": True}, [1, 1, 1],
     (1, 1, 1), None, None, None, 0, 0),
    ({"type": "avgpool2d", "kernel_size": 2}, [3, 8, 8], (3, 4, 4), None, None, None, 0, 0),
    ({"type": "avgpool2d", "kernel_size": 3, "stride": 1, "padding": 1}, [3, 8, 8], (3, 8, 8), None, None, None, 0, 0),
    ({"type": "maxpool1d", "kernel_size": 3, "stride": 2}, [4, 11], (4, 5), None, None, None, 0, 0),
    ({"type": "avgpool1d", "kernel_size": 4}, [2, 10], (2, 2), None, None, None, 0, 0),
    ({"type": "adaptive_avgpool2d", "output_size": 6}, [256, 13, 13], (256, 6, 6), None, None, None, 0, 0),
    ({"type": "adaptive_maxpool2d", "output_size": [1, 2]}, [512, 7, 7], (512, 1, 2), None, None, None, 0, 0),
    ({"type": "adaptive_avgpool1d", "output_size": 3}, [5, 9], (5, 3), None, None, None, 0, 0),
    # LeNet-5 1998: subsampling (4 inputs + bias per unit, 2 parameters per map), a table conv, RBF
    ({"type": "subsample", "kernel_size": 2}, [6, 28, 28], (6, 14, 14), 5, 1176, 5880, 12, 4704),
    ({"type": "conv2d", "out_channels": 3, "kernel_size": 5, "connection_table": [[0], [0, 1], [0, 1, 2]]},
     [3, 14, 14], (3, 10, 10), None, 300, 100 * (6 * 25 + 3), 6 * 25 + 3, 100 * 6 * 25),
    ({"type": "rbf", "out_features": 10}, [84], (10,), 84, 10, 840, 0, 840),
    # shape and normalisation
    ({"type": "flatten"}, [16, 4, 4], (256,), None, None, None, 0, 0),
    ({"type": "batchnorm2d"}, [64, 8, 8], (64, 8, 8), None, None, None, 128, 0),
    ({"type": "batchnorm2d", "affine": False}, [64, 8, 8], (64, 8, 8), None, None, None, 0, 0),
    ({"type": "batchnorm1d", "num_features": 20}, [20], (20,), None, None, None, 40, 0),
    ({"type": "batchnorm1d"}, [20, 7], (20, 7), None, None, None, 40, 0),
    ({"type": "layernorm"}, [10, 4], (10, 4), None, None, None, 80, 0),
    ({"type": "layernorm", "normalized_shape": [4]}, [10, 4], (10, 4), None, None, None, 8, 0),
    ({"type": "local_response_norm", "size": 5}, [96, 55, 55], (96, 55, 55), None, None, None, 0, 0),
    ({"type": "dropout", "p": 0.5}, [4096], (4096,), None, None, None, 0, 0),
    ({"type": "dropout2d"}, [8, 4, 4], (8, 4, 4), None, None, None, 0, 0),
    *[({"type": kind}, [7], (7,), None, None, None, 0, 0)
      for kind in ("relu", "tanh", "sigmoid", "gelu", "elu", "selu", "softmax", "identity", "leaky_relu")],
    ({"type": "leaky_relu", "negative_slope": 0.2}, [3], (3,), None, None, None, 0, 0),
    # per-side padding: H = 10 + 1 + 2 - 3 + 1 = 11, W = 10 + 0 + 1 - 3 + 1 = 9
    ({"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": [[1, 2], [0, 1]]}, [3, 10, 10],
     (4, 11, 9), 28, 396, 396 * 28, 112, 396 * 27),
    # TensorFlow SAME at stride 2: ceil(224/2) = 112 (pads 2 before, 3 after)
    ({"type": "conv2d", "out_channels": 64, "kernel_size": 7, "stride": 2, "padding": "same_upper"},
     [3, 224, 224], (64, 112, 112), 148, 802816, 802816 * 148, 9472, 802816 * 147),
    ({"type": "conv2d", "out_channels": 8, "kernel_size": 2, "stride": 2, "padding": "same_lower"},
     [3, 7, 7], (8, 4, 4), 13, 128, 128 * 13, 104, 128 * 12),
    # linear on tokens (the last dimension): ViT's MLP, 197 tokens of 768 -> 3072
    ({"type": "linear", "out_features": 3072}, [197, 768], (197, 3072), 769, 605184, 605184 * 769,
     3072 * 769, 605184 * 768),
    # self-attention, ViT-B/16: 4E² + 4E parameters; 4·L·E² + 2·L²·E MACs
    ({"type": "multihead_attention", "num_heads": 12}, [197, 768], (197, 768), None, None, None,
     2362368, 4 * 197 * 768**2 + 2 * 197**2 * 768),
    ({"type": "instance_norm2d", "affine": True}, [8, 5, 5], (8, 5, 5), None, None, None, 16, 0),
    ({"type": "instance_norm1d"}, [8, 5], (8, 5), None, None, None, 0, 0),
    ({"type": "group_norm", "num_groups": 4}, [8, 5, 5], (8, 5, 5), None, None, None, 16, 0),
    ({"type": "prelu", "num_parameters": 8}, [8, 5, 5], (8, 5, 5), None, None, None, 8, 0),
    ({"type": "prelu"}, [8, 5, 5], (8, 5, 5), None, None, None, 1, 0),
    ({"type": "stochastic_depth", "p": 0.2}, [8, 5, 5], (8, 5, 5), None, None, None, 0, 0),
    *[({"type": kind}, [7, 2], (7, 2), None, None, None, 0, 0)
      for kind in ("relu6", "hardswish", "hardsigmoid", "silu", "mish", "softplus", "hardtanh",
                   "log_softmax")],
    ({"type": "softmax", "dim": -1}, [7, 2], (7, 2), None, None, None, 0, 0),
    ({"type": "flatten", "start_dim": 1}, [8, 5, 5], (8, 25), None, None, None, 0, 0),
    ({"type": "reshape", "shape": [8, -1]}, [8, 5, 5], (8, 25), None, None, None, 0, 0),
    ({"type": "permute", "dims": [1, 2, 0]}, [8, 5, 6], (5, 6, 8), None, None, None, 0, 0),
    ({"type": "transpose", "dim0": 0, "dim1": 1}, [768, 196], (196, 768), None, None, None, 0, 0),
    ({"type": "unsqueeze", "dim": 0}, [8], (1, 8), None, None, None, 0, 0),
    ({"type": "narrow", "dim": 0, "start": 0, "length": 1}, [197, 768], (1, 768), None, None, None, 0, 0),
    ({"type": "channel_shuffle", "groups": 2}, [8, 5, 5], (8, 5, 5), None, None, None, 0, 0),
    ({"type": "upsample", "scale_factor": 2}, [8, 5, 5], (8, 10, 10), None, None, None, 0, 0),
    ({"type": "upsample", "size": [7, 9], "mode": "bilinear"}, [8, 5, 5], (8, 7, 9), None, None, None, 0, 0),
    ({"type": "pixel_shuffle", "upscale_factor": 2}, [8, 5, 5], (2, 10, 10), None, None, None, 0, 0),
    ({"type": "zero_pad", "padding": 1}, [3, 5, 5], (3, 7, 7), None, None, None, 0, 0),
    ({"type": "zero_pad", "padding": [[0, 1], [2, 0]]}, [3, 5, 5], (3, 6, 7), None, None, None, 0, 0),
    # U-Net's first skip: 136 cropped to 104 for the last up-convolution's 104
    ({"type": "center_crop", "size": 104}, [64, 136, 136], (64, 104, 104), None, None, None, 0, 0),
    ({"type": "mean", "dims": [1, 2]}, [8, 5, 5], (8,), None, None, None, 0, 0),
    ({"type": "mean", "dims": [-1, -2], "keepdim": True}, [8, 5, 5], (8, 1, 1), None, None, None, 0, 0),
    # a learned tensor reads no input: ViT's class token
    ({"type": "parameter", "shape": [1, 768]}, [3, 224, 224], (1, 768), None, None, None, 768, 0),
]  # fmt: skip


@pytest.mark.parametrize(
    "layer, shape, output, per_neuron, neurons, connections, params, macs",
    CASES,
    ids=[f"{case[0]['type']}-{i}" for i, case in enumerate(CASES)],
)
def test_layer_table(layer, shape, output, per_neuron, neurons, connections, params, macs):
    row = analyze(spec([layer], shape)).rows[0]
    assert row.output == output
    assert (row.weights_per_neuron, row.neurons, row.connections) == (
        per_neuron,
        neurons,
        connections,
    )
    assert (row.params, row.macs) == (params, macs)


def test_every_builtin_type_is_in_the_table():
    from archcalc.language.spec import BUILTIN_TYPES

    covered = {case[0]["type"] for case in CASES} | {
        "residual",
        "concat",
        "repeat",
        "add",
        "mul",
        "matmul",
    }  # tested in test_graph.py
    missing = set(BUILTIN_TYPES) - covered - {"conv_transpose1d", "conv_transpose3d", "maxpool3d",
                                              "avgpool3d", "batchnorm3d", "adaptive_avgpool3d",
                                              "adaptive_maxpool1d", "adaptive_maxpool3d",
                                              "instance_norm3d"}  # fmt: skip
    assert not missing


def test_activation_shorthand_adds_a_row():
    a = analyze(spec([{"type": "linear", "out_features": 4, "activation": "tanh"}], [3]))
    assert [(r.path, r.type) for r in a.rows] == [
        ("layers[0]", "linear"),
        ("layers[0].activation", "tanh"),
    ]


def test_residual_identity_and_projection():
    block = [{"type": "conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1, "activation": "relu"},
             {"type": "conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1}]  # fmt: skip
    a = analyze(spec([{"type": "residual", "body": block, "activation": "relu"}], [16, 8, 8]))
    assert a.output == (16, 8, 8)
    assert a.totals["params"] == 2 * 16 * (16 * 9 + 1)
    assert [r.path for r in a.rows] == ["layers[0].body[0]", "layers[0].body[0].activation",
                                        "layers[0].body[1]", "layers[0].activation"]  # fmt: skip
    down = {"type": "residual",
            "body": [{"type": "conv2d", "out_channels": 32, "kernel_size": 3, "stride": 2, "padding": 1}],
            "shortcut": [{"type": "conv2d", "out_channels": 32, "kernel_size": 1, "stride": 2}]}  # fmt: skip
    a = analyze(spec([down], [16, 8, 8]))
    assert a.output == (32, 4, 4)
    assert a.totals["params"] == 32 * (16 * 9 + 1) + 32 * (16 + 1)
    assert a.rows[1].path == "layers[0].shortcut[0]"


def test_concat_sums_channels_with_identity_branch():
    layer = {"type": "concat", "branches": [
        [{"type": "conv2d", "out_channels": 4, "kernel_size": 1}],
        [{"type": "conv2d", "out_channels": 6, "kernel_size": 3, "padding": 1}],
        [],
    ]}  # fmt: skip
    a = analyze(spec([layer], [8, 10, 10]))
    assert a.output == (18, 10, 10)
    assert [r.path for r in a.rows] == ["layers[0].branches[0][0]", "layers[0].branches[1][0]"]


def test_repeat_unrolls_with_iteration_paths():
    layer = {
        "type": "repeat",
        "times": 3,
        "layers": [{"type": "linear", "out_features": 5, "activation": "relu"}],
    }
    a = analyze(spec([layer], [5]))
    assert len(a.rows) == 6
    assert a.rows[4].path == "layers[0][2].layers[0]"
    assert a.totals["params"] == 3 * 30


def test_blocks_are_templates_with_parameters():
    s = spec(
        [{"type": "fc", "n": 7}, {"type": "fc", "n": "2*A"}],
        [3],
        symbols={"A": 5},
        blocks={
            "fc": {
                "params": ["n"],
                "layers": [{"type": "linear", "out_features": "n"}, {"type": "relu"}],
            }
        },
    )
    a = analyze(s)
    assert a.output == (10,)
    assert a.rows[2].path == "layers[1].layers[0]"
    assert a.totals["params"] == 7 * 4 + 10 * 8
    assert analyze(s, A=1).output == (2,)


def test_expressions_in_fields_and_input():
    s = spec([{"type": "conv2d", "out_channels": "2*C", "kernel_size": "k", "padding": "k//2"}],
             ["C", "H", "H"], symbols={"C": 3, "H": 32, "k": 5})  # fmt: skip
    assert analyze(s).output == (6, 32, 32)
    assert analyze(s, H=16, k=3).output == (6, 16, 16)


def test_composite_expectations_sum_over_their_layers():
    from archcalc.quantities.expectations import check_expectations

    layer = {
        "type": "residual",
        "body": [{"type": "linear", "out_features": 4}],
        "expect": {"params": 20, "output": [4]},
    }
    assert check_expectations(analyze(spec([layer], [4]))) == []
    wrong = {**layer, "expect": {"params": 21, "weights_per_neuron": 5}}
    found = [str(m) for m in check_expectations(analyze(spec([wrong], [4])))]
    assert found == ["layers[0] weights_per_neuron: expected 5, computed not applicable",
                     "layers[0] params: expected 21, computed 20"]  # fmt: skip


# ceil_mode pools with a symbolic input size: a closed form, no condition for sympy to weigh


def _ceil_pool_cases():
    for k in range(1, 5):
        for s in range(1, 4):
            for p in range(0, k // 2 + 1):  # PyTorch: padding at most half the kernel
                for d in (1, 2):
                    for p_end in (None, 0, 1, 2):
                        yield k, s, p, d, p_end


def test_a_ceil_mode_pools_symbolic_size_is_its_numeric_size_at_every_n():
    """The lesser of ceil(span/s) + 1 and the windows starting before the right padding,
    chosen without n: equal to PyTorch's rule (drop a last window that starts in the right
    padding) at every n, and free of Piecewise wherever p_end <= d(k-1) + 1."""
    import sympy

    from archcalc.layers.formulas import pool_output_size

    n = sympy.Symbol("n", positive=True, integer=True)
    for k, s, p, d, p_end in _ceil_pool_cases():
        formula = pool_output_size(n, k, s, p, d, True, p_end)
        if (p if p_end is None else p_end) <= d * (k - 1) + 1:
            assert not formula.has(sympy.Piecewise), (k, s, p, d, p_end, formula)
        for value in range(1, 25):
            numeric = pool_output_size(value, k, s, p, d, True, p_end)
            assert formula.subs(n, value) == numeric, (k, s, p, d, p_end, value)


def test_googlenets_ceil_mode_pools_analyse_symbolically():
    """GoogLeNet with H and W free did not finish (a condition per ceil_mode pool, nested
    five deep); a chain of six ceil_mode pools that do drop windows neither."""
    from archcalc.language.expr import symbol
    from tests.conftest import SPECS

    H, W = symbol("H"), symbol("W")
    data = yaml_spec(SPECS / "zoo" / "googlenet.yaml")
    symbolic = analyze(data, symbolic=True)
    for h, w in ((224, 224), (199, 256), (97, 33)):
        numeric = analyze(data, H=h, W=w)
        assert symbolic.totals["macs"].subs({H: h, W: w}) == numeric.totals["macs"]
    pools = [{"type": "maxpool2d", "kernel_size": 2, "stride": 2, "padding": 1,
              "ceil_mode": True}] * 6  # fmt: skip
    chain = analyze(spec(pools, [1, "H", "H"], symbols={"H": None}), symbolic=True)
    for h in range(1, 80):
        exact = analyze(spec(pools, [1, "H", "H"], symbols={"H": h})).output
        assert tuple(v if isinstance(v, int) else v.subs(H, h) for v in chain.output) == exact


def yaml_spec(path) -> dict:
    """A zoo spec with its input [3, 224, 224] made [3, H, W], H and W free."""
    import yaml

    data = yaml.safe_load(path.read_text())
    data["input"], data["symbols"] = [3, "H", "W"], {"H": None, "W": None}
    data.pop("expect", None)
    return data
