"""Build an archcalc spec as a real ``torch.nn`` model.

The module tree mirrors the spec: a row at ``layers[4].body[2]`` is the module
``layers.4.body.2`` (its weight ``layers.4.body.2.weight``), a repeat's
iteration ``layers[2][1].layers[0]`` is ``layers.2.1.layers.0``, a block
call's ``layers[3].layers[0]`` is ``layers.3.layers.0``. An ``activation:``
shorthand becomes a sibling module ``<index>_activation`` (module names may not
contain dots); a residual's own activation is ``layers.4.activation``.
``model.by_path`` maps every archcalc row path to its module.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archcalc.errors import ArchcalcError
from archcalc.quantities.analysis import Analysis, Item, Row, analyze


class Chain(nn.Module):
    """Modules applied in order; children named like the spec's list indices."""

    def __init__(self, named: list[tuple[str, nn.Module]]):
        super().__init__()
        for name, module in named:
            self.add_module(name, module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.children():
            x = module(x)
        return x


class Residual(nn.Module):
    """``body(x) + shortcut(x)``, then an optional activation."""

    def __init__(self, body: Chain, shortcut: Chain, activation: nn.Module | None):
        super().__init__()
        self.body, self.shortcut = body, shortcut
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x) + self.shortcut(x)
        return self.activation(out) if self.activation is not None else out


class Concat(nn.Module):
    """Branches on the same input, concatenated along channels (dim 1 with the batch)."""

    def __init__(self, branches: list[Chain]):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class Sequence(nn.Module):
    """A block call or one iteration of a repeat: its own ``layers`` chain."""

    def __init__(self, layers: Chain):
        super().__init__()
        self.layers = layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


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


class SpecModel(nn.Module):
    """The whole network; ``by_path`` maps archcalc row paths to leaf modules."""

    def __init__(self, analysis: Analysis, layers: Chain, by_path: dict[str, nn.Module]):
        super().__init__()
        self.layers = layers
        self.spec_name = analysis.spec.name
        self.input_shape = tuple(analysis.input)
        self.by_path = by_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def build(spec: Any, device: str | torch.device = "cpu", **values: int) -> SpecModel:
    """``torch.nn`` model of a spec (path, text, dict, Spec or Analysis); symbols need values."""
    analysis = spec if isinstance(spec, Analysis) else analyze(spec, **values)
    if analysis.symbolic:
        raise ArchcalcError(
            "building a model needs numbers; give every symbol a value (--set NAME=VALUE)"
        )
    by_path: dict[str, nn.Module] = {}
    layers = _chain(analysis, analysis.tree, by_path)
    return SpecModel(analysis, layers, by_path).to(device)


def _chain(analysis: Analysis, items: list[Item], by_path: dict[str, nn.Module]) -> Chain:
    named: list[tuple[str, nn.Module]] = []
    for index, item in enumerate(items):
        named += [(name if name != "" else str(index), module)
                  for name, module in _item(analysis, item, str(index), by_path)]  # fmt: skip
    return Chain(named)


def _item(analysis: Analysis, item: Item, name: str, by_path: dict) -> list[tuple[str, nn.Module]]:
    rows = analysis.rows[item.first_row : item.end_row]
    tail = rows[-1] if rows and rows[-1].path == f"{item.path}.activation" else None
    if item.type == "residual":
        body, shortcut = item.children
        activation = leaf_module(tail) if tail is not None else None
        if tail is not None:
            by_path[tail.path] = activation
        module = Residual(
            _chain(analysis, body, by_path), _chain(analysis, shortcut, by_path), activation
        )
        return [(name, module)]
    if item.type == "concat":
        return [(name, Concat([_chain(analysis, branch, by_path) for branch in item.children]))]
    if item.type == "repeat":
        iterations = _split_iterations(item)
        chains = [
            (str(k), Sequence(_chain(analysis, its, by_path))) for k, its in enumerate(iterations)
        ]
        return [(name, Chain(chains))]
    if item.children:  # block call
        return [(name, Sequence(_chain(analysis, item.children[0], by_path)))]
    leaf = rows[0]
    module = leaf_module(leaf)
    by_path[leaf.path] = module
    named = [(name, module)]
    if tail is not None and tail is not leaf:
        activation = leaf_module(tail)
        by_path[tail.path] = activation
        named.append((f"{name}_activation", activation))
    return named


def _split_iterations(item: Item) -> list[list[Item]]:
    """A repeat's flattened children, regrouped by iteration (``layers[2][k]...``)."""
    groups: dict[int, list[Item]] = {}
    prefix = f"{item.path}["
    for child in item.children[0]:
        k = int(child.path[len(prefix) :].split("]", 1)[0])
        groups.setdefault(k, []).append(child)
    return [groups[k] for k in sorted(groups)]


def _ints(values: Any) -> Any:
    return tuple(int(v) for v in values) if isinstance(values, tuple) else int(values)


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
        padding = "same" if h.get("same") else _ints(h["padding"])
        return cls(int(row.input[0]), int(h["out_channels"]), _ints(h["kernel_size"]),
                   stride=_ints(h["stride"]), padding=padding, dilation=_ints(h["dilation"]),
                   groups=int(h["groups"]), bias=h["bias"])  # fmt: skip
    if kind == "linear":
        return nn.Linear(int(row.input[0]), int(h["out_features"]), bias=h["bias"])
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
    simple = {
        "flatten": lambda: nn.Flatten(),
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
        "softmax": lambda: nn.Softmax(dim=1),
        "identity": lambda: nn.Identity(),
    }
    if kind not in simple:
        raise ArchcalcError(f"verify cannot build layer type {kind!r}", path=row.path)
    return simple[kind]()
