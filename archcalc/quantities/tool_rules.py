"""Which rule each peer tool applies to each layer type (``archcalc conventions``).

For each tool, a table maps a layer type (its family: ``conv`` for conv1d/2d/3d) to the
terms that tool adds to (or leaves out of) archcalc's MACs, each a rule function of
:mod:`archcalc.quantities.tool_formulas`. The versions whose rules these are, found by
reading their source and running them on the built models: :data:`VERSIONS`.
"""

from __future__ import annotations

from typing import Callable

from archcalc.quantities.tool_formulas import (
    Layer,
    adaptive_avg_adds,
    adaptive_avg_ratio,
    adaptive_max_compares,
    affine_norm,
    all_macs_left_out,
    attention_biases,
    attention_out_projection_once,
    attention_projections_left_out,
    avg_pool_adds_and_divides,
    bias_once,
    bias_per_output,
    calflops_transpose_flops,
    calflops_transpose_macs,
    conv_bias_per_position,
    fvcore_upsample,
    layernorm_parameters,
    learned_tensor,
    linear_weights_once,
    lrn_functional_ops,
    macs_again,
    max_pool_compares,
    norm_parameters,
    one_per_input,
    one_per_input_2d,
    one_per_output,
    out_projection_only,
    output_positions,
    parameters_per_position,
    prelu_parameters,
    softmax_exp_add_divide,
    subsample_parameters,
    table_parameters_per_map,
    transpose_as_conv,
    transpose_as_conv_and_padding,
    two_per_input,
    upsample_per_output,
)

VERSIONS = {
    "torchinfo": "1.8.0",
    "fvcore": "0.1.5.post20221221",
    "ptflops": "0.7.5",
    "ptflops-aten": "0.7.5",
    "thop": "0.1.1.post2209072238",
    "calflops": "0.3.2",
    "calflops-flops": "0.3.2",
    "torchscan": "0.2.0",
}

Term = tuple[str, str, Callable[[Layer], int]]  # (type shown, why, rule)
NOTHING: list[Term] = []


def _shape_only(*kinds: str) -> dict[str, list[Term]]:
    return {kind: NOTHING for kind in kinds}


#: Types every tool counts as archcalc does (nothing, or the same MACs); torchscan apart.
_COMMON = _shape_only(
    "flatten", "dropout", "dropout2d", "identity", "reshape", "permute", "transpose", "narrow",
    "unsqueeze", "concat", "parameter", "zero_pad", "center_crop", "channel_shuffle",
    "pixel_shuffle", "mean", "add", "mul", "matmul", "stochastic_depth", "relu", "relu6",
    "leaky_relu", "tanh", "sigmoid", "elu", "selu", "prelu", "gelu", "silu", "hardswish",
    "hardsigmoid", "mish", "softplus", "hardtanh", "softmax", "log_softmax",
    "local_response_norm", "maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool",
    "upsample", "conv", "linear", "multihead_attention", "rbf",
)  # fmt: skip

_TWICE = "counted twice: module hook and functional patch"
_NO_MODULE_RULE = "no rule for the module; its F.conv2d / @ calls not seen"
#: thop's operations per output element of an upsampling, by mode (trilinear: none).
THOP_UPSAMPLE = {"nearest": 1, "linear": 5, "bilinear": 11, "bicubic": 259, "trilinear": 0}
_ALL_MODES = dict.fromkeys(("nearest", "linear", "bilinear", "bicubic", "trilinear"), 2)

TOOL_RULES: dict[str, dict[str, list[Term]]] = {
    "torchinfo": {
        **_COMMON,
        "conv": [("conv bias", "bias as a weight at every output position", conv_bias_per_position)],
        "conv_transpose": [("transposed conv", "its parameters at every output position",
                            parameters_per_position)],
        "table_conv": [("table conv", "per-map weights under its RNN rule", table_parameters_per_map)],
        "subsample": [("subsample", "its 2·C parameters, not its MACs", subsample_parameters)],
        "rbf": [("RBF", "no parameters: 0", all_macs_left_out)],
        "linear": [
            ("linear bias", "once per sample", bias_once),
            ("linear on tokens", "weights counted once, not per token", linear_weights_once),
        ],
        "batchnorm": [("batch norm", "its 2·C parameters", norm_parameters)],
        "instance_norm": [("instance norm", "its 2·C parameters", norm_parameters)],
        "group_norm": [("group norm", "its 2·C parameters", norm_parameters)],
        "layernorm": [("layer norm", "its parameters", layernorm_parameters)],
        "prelu": [("PReLU", "its slopes", prelu_parameters)],
        "parameter": [("learned tensor", "its elements", learned_tensor)],
        "multihead_attention": [("attention", "only the out-projection's parameters, once",
                                 attention_out_projection_once)],
    },
    "fvcore": {
        **_COMMON,
        "conv_transpose": NOTHING, "table_conv": NOTHING, "subsample": NOTHING,
        "batchnorm": [("batch norm", "2 per input element", affine_norm(2, 1))],
        "instance_norm": [("instance norm", "5 per input element", affine_norm(5, 4))],
        "group_norm": [("group norm", "5 per input element", affine_norm(5, 4))],
        "layernorm": [("layer norm", "5 per input element", affine_norm(5, 4, "elementwise_affine"))],
        "adaptive_avgpool": [("adaptive pool", "1 per input element (2-d only)", one_per_input_2d)],
        "upsample": [("upsample", "per output element (2-d nearest, bilinear)", fvcore_upsample)],
    },
    "ptflops": {
        **_COMMON,
        "conv": [("conv bias", "1 per output element", bias_per_output)],
        "conv_transpose": [("conv bias", "1 per output element", bias_per_output)],
        "table_conv": [("table conv", _NO_MODULE_RULE, all_macs_left_out)],
        "subsample": [("subsample", _NO_MODULE_RULE, all_macs_left_out)],
        "rbf": [("RBF", _NO_MODULE_RULE, all_macs_left_out)],
        "linear": [("linear bias", "1 per output element", bias_per_output)],
        "batchnorm": [("batch norm", "2 per input element", affine_norm(2, 1))],
        "instance_norm": [("instance norm", "2 per input element", affine_norm(2, 1))],
        "group_norm": [("group norm", "2 per input element", affine_norm(2, 1))],
        "layernorm": [("layer norm", "1 per input element (no `affine` attribute)", one_per_input)],
        "relu": [("ReLU", _TWICE, two_per_input)],
        "gelu": [("GELU", _TWICE, two_per_input)],
        "elu": [("ELU", _TWICE, two_per_input)],
        "prelu": [("PReLU", _TWICE, two_per_input)],
        "relu6": [("ReLU6", "1 per element (module hook)", one_per_output)],
        "leaky_relu": [("leaky ReLU", "1 per element (module hook)", one_per_output)],
        "silu": [("SiLU", "1 per element (functional patch)", one_per_input)],
        "maxpool": [("max pool", "2 per input element: " + _TWICE[15:], two_per_input)],
        "avgpool": [("avg pool", "2 per input element: " + _TWICE[15:], two_per_input)],
        "adaptive_avgpool": [("adaptive pool", "2 per input element: hook and patch", two_per_input)],
        "adaptive_maxpool": [("adaptive pool", "2 per input element: hook and patch", two_per_input)],
        "softmax": [("softmax", "1 per element (functional patch)", one_per_input)],
        "local_response_norm": [("LRN", "its torch ops, through the patches", lrn_functional_ops)],
        "upsample": [("upsample", "2 per output element, hook and patch",
                      upsample_per_output(_ALL_MODES))],
        "multihead_attention": [("attention", "in- and out-projections not counted",
                                 attention_projections_left_out)],
    },
    "ptflops-aten": {
        **_COMMON,
        "conv": [("conv bias", "1 per output element", bias_per_output)],
        "conv_transpose": [("conv bias", "1 per output element", bias_per_output)],
        "table_conv": [("conv bias", "1 per output element", bias_per_output)],
        "subsample": [("subsample bias", "1 per output element", bias_per_output)],
        "linear": [("linear bias", "1 per output element", bias_per_output)],
        "multihead_attention": [("attention bias", "1 per projection output", attention_biases)],
        **_shape_only("batchnorm", "instance_norm", "group_norm", "layernorm"),
    },
    "thop": {
        **_COMMON,
        "conv_transpose": [("transposed conv", "as a convolution, per output element",
                            transpose_as_conv)],
        "table_conv": [("table conv", _NO_MODULE_RULE, all_macs_left_out)],
        "subsample": [("subsample", _NO_MODULE_RULE, all_macs_left_out)],
        "rbf": [("RBF", _NO_MODULE_RULE, all_macs_left_out)],
        "batchnorm": [("batch norm", "4 per input element", affine_norm(4, 2))],
        "instance_norm": [("instance norm", "4 per input element", affine_norm(4, 2))],
        "group_norm": NOTHING,
        "layernorm": [("layer norm", "4 per input element", affine_norm(4, 2, "elementwise_affine"))],
        "prelu": [("PReLU", "1 per input element", one_per_input)],
        "avgpool": [("avg pool", "1 per output element", one_per_output)],
        "adaptive_avgpool": [("adaptive pool", "(input/output + 1) per output element",
                              adaptive_avg_ratio)],
        "softmax": [("softmax", "3n − 1 per row of n", softmax_exp_add_divide)],
        "multihead_attention": [("attention", "no rule for the module or its out-projection",
                                 all_macs_left_out)],
        "upsample": [("upsample", "per output element", upsample_per_output(THOP_UPSAMPLE))],
    },
    "calflops": {
        **_COMMON,
        "conv_transpose": [("transposed conv", "output channels read as C_out/groups",
                            calflops_transpose_macs)],
        "table_conv": NOTHING, "subsample": NOTHING,
        "rbf": [("RBF", "x @ w (Tensor.__matmul__) not patched", all_macs_left_out)],
        **_shape_only("batchnorm", "instance_norm", "group_norm", "layernorm"),
    },
    "calflops-flops": {
        **_COMMON,
        **{kind: [(f"{kind.replace('_', ' ')} x2", "a MAC is 2 FLOPs", macs_again),
                  (f"{kind.replace('_', ' ')} bias", "1 per output element", bias_per_output)]
           for kind in ("conv", "table_conv", "subsample")},
        **{kind: [(f"{kind.replace('_', ' ')} x2", "a MAC is 2 FLOPs (bias not counted)", macs_again)]
           for kind in ("linear", "matmul", "multihead_attention")},
        "conv_transpose": [("transposed conv", "2 per calflops MAC + bias over conv-formula sizes",
                            calflops_transpose_flops)],
        "rbf": [("RBF", "x @ w (Tensor.__matmul__) not patched", all_macs_left_out)],
        "batchnorm": [("batch norm", "2 per input element", affine_norm(2, 1))],
        "instance_norm": [("instance norm", "5 per input element", affine_norm(5, 4))],
        "group_norm": [("group norm", "5 per input element", affine_norm(5, 4))],
        "layernorm": [("layer norm", "5 per input element", affine_norm(5, 4, "elementwise_affine"))],
        **{kind: [(kind.replace("_", " "), f"1 per input element (patched F.{kind})", one_per_input)]
           for kind in ("relu", "leaky_relu", "elu", "prelu", "gelu", "silu", "softmax")},
        **{kind: [(kind.replace("_", " "), "1 per input element (patched F pooling)", one_per_input)]
           for kind in ("maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool")},
        "local_response_norm": [("LRN", "its torch ops, through the patches", lrn_functional_ops)],
        "upsample": [("upsample", "Π of its size argument (no channels)", output_positions)],
    },
    "torchscan": {
        **_shape_only("flatten", "dropout", "identity", "relu", "relu6", "tanh", "sigmoid",
                      "leaky_relu", "elu", "conv", "linear"),
        "conv_transpose": [("transposed conv", "as a convolution, + 4 per spatial dimension",
                            transpose_as_conv_and_padding)],
        "batchnorm": [("batch norm", "2 per input element", affine_norm(2, 1))],
        "maxpool": [("max pool", "Π kernel − 1 per output element", max_pool_compares)],
        "avgpool": [("avg pool", "Π kernel − 1 + dims per output element", avg_pool_adds_and_divides)],
        "adaptive_avgpool": [("adaptive pool", "Π kernel − 1 + dims per output element",
                              adaptive_avg_adds)],
        "adaptive_maxpool": [("adaptive pool", "Π kernel − 1 per output element", adaptive_max_compares)],
        "multihead_attention": [("attention", "only the out-projection counted", out_projection_only)],
    },
}  # fmt: skip

#: Tools that, for a type they have no rule for, print a partial total (torchscan) rather
#: than counting it as 0.
PARTIAL_TOOLS = {"torchscan"}
#: Types that make a tool's total partial although some of their work is counted.
PARTIAL_TYPES = {"torchscan": {"multihead_attention"}}
#: Tools that raise instead of printing where the model has no parameters (calflops reads
#: ``next(model.parameters())``).
NEEDS_PARAMETERS = {"calflops", "calflops-flops"}
