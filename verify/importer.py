"""``archcalc import``: an ``nn.Module`` traced with torch.fx and written as a spec.

The module is traced at module granularity (every torch.nn layer the spec language
has is a leaf; containers and user modules are traced through) and run once on an
example input, so every node's shape and every shape computation is known. Each
node then becomes a spec item: a module its layer type, a function or method its
equivalent (``x + y`` an ``add``, ``torch.cat`` a ``concat``, ``x.view(n, -1)`` a
``reshape``...). Items are named after the module paths (``layer1.0.conv1``); an
item reads a named tensor (``input:``/``inputs:``) only where the graph is not
sequential. Anything without an equivalent is an error that names the module path
and the operation, with how much of the network was understood: nothing partial
is written.

The spec records its source (``source:``): the module, its arguments and which
module each item's parameters came from, so that ``archcalc verify`` can load the
original weights into the spec's model and check that both compute the same
function.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import fx, nn

from archcalc.errors import ArchcalcError
from verify.folding import Item, fold
from verify.import_common import (
    _ACTIVATIONS,
    _ADAPTIVE,
    _CONV,
    _CONV_T,
    _LEAF_NAMES,
    _LEAF_TYPES,
    _NORMS,
    _POOLS,
    _describe,
    _dim,
    _is_tensor_tuple,
    _size,
    _Unsupported,
    _where,
)
from verify.import_export import export_graph
from verify.import_functions import FunctionConversions
from verify.import_symbolic import make_symbolic, parse_names


@dataclass
class Imported:
    """The result of :func:`import_module`."""

    spec: dict[str, Any]
    method: str  # how the module was traced
    operations: int  # graph operations understood (and written)
    parameters: dict[str, str] = field(default_factory=dict)  # item name -> module path


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if type(m) in _LEAF_TYPES or type(m).__name__ in _LEAF_NAMES:
            return True
        if isinstance(m, nn.LayerNorm) and type(m).forward is not nn.LayerNorm.forward:
            return False  # a subclass with its own forward (LayerNorm2d): trace it through
        return isinstance(m, _LEAF_TYPES) or super().is_leaf_module(m, qualname)


class _Recorder(fx.Interpreter):
    """Runs the traced module once and keeps every node's value (tensors as their shapes)."""

    def __init__(self, gm: fx.GraphModule):
        super().__init__(gm)
        self.values: dict[fx.Node, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        self.values[n] = out
        return out


def trace(module: nn.Module, input_shape: tuple[int, ...]) -> tuple[fx.GraphModule, dict, str]:
    """The module's fx graph and every node's value on a random example (batch 2: batch
    norm in training mode needs more than one value per channel). Where torch.fx cannot
    trace (Python control flow on shapes), torch.export on the example gives the graph,
    rebuilt at module granularity (:mod:`verify.import_export`)."""
    example = torch.randn(2, *input_shape)
    method = "torch.fx symbolic tracing"
    try:
        gm = fx.GraphModule(module, _Tracer().trace(module))
    except Exception as err:  # torch.fx raises many kinds; say which and why, in one line
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        reason = f"{type(err).__name__}: {detail}"
        gm = export_graph(module, example, _Tracer().is_leaf_module, reason)
        method = f"torch.export, at this input shape; torch.fx could not trace it ({reason})"
    recorder = _Recorder(gm)
    with torch.no_grad():
        recorder.run(example)
    return gm, recorder.values, method


class _Converter(FunctionConversions):
    def __init__(self, gm: fx.GraphModule, values: dict):
        self.gm, self.values = gm, values
        self.modules = dict(gm.named_modules())
        self.items: list[Item] = []
        self.refs: dict[fx.Node, Any] = {}  # node -> tensor name, or a python value/tuple
        self.used_names: set[str] = set()
        self.parameters: dict[str, str] = {}
        self.problems: list[str] = []
        self.understood = 0
        self.last: str | None = "input"
        self.learned: set[str] = set()  # items that are learned tensors (get_attr)
        self.classes: dict[str, str] = {}  # user module path -> class name

    # -- helpers

    def shape(self, n: fx.Node) -> tuple[int, ...]:
        return tuple(self.values[n].shape[1:])

    def tensor(self, arg: Any) -> str:
        ref = self.refs.get(arg) if isinstance(arg, fx.Node) else None
        if not isinstance(ref, str):
            raise _Unsupported("reads something that is not a tensor")
        return ref

    def emit(
        self, n: fx.Node, item: dict[str, Any], inputs: list[str], module: str | None = None,
        weights_from: str | None = None,
    ) -> None:  # fmt: skip
        name = module if module and module not in self.used_names else n.name
        if weights_from is not None:  # a function of a module (LayerNorm2d's F.layer_norm)
            name = f"{weights_from}.{n.name}"
        self.used_names.add(name)
        entry: dict[str, Any] = {"name": name, "type": item["type"]}
        entry.update(_without_defaults(item))
        scopes, calls = self.scopes(n, module)
        self.items.append(Item(entry, list(inputs), scopes, calls, weights_from or module))
        self.refs[n] = name
        self.last = name
        owner = self.modules.get(module) if module is not None else None
        if owner is not None and any(True for _ in owner.parameters(recurse=True)):
            self.parameters[name] = module
        if weights_from is not None:
            self.parameters[name] = weights_from
        self.understood += 1

    def scopes(self, n: Any, module: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The user modules (not torch.nn's) the node sits in, outermost first, and the
        calls of them (torch.fx keys a module's second call ``blk@1``)."""
        stack = getattr(n, "meta", {}).get("nn_module_stack") or {}
        found, calls = [], []
        for key, (path, kind) in stack.items():
            if path == module or kind.__module__.startswith("torch.nn"):
                continue
            found.append(path)
            calls.append(str(key))
            self.classes.setdefault(path, kind.__name__)
        return tuple(found), tuple(calls)

    def alias(self, n: fx.Node, source: Any) -> None:
        """A node that is its input (contiguous, dropout-free views, expand on a parameter)."""
        self.refs[n] = self.refs.get(source, source) if isinstance(source, fx.Node) else source
        self.understood += 1

    # -- the walk

    def run(self) -> None:
        for n in self.gm.graph.nodes:
            try:
                self.convert(n)
            except _Unsupported as err:
                self.problems.append(f"{_where(n)} ({_describe(n)}): {err}")
                self.refs[n] = None

    def convert(self, n: fx.Node) -> None:
        op = n.op
        if op == "placeholder":
            if self.refs:
                raise _Unsupported("only one input is supported")
            self.refs[n] = "input"
            return
        if op == "output":
            return
        value = self.values.get(n)
        if op == "get_attr":
            self.parameter(n, value)
            return
        if op == "call_module":
            self.module(n, self.modules[n.target])
            return
        if not isinstance(value, torch.Tensor) and not _is_tensor_tuple(value):
            if (
                op == "call_function"
                and n.target is operator.getitem
                and isinstance(self.refs.get(n.args[0]), tuple)
            ):
                self.refs[n] = self.refs[n.args[0]][n.args[1]]
                return
            self.refs[n] = value  # shape arithmetic, asserts: plain values
            return
        if op == "call_function" and isinstance(n.target, type) and issubclass(n.target, tuple):
            self.refs[n] = tuple(self.tensor(a) for a in [*n.args, *n.kwargs.values()])
            self.understood += 1  # several outputs (Inception-v3's InceptionOutputs)
        elif op == "call_function":
            self.function(n, n.target)
        else:
            self.method(n, n.target)

    # -- get_attr: learned tensors

    def parameter(self, n: fx.Node, value: Any) -> None:
        if not isinstance(value, torch.Tensor):
            self.refs[n] = value
            return
        shape = tuple(value.shape)
        # a leading 1 is the batch dimension where the tensor meets batched ones at its own
        # rank (ViT's class token expanded, its position embedding added); else all is per sample
        per_sample = list(shape[1:]) if self._batched(n, len(shape)) else list(shape)
        item: dict[str, Any] = {"type": "parameter", "shape": per_sample}
        if value.numel():  # how it starts (ConvNeXt's layer scale 1e-6, ViT's embedding 0.02)
            values = value.detach().float()
            mean = float(values.mean())
            spread = float(values.std()) if value.numel() > 1 else 0.0
            if abs(mean) > 1e-12 and spread <= 1e-6 * abs(mean):
                item["init"] = float(f"{mean:.6g}")
            elif spread > 1e-12:
                item["std"] = float(f"{spread:.3g}")
        self.emit(n, item, [], str(n.target))
        self.parameters[self.refs[n]] = str(n.target)
        self.learned.add(self.refs[n])

    def _batched(self, n: fx.Node, rank: int) -> bool:
        if rank < 2 or self.values[n].shape[0] != 1:
            return False
        for user in n.users:
            if user.op == "call_method" and user.target == "expand":
                return True
            if user.op == "call_method" and user.target == "unsqueeze":
                return False  # verify's own learned tensors: per sample, the batch added
            for other in [*user.args, *(a for a in user.args if isinstance(a, (list, tuple)))]:
                others = other if isinstance(other, (list, tuple)) else [other]
                for o in others:
                    if (
                        isinstance(o, fx.Node)
                        and o is not n
                        and isinstance(self.values.get(o), torch.Tensor)
                    ):
                        return self.values[o].dim() == rank
        return False

    # -- modules

    def module(self, n: fx.Node, m: nn.Module) -> None:
        args = [a for a in n.args]
        x = self.tensor(args[0]) if args else None
        kind = type(m)
        path = str(n.target)
        if isinstance(m, _CONV_T):
            item = {"type": f"conv_transpose{m.weight.dim() - 2}d", "out_channels": m.out_channels,
                    "kernel_size": _size(m.kernel_size), "stride": _size(m.stride),
                    "padding": _size(m.padding), "output_padding": _size(m.output_padding),
                    "dilation": _size(m.dilation), "groups": m.groups, "bias": m.bias is not None}  # fmt: skip
            if m.padding_mode != "zeros":
                raise _Unsupported(f"padding_mode={m.padding_mode!r}")
        elif isinstance(m, _CONV):
            if m.padding_mode != "zeros":
                raise _Unsupported(f"padding_mode={m.padding_mode!r}")
            padding = m.padding if isinstance(m.padding, str) else _size(m.padding)
            item = {"type": f"conv{m.weight.dim() - 2}d", "out_channels": m.out_channels,
                    "kernel_size": _size(m.kernel_size), "stride": _size(m.stride),
                    "padding": padding, "dilation": _size(m.dilation), "groups": m.groups,
                    "bias": m.bias is not None}  # fmt: skip
        elif kind is nn.Linear or isinstance(m, nn.Linear):
            item = {"type": "linear", "out_features": m.out_features, "bias": m.bias is not None}
        elif isinstance(m, nn.MultiheadAttention):
            self.attention(n, m, path)
            return
        elif kind in _POOLS:
            item = self.pool(m, _POOLS[kind])
        elif kind in _ADAPTIVE:
            size = m.output_size
            if any(s is None for s in (size if isinstance(size, tuple) else (size,))):
                raise _Unsupported("an output_size of None")
            item = {"type": _ADAPTIVE[kind], "output_size": _size(size)}
        elif kind in _NORMS:
            item = {"type": _NORMS[kind], "eps": m.eps, "momentum": m.momentum, "affine": m.affine}
            if kind.__name__.startswith("Instance"):
                item["track_running_stats"] = m.track_running_stats
            if m.momentum is None:
                raise _Unsupported("momentum=None (cumulative averages)")
        elif isinstance(m, nn.LayerNorm):
            if m.elementwise_affine and m.bias is None:
                raise _Unsupported("a layer norm without bias")
            item = {"type": "layernorm", "normalized_shape": _size(m.normalized_shape),
                    "eps": m.eps, "elementwise_affine": m.elementwise_affine}  # fmt: skip
        elif isinstance(m, nn.GroupNorm):
            item = {
                "type": "group_norm",
                "num_groups": m.num_groups,
                "eps": m.eps,
                "affine": m.affine,
            }
        elif isinstance(m, nn.LocalResponseNorm):
            item = {"type": "local_response_norm", "size": m.size, "alpha": m.alpha,
                    "beta": m.beta, "k": m.k}  # fmt: skip
        elif kind in (nn.Dropout, nn.Dropout2d):
            item = {"type": "dropout" if kind is nn.Dropout else "dropout2d", "p": m.p}
        elif kind.__name__ == "StochasticDepth":
            item = {"type": "stochastic_depth", "p": m.p, "mode": m.mode}
        elif kind.__name__ == "Permute":
            if m.dims[0] != 0:
                raise _Unsupported("a permutation that moves the batch dimension")
            item = {"type": "permute", "dims": [d - 1 for d in m.dims[1:]]}
        elif kind is nn.Flatten:
            item = {"type": "flatten", "start_dim": _dim(m.start_dim, 0),
                    "end_dim": _dim(m.end_dim, 0)}  # fmt: skip
        elif kind is nn.Upsample:
            item = self.upsample(n, m.mode, m.align_corners)
        elif kind is nn.PixelShuffle:
            item = {"type": "pixel_shuffle", "upscale_factor": m.upscale_factor}
        elif kind is nn.ChannelShuffle:
            item = {"type": "channel_shuffle", "groups": m.groups}
        elif kind in (nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d):
            pads = list(m.padding)
            pairs = [[pads[i], pads[i + 1]] for i in range(0, len(pads), 2)][::-1]
            item = {"type": "zero_pad", "padding": pairs}
        elif kind in _ACTIVATIONS:
            item = self.activation_item(_ACTIVATIONS[kind], m)
        else:
            raise _Unsupported(f"module {kind.__name__} has no spec equivalent")
        self.emit(n, item, [x], path)

    def pool(self, m: nn.Module, kind: str) -> dict[str, Any]:
        item = {"type": kind, "kernel_size": _size(m.kernel_size), "stride": _size(m.stride),
                "padding": _size(m.padding), "ceil_mode": m.ceil_mode}  # fmt: skip
        if kind.startswith("max"):
            if m.return_indices:
                raise _Unsupported("return_indices=True")
            item["dilation"] = _size(m.dilation)
        else:
            if m.divisor_override is not None:
                raise _Unsupported("divisor_override")
            item["count_include_pad"] = m.count_include_pad
        return item

    def pool_function(self, n: fx.Node, target: Any) -> None:
        """F.avg_pool2d / F.max_pool2d(x, kernel_size, stride, padding, ...)."""
        names = ["input", "kernel_size", "stride", "padding"]
        given = dict(zip(names, n.args)) | dict(n.kwargs)
        dims = target.__name__[-2]
        kind = ("avgpool" if "avg" in target.__name__ else "maxpool") + f"{dims}d"
        kernel = given["kernel_size"]
        stride = given.get("stride") or kernel
        item = {"type": kind, "kernel_size": _size(kernel), "stride": _size(stride),
                "padding": _size(given.get("padding", 0)),
                "ceil_mode": given.get("ceil_mode", False)}  # fmt: skip
        if kind.startswith("avg"):
            if given.get("divisor_override") is not None:
                raise _Unsupported("divisor_override")
            item["count_include_pad"] = given.get("count_include_pad", True)
        else:
            if given.get("return_indices"):
                raise _Unsupported("return_indices=True")
            item["dilation"] = _size(given.get("dilation", 1))
        self.emit(n, item, [self.tensor(given["input"])])

    def activation_item(
        self, kind: str, m: nn.Module | None = None, **given: Any
    ) -> dict[str, Any]:
        item: dict[str, Any] = {"type": kind}
        if kind == "leaky_relu":
            item["negative_slope"] = given.get("negative_slope", getattr(m, "negative_slope", 0.01))
        elif kind == "elu":
            item["alpha"] = given.get("alpha", getattr(m, "alpha", 1.0))
        elif kind == "gelu":
            approximate = given.get("approximate", getattr(m, "approximate", "none"))
            if approximate != "none":
                raise _Unsupported(f"gelu with approximate={approximate!r}")
        elif kind == "hardtanh":
            item["min_val"], item["max_val"] = m.min_val, m.max_val
        elif kind == "softplus":
            item["beta"], item["threshold"] = float(m.beta), float(m.threshold)
        elif kind in ("softmax", "log_softmax"):
            dim = given.get("dim", getattr(m, "dim", None))
            if dim is None:
                raise _Unsupported(f"{kind} without dim")
            item["dim"] = _dim(dim, 0)
        elif kind == "prelu":
            item["num_parameters"] = m.num_parameters
            item["init"] = float(m.init) if hasattr(m, "init") else 0.25
        return item

    def upsample(self, n: fx.Node, mode: str, align_corners: Any) -> dict[str, Any]:
        item: dict[str, Any] = {"type": "upsample", "size": list(self.shape(n)[1:]), "mode": mode}
        if align_corners is not None and mode != "nearest":
            item["align_corners"] = align_corners
        return item

    def attention(self, n: fx.Node, m: nn.MultiheadAttention, path: str) -> None:
        q, k, v = (n.args + (None, None, None))[:3]
        if k is None and v is None and len(n.args) == 1:  # self-attention written as m(x)
            k = v = q
        if not m.batch_first:
            raise _Unsupported("multi-head attention with batch_first=False")
        if not (q is k is v):
            raise _Unsupported("attention that is not self-attention (query, key and value differ)")
        if n.kwargs.get("attn_mask") is not None or n.kwargs.get("key_padding_mask") is not None:
            raise _Unsupported("an attention mask")
        if m.kdim != m.embed_dim or m.vdim != m.embed_dim or m.bias_k is not None:
            raise _Unsupported("kdim/vdim or add_bias_kv")
        item = {"type": "multihead_attention", "num_heads": m.num_heads,
                "bias": m.in_proj_bias is not None, "dropout": m.dropout}  # fmt: skip
        self.emit(n, item, [self.tensor(q)], path)
        if isinstance(self.values.get(n), (tuple, list)):  # nn.MultiheadAttention's (out, weights)
            self.refs[n] = (self.refs[n], None)

    # -- functions and methods


def _without_defaults(item: dict[str, Any]) -> dict[str, Any]:
    """The item's fields that differ from the spec language's defaults (PyTorch's).

    The defaults are read from the fast reader's table, generated from the pydantic models
    (a test keeps it current), rather than from the models, whose construction costs a
    quarter of a second."""
    from archcalc.language._fast_table import TABLE

    entry = TABLE["models"][TABLE["layer_types"][item["type"]]]
    defaults = {field: default for field, _, default in entry["fields"]}
    kept = {}
    for key, value in item.items():
        default = defaults.get(key)
        if key == "type":
            continue
        if default is None or default[0] != "value" or value != default[1]:
            kept[key] = value  # not a field, required, a factory's, or not the default
    return kept


def _refuse_shared_weights(module: nn.Module, owners: dict[str, str]) -> None:
    """A module (or learned tensor) whose weights several items use cannot be written: a spec
    gives every layer its own weights, so its parameters would be counted once per call."""
    items: dict[str, list[str]] = {}
    for item, owner in owners.items():
        items.setdefault(owner, []).append(item)
    shared = {owner: names for owner, names in items.items() if len(names) > 1}
    if not shared:
        return
    owner, names = next(iter(shared.items()))
    try:
        found = module.get_submodule(owner)
        count = sum(p.numel() for p in found.parameters())
        what = f"module {owner!r} ({type(found).__name__}, {count:,} parameters)"
    except AttributeError:  # a learned tensor, not a module
        what = f"learned tensor {owner!r}"
    raise ArchcalcError(
        f"cannot import {type(module).__name__}: {what} is used {len(names)} times with the same "
        f"weights (at {', '.join(names)}); a spec gives every layer its own weights, so "
        f"archcalc cannot count them as PyTorch does" + (
            f" (and {len(shared) - 1} more shared)" if len(shared) > 1 else "")
    )  # fmt: skip


def import_module(
    module: nn.Module, input_shape: tuple[int, ...], *, name: str | None = None,
    source: dict[str, Any] | None = None, blocks: bool = True, training: bool = False,
    symbolic: str | Sequence[str] | None = None,
) -> Imported:  # fmt: skip
    """The spec of ``module`` for inputs of ``input_shape`` (channels first, no batch).

    ``training``: trace the training-mode forward pass (Inception-v3's auxiliary head runs
    only there); the spec's layers are the same modules either way. ``symbolic`` (``"H,W"``)
    names the input's trailing sizes as symbols, where a second import at another size
    shows that nothing else in the spec depends on them (see :mod:`verify.import_symbolic`).
    """
    symbols = parse_names(symbolic, tuple(input_shape)) if symbolic else None
    module = module.train(training)
    gm, values, method = trace(module, input_shape)
    conv = _Converter(gm, values)
    conv.run()
    if conv.problems:
        total = conv.understood + len(conv.problems)
        shown = "; ".join(conv.problems[:3]) + (f"; and {len(conv.problems) - 3} more"
                                                 if len(conv.problems) > 3 else "")  # fmt: skip
        raise ArchcalcError(
            f"cannot import {type(module).__name__}: {len(conv.problems)} of {total} operations "
            f"have no spec equivalent: {shown}; understood {conv.understood} of {total}"
        )
    _refuse_shared_weights(module, conv.parameters)
    outputs = [n for n in gm.graph.nodes if n.op == "output"][0].args[0]
    outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
    if len(outputs) == 1 and isinstance(conv.refs.get(outputs[0]), tuple):
        names = list(conv.refs[outputs[0]])
    else:
        names = [conv.tensor(o) for o in outputs]
    classes = {path: kind.lstrip("_") or "block" for path, kind in conv.classes.items()}
    folded = fold(conv.items, classes if blocks else {})
    spec: dict[str, Any] = {
        "name": name or type(module).__name__,
        "description": f"imported from {type(module).__module__}.{type(module).__name__} by "
        f"archcalc import ({method})",
        "input": list(input_shape),
    }
    if folded.blocks:
        spec["blocks"] = folded.blocks
    spec["layers"] = folded.layers
    names = [folded.renamed(n) for n in names]
    if len(names) > 1 or names[0] != folded.layers[-1]["name"]:
        spec["outputs"] = names
    if source is not None:  # item names that are module paths need no entry
        renamed = {k: v for k, v in conv.parameters.items() if k != v}
        spec["source"] = {**source, **({"parameters": renamed} if renamed else {})}
    if symbols:
        spec = make_symbolic(spec, tuple(input_shape), symbols, lambda shape: import_module(
            module, shape, name=name, source=source, blocks=blocks, training=training).spec)  # fmt: skip
    return Imported(spec, method, conv.understood, conv.parameters)
