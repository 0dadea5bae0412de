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
    conv_bias_per_position,
    layernorm_parameters,
    learned_tensor,
    linear_weights_once,
    lrn_functional_ops,
    max_pool_compares,
    norm_parameters,
    one_per_input,
    one_per_output,
    out_projection_only,
    softmax_exp_add_divide,
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
    "torchscan": "0.2.0",
}

Term = tuple[str, str, Callable[[Layer], int]]  # (type shown, why, rule)
NOTHING: list[Term] = []


def _shape_only(*kinds: str) -> dict[str, list[Term]]:
    return {kind: NOTHING for kind in kinds}


#: Types every tool counts as archcalc does (nothing, or the same MACs).
_COMMON = _shape_only(
    "flatten",
    "dropout",
    "dropout2d",
    "identity",
    "reshape",
    "permute",
    "transpose",
    "narrow",
    "unsqueeze",
    "concat",
    "parameter",
    "zero_pad",
    "center_crop",
    "channel_shuffle",
    "pixel_shuffle",
    "add",
    "mul",
    "matmul",
    "relu",
    "relu6",
    "tanh",
    "sigmoid",
    "stochastic_depth",
    "leaky_relu",
)

TOOL_RULES: dict[str, dict[str, list[Term]]] = {
    "torchinfo": {
        **_COMMON,
        "conv": [
            ("conv bias", "bias as a weight at every output position", conv_bias_per_position)
        ],
        "linear": [
            ("linear bias", "once per sample", bias_once),
            ("linear on tokens", "weights counted once, not per token", linear_weights_once),
        ],
        "batchnorm": [("batch norm", "its 2·C parameters", norm_parameters)],
        "layernorm": [("layer norm", "its parameters", layernorm_parameters)],
        "parameter": [("learned tensor", "its elements", learned_tensor)],
        "multihead_attention": [
            (
                "attention",
                "only the out-projection's parameters, once",
                attention_out_projection_once,
            )
        ],
        **_shape_only(
            "maxpool",
            "avgpool",
            "adaptive_avgpool",
            "adaptive_maxpool",
            "softmax",
            "local_response_norm",
            "gelu",
            "silu",
            "upsample",
        ),
    },  # fmt: skip
    "fvcore": {
        **_COMMON,
        "conv": NOTHING,
        "linear": NOTHING,
        "multihead_attention": NOTHING,
        "batchnorm": [("batch norm", "2 per input element", affine_norm(2, 1))],
        "layernorm": [
            ("layer norm", "5 per input element", affine_norm(5, 4, "elementwise_affine"))
        ],
        "group_norm": [("group norm", "5 per input element", affine_norm(5, 4))],
        "adaptive_avgpool": [("adaptive pool", "1 per input element", one_per_input)],
        "upsample": [
            ("upsample", "per output element", upsample_per_output({"nearest": 1, "bilinear": 4}))
        ],
        **_shape_only(
            "maxpool",
            "avgpool",
            "adaptive_maxpool",
            "softmax",
            "local_response_norm",
            "gelu",
            "silu",
        ),
    },  # fmt: skip
    "ptflops": {
        **_COMMON,
        "conv": [("conv bias", "1 per output element", bias_per_output)],
        "linear": [("linear bias", "1 per output element", bias_per_output)],
        "batchnorm": [("batch norm", "2 per input element", affine_norm(2, 1))],
        "layernorm": [("layer norm", "1 per input element (no `affine` attribute)", one_per_input)],
        "relu": [("ReLU", "counted twice: module hook and functional patch", two_per_input)],
        "gelu": [("GELU", "counted twice: module hook and functional patch", two_per_input)],
        "relu6": [("ReLU6", "1 per element (module hook)", one_per_output)],
        "leaky_relu": [("leaky ReLU", "1 per element (module hook)", one_per_output)],
        "silu": [("SiLU", "1 per element (functional patch)", one_per_input)],
        "maxpool": [
            ("max pool", "2 per input element: module hook and functional patch", two_per_input)
        ],
        "avgpool": [
            ("avg pool", "2 per input element: module hook and functional patch", two_per_input)
        ],
        "adaptive_avgpool": [
            ("adaptive pool", "2 per input element: hook and patch", two_per_input)
        ],
        "adaptive_maxpool": [
            ("adaptive pool", "2 per input element: hook and patch", two_per_input)
        ],
        "softmax": [("softmax", "1 per element (functional patch)", one_per_input)],
        "local_response_norm": [("LRN", "its torch ops, through the patches", lrn_functional_ops)],
        "upsample": [
            ("upsample", "per output element, hook and patch", upsample_per_output({"nearest": 2}))
        ],
        "multihead_attention": [
            ("attention", "in- and out-projections not counted", attention_projections_left_out)
        ],
    },  # fmt: skip
    "ptflops-aten": {
        **_COMMON,
        "conv": [("conv bias", "1 per output element", bias_per_output)],
        "linear": [("linear bias", "1 per output element", bias_per_output)],
        "multihead_attention": [("attention bias", "1 per projection output", attention_biases)],
        **_shape_only(
            "batchnorm",
            "layernorm",
            "maxpool",
            "avgpool",
            "adaptive_avgpool",
            "adaptive_maxpool",
            "softmax",
            "local_response_norm",
            "gelu",
            "silu",
            "upsample",
        ),
    },  # fmt: skip
    "thop": {
        **_COMMON,
        "conv": NOTHING,
        "linear": NOTHING,
        "batchnorm": [("batch norm", "4 per input element", affine_norm(4, 2))],
        "layernorm": [
            ("layer norm", "4 per input element", affine_norm(4, 2, "elementwise_affine"))
        ],
        "avgpool": [("avg pool", "1 per output element", one_per_output)],
        "adaptive_avgpool": [
            ("adaptive pool", "(input/output + 1) per output element", adaptive_avg_ratio)
        ],
        "softmax": [("softmax", "3n − 1 per row of n", softmax_exp_add_divide)],
        "multihead_attention": [
            ("attention", "no rule for the module or its out-projection", all_macs_left_out)
        ],
        "upsample": [
            (
                "upsample",
                "per output element",
                upsample_per_output({"nearest": 1, "linear": 5, "bilinear": 11}),
            )
        ],
        **_shape_only("maxpool", "adaptive_maxpool", "local_response_norm", "gelu", "silu"),
    },  # fmt: skip
    "calflops": {
        **_COMMON,
        **_shape_only(
            "conv",
            "linear",
            "multihead_attention",
            "batchnorm",
            "layernorm",
            "maxpool",
            "avgpool",
            "adaptive_avgpool",
            "adaptive_maxpool",
            "softmax",
            "local_response_norm",
            "gelu",
            "silu",
            "upsample",
            "group_norm",
        ),
    },  # fmt: skip
    "torchscan": {
        **_shape_only(
            "flatten",
            "dropout",
            "identity",
            "relu",
            "relu6",
            "tanh",
            "sigmoid",
            "leaky_relu",
            "elu",
            "conv",
            "linear",
        ),
        "batchnorm": [("batch norm", "2 per input element", affine_norm(2, 1))],
        "maxpool": [("max pool", "Π kernel − 1 per output element", max_pool_compares)],
        "avgpool": [
            ("avg pool", "Π kernel + 1 per output element (2-d)", avg_pool_adds_and_divides)
        ],
        "adaptive_avgpool": [
            ("adaptive pool", "Π kernel − 1 + dims per output element", adaptive_avg_adds)
        ],
        "adaptive_maxpool": [
            ("adaptive pool", "Π kernel − 1 per output element", adaptive_max_compares)
        ],
        "multihead_attention": [
            ("attention", "only the out-projection counted", out_projection_only)
        ],
    },  # fmt: skip
}

#: Tools that, for a type they have no rule for, print a partial total (torchscan) rather
#: than counting it as 0.
PARTIAL_TOOLS = {"torchscan"}
#: Types that make a tool's total partial although some of their work is counted.
PARTIAL_TYPES = {"torchscan": {"multihead_attention"}}
