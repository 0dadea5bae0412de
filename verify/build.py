"""Build an archcalc spec as a real ``torch.nn`` model.

The module tree mirrors the spec: a row at ``layers[4].body[2]`` is the module
``layers.4.body.2`` (its weight ``layers.4.body.2.weight``), a repeat's
iteration ``layers[2][1].layers[0]`` is ``layers.2.1.layers.0``, a block
call's ``layers[3].layers[0]`` is ``layers.3.layers.0``. An ``activation:``
shorthand becomes a sibling module ``<index>_activation`` (module names may not
contain dots); a residual's own activation is ``layers.4.activation``.
``model.by_path`` maps every archcalc row path to its module. The model runs the
elaborated graph: each node's module reads the outputs of its input nodes, so
any graph the spec language can say (named inputs, merges, several outputs) runs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archcalc.errors import ArchcalcError
from archcalc.graph.graph import Node
from archcalc.quantities.analysis import Analysis, Row, analyze
from verify import modules


class TableConv2d(nn.Module):
    """A convolution with a connection table: output map j convolves only the input maps
    ``table[j]`` (LeNet-5's C3). One small convolution per output map, so both the
    parameter count and the flop count are exactly those of the table."""

    def __init__(self, table, kernel_size, stride, padding, dilation, bias: bool):
        super().__init__()
        self.table = [list(maps) for maps in table]
        self.stride, self.padding, self.dilation = stride, padding, dilation
        for j, maps in enumerate(self.table):
            self.register_parameter(
                f"weight_{j}", nn.Parameter(torch.empty(1, len(maps), *kernel_size))
            )
        self.bias = nn.Parameter(torch.empty(len(self.table))) if bias else None
        self.reset_parameters()

    def weights(self):
        return [getattr(self, f"weight_{j}") for j in range(len(self.table))]

    def reset_parameters(self) -> None:  # as nn.Conv2d, per output map
        for weight in self.weights():
            nn.init.kaiming_uniform_(weight, a=5**0.5)
        if self.bias is not None:
            nn.init.uniform_(
                self.bias,
                -1 / (self.weights()[0][0].numel() ** 0.5),
                1 / (self.weights()[0][0].numel() ** 0.5),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for j, (maps, weight) in enumerate(zip(self.table, self.weights())):
            bias = self.bias[j : j + 1] if self.bias is not None else None
            outs.append(
                torch.nn.functional.conv2d(
                    x[:, maps], weight, bias, self.stride, self.padding, self.dilation
                )
            )
        return torch.cat(outs, dim=1)


class Subsample(nn.Module):
    """LeNet-5's subsampling: window sum × a trainable coefficient + a trainable bias per map,
    computed as a depthwise convolution with the coefficient tied across the window."""

    def __init__(self, maps: int, kernel_size, stride):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.weight = nn.Parameter(torch.empty(maps))  # the coefficient
        self.bias = nn.Parameter(torch.empty(maps))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.weight, -1.0, 1.0)  # Var 1/3 = 1/(3·fan_in) with one coefficient
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.weight.shape[0]
        kernel = self.weight.view(maps, 1, 1, 1).expand(maps, 1, *self.kernel_size)
        return torch.nn.functional.conv2d(x, kernel, self.bias, self.stride, groups=maps)


class RBF(nn.Module):
    """Euclidean RBF units, y_i = Σ_j (x_j − w_ij)², with fixed centres (a buffer, not trained);
    written as ‖x‖² − 2·x·w + ‖w‖² so the flop counter sees its multiply-accumulates."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        # LeNet-5 used stylised ±1 bitmaps of the characters; random ±1 codes here.
        self.register_buffer(
            "centres",
            torch.randint(0, 2, (out_features, in_features), generator=generator) * 2.0 - 1,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * x).sum(1, keepdim=True) - 2 * x @ self.centres.T + (self.centres**2).sum(1)


class Container(nn.Module):
    """Holds modules under the names of a spec path (``layers.4.body.2``); never called."""

    def forward(self, *args):  # pragma: no cover - only the graph calls modules
        raise RuntimeError("a container of spec modules is not called")


class SpecModel(nn.Module):
    """The whole network, run as its graph: each node's module reads its input nodes' outputs.

    Modules sit at their spec paths (``layers.4.body.2.weight``); ``by_path`` maps every
    archcalc row path to its module, ``node_modules`` every node's path.
    """

    def __init__(self, analysis: Analysis):
        super().__init__()
        graph = analysis.graph
        self.spec_name = analysis.spec.name
        self.input_shape = tuple(analysis.input)
        self.layers = Container()
        self.node_modules: dict[str, nn.Module] = {}
        self.by_path: dict[str, nn.Module] = {}
        self._plan: list[tuple[int, str, tuple[int, ...]]] = []
        self._outputs = tuple(graph.outputs)
        self.output_paths = [graph.nodes[i].path for i in graph.outputs]
        self._slots = len(graph.nodes)
        leaves = {node.path for node in graph.nodes}
        for node in graph.nodes[1:]:
            module = node_module(node, graph.nodes)
            self._attach(node.path, module, leaves)
            self.node_modules[node.path] = module
            if node.shown:
                self.by_path[node.path] = module
            self._plan.append((node.id, node.path, node.inputs))

    def _attach(self, path: str, module: nn.Module, leaves: set[str]) -> None:
        names = module_names(path, leaves)
        parent: nn.Module = self
        for name in names[:-1]:
            if not hasattr(parent, name) or name not in parent._modules:
                parent.add_module(name, Container())
            parent = parent._modules[name]
        parent.add_module(names[-1], module)

    def replace(self, path: str, module: nn.Module) -> nn.Module:
        """Swap the module of the node at ``path``; returns the old one."""
        old = self.node_modules[path]
        names = module_names(path, set(self.node_modules))
        parent: nn.Module = self
        for name in names[:-1]:
            parent = parent._modules[name]
        parent._modules[names[-1]] = module
        self.node_modules[path] = module
        if path in self.by_path:
            self.by_path[path] = module
        return old

    def forward(self, x: torch.Tensor):
        values: list[Any] = [None] * self._slots
        values[0] = x
        modules = self.node_modules
        for i, path, inputs in self._plan:
            values[i] = modules[path](*[values[j] for j in inputs])
        outs = [values[i] for i in self._outputs]
        return outs[0] if len(outs) == 1 else tuple(outs)


def module_names(path: str, leaves: set[str]) -> list[str]:
    """``layers[4].body[2]`` -> ``["layers", "4", "body", "2"]``; a leaf's activation
    shorthand ``layers[0].activation`` is its sibling ``layers.0_activation``."""
    head, _, tail = path.rpartition(".")
    if tail == "activation" and head in leaves:
        names = module_names(head, leaves)
        return [*names[:-1], f"{names[-1]}_activation"]
    return [part for part in path.replace("[", ".").replace("]", "").split(".") if part]


def build(spec: Any, device: str | torch.device = "cpu", **values: int) -> SpecModel:
    """``torch.nn`` model of a spec (path, text, dict, Spec or Analysis); symbols need values."""
    analysis = spec if isinstance(spec, Analysis) else analyze(spec, **values)
    if analysis.symbolic:
        raise analysis.needs_numbers("building a model")
    return SpecModel(analysis).to(device)


def node_module(node: Node, nodes: list[Node]) -> nn.Module:
    """The module of any node: merges and sources here, one-input layers by leaf_module."""
    kind, h = node.type, node.hyper
    if kind == "add":
        return modules.Add()
    if kind == "mul":
        return modules.Mul()
    if kind == "concat":
        return modules.Concat(int(h.get("dim", 0)))
    if kind == "matmul":
        return modules.MatMul()
    if kind == "parameter":
        return modules.Learned(_ints(tuple(h["shape"])), h["init"], h["std"])
    return leaf_module(NodeRow(node, nodes[node.inputs[0]].shape))


class NodeRow:
    """A node seen as a row: what :func:`leaf_module` reads (type, hyper, shapes, path)."""

    def __init__(self, node: Node, input_shape: tuple):
        self.type, self.hyper, self.path = node.type, node.hyper, node.path
        self.input, self.output = input_shape, node.shape


def leaf_module(row: Row) -> nn.Module:
    """The torch module for one leaf row, from its resolved hyperparameters."""
    kind, h = row.type, row.hyper
    dims = kind[-2:-1]
    if kind.startswith("conv_transpose"):
        cls = getattr(nn, f"ConvTranspose{dims}d")
        return cls(int(row.input[0]), int(h["out_channels"]), _ints(h["kernel_size"]),
                   stride=_ints(h["stride"]), padding=_ints(h["padding"]),
                   output_padding=_ints(h["output_padding"]), groups=int(h["groups"]),
                   bias=h["bias"], dilation=_ints(h["dilation"]))  # fmt: skip
    if kind.startswith("conv") and h.get("table"):
        return TableConv2d(h["table"], _ints(h["kernel_size"]), _ints(h["stride"]), _ints(h["padding"]),
                           _ints(h["dilation"]), h["bias"])  # fmt: skip
    if kind == "subsample":
        return Subsample(int(row.input[0]), _ints(h["kernel_size"]), _ints(h["stride"]))
    if kind == "rbf":
        return RBF(int(row.input[0]), int(h["out_features"]))
    if kind.startswith("conv"):
        cls = getattr(nn, f"Conv{dims}d")
        before, after = _ints(h["padding"]), _ints(h["padding_end"])
        if h.get("same"):
            padding: Any = "same"
        elif before == after:
            padding = before
        else:  # asymmetric (pairs, TF SAME): the convolution pads itself
            padding = 0
        conv = cls(int(row.input[0]), int(h["out_channels"]), _ints(h["kernel_size"]),
                   stride=_ints(h["stride"]), padding=padding, dilation=_ints(h["dilation"]),
                   groups=int(h["groups"]), bias=h["bias"])  # fmt: skip
        return conv if h.get("same") or before == after else modules.PaddedConv(conv, before, after)
    if kind == "linear":
        return nn.Linear(int(row.input[-1]), int(h["out_features"]), bias=h["bias"])
    if kind == "multihead_attention":
        return modules.SelfAttention(
            int(row.input[1]), int(h["num_heads"]), h["bias"], h["dropout"]
        )
    if kind.startswith("maxpool"):
        return getattr(nn, f"MaxPool{dims}d")(_ints(h["kernel_size"]), stride=_ints(h["stride"]),
                                              padding=_ints(h["padding"]), dilation=_ints(h["dilation"]),
                                              ceil_mode=h["ceil_mode"])  # fmt: skip
    if kind.startswith("avgpool"):
        return getattr(nn, f"AvgPool{dims}d")(_ints(h["kernel_size"]), stride=_ints(h["stride"]),
                                              padding=_ints(h["padding"]), ceil_mode=h["ceil_mode"],
                                              count_include_pad=h["count_include_pad"])  # fmt: skip
    if kind.startswith("adaptive_"):
        pool = "Avg" if "avg" in kind else "Max"
        return getattr(nn, f"Adaptive{pool}Pool{dims}d")(_ints(row.output[1:]))
    if kind.startswith("batchnorm"):
        return getattr(nn, f"BatchNorm{dims}d")(int(row.input[0]), eps=h["eps"], momentum=h["momentum"],
                                                affine=h["affine"])  # fmt: skip
    if kind.startswith("instance_norm"):
        return getattr(nn, f"InstanceNorm{dims}d")(
            int(row.input[0]), eps=h["eps"], momentum=h["momentum"], affine=h["affine"],
            track_running_stats=h["track_running_stats"],
        )  # fmt: skip
    simple = {
        "flatten": lambda: nn.Flatten(h["start_dim"] + 1, h["end_dim"] + 1),
        "group_norm": lambda: nn.GroupNorm(
            int(h["num_groups"]), int(row.input[0]), eps=h["eps"], affine=h["affine"]
        ),  # fmt: skip
        "prelu": lambda: nn.PReLU(int(h["num_parameters"]), init=h["init"]),
        "stochastic_depth": lambda: modules.StochasticDepth(h["p"], h["mode"]),
        "reshape": lambda: modules.Reshape(_ints(tuple(row.output))),
        "permute": lambda: modules.Permute(h["dims"]),
        "transpose": lambda: modules.Transpose(h["dim0"], h["dim1"]),
        "unsqueeze": lambda: modules.Unsqueeze(h["dim"]),
        "narrow": lambda: modules.Narrow(h["dim"], int(h["start"]), int(h["length"])),
        "channel_shuffle": lambda: nn.ChannelShuffle(int(h["groups"])),
        "upsample": lambda: nn.Upsample(
            size=_ints(tuple(row.output[1:])), mode=h["mode"], align_corners=h["align_corners"]
        ),
        "pixel_shuffle": lambda: nn.PixelShuffle(int(h["upscale_factor"])),
        "zero_pad": lambda: modules.Pad(_ints(h["padding"]), _ints(h["padding_end"])),
        "center_crop": lambda: modules.CenterCrop(_ints(h["offsets"]), _ints(h["size"])),
        "mean": lambda: modules.Mean(h["dims"], h["keepdim"]),
        "relu6": lambda: nn.ReLU6(),
        "hardswish": lambda: nn.Hardswish(),
        "hardsigmoid": lambda: nn.Hardsigmoid(),
        "silu": lambda: nn.SiLU(),
        "mish": lambda: nn.Mish(),
        "softplus": lambda: nn.Softplus(_or(h.get("beta"), 1.0), _or(h.get("threshold"), 20.0)),
        "hardtanh": lambda: nn.Hardtanh(_or(h.get("min_val"), -1.0), _or(h.get("max_val"), 1.0)),
        "log_softmax": lambda: nn.LogSoftmax(dim=_or(h.get("dim"), 0) % len(row.input) + 1),
        "layernorm": lambda: nn.LayerNorm(
            _ints(h["normalized_shape"]), eps=h["eps"], elementwise_affine=h["elementwise_affine"]
        ),  # fmt: skip
        "local_response_norm": lambda: nn.LocalResponseNorm(
            int(h["size"]), alpha=h["alpha"], beta=h["beta"], k=h["k"]
        ),  # fmt: skip
        "dropout": lambda: nn.Dropout(h["p"]),
        "dropout2d": lambda: nn.Dropout2d(h["p"]),
        "relu": lambda: nn.ReLU(),
        "leaky_relu": lambda: nn.LeakyReLU(
            0.01 if h.get("negative_slope") is None else h["negative_slope"]
        ),
        "tanh": lambda: nn.Tanh(),
        "sigmoid": lambda: nn.Sigmoid(),
        "gelu": lambda: nn.GELU(),
        "elu": lambda: nn.ELU(1.0 if h.get("alpha") is None else h["alpha"]),
        "selu": lambda: nn.SELU(),
        "softmax": lambda: nn.Softmax(dim=_or(h.get("dim"), 0) % len(row.input) + 1),
        "identity": lambda: nn.Identity(),
    }
    if kind not in simple:
        raise ArchcalcError(f"verify cannot build layer type {kind!r}", path=row.path)
    return simple[kind]()


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _ints(values: Any) -> Any:
    return tuple(int(v) for v in values) if isinstance(values, tuple) else int(values)
