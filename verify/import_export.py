"""The importer's fallback where torch.fx cannot trace: torch.export, at module granularity.

torch.fx traces symbolically, so Python control flow on shapes (``if x.shape[-1] > 8:``,
``if x.size(1) != 3: raise ...``) stops it. torch.export (non-strict) runs the forward
pass on the example input and records the ATen operations, specialised to its shape; its
graph is then rebuilt as the module-granular fx graph the importer's converter reads:

- every node knows its modules (``nn_module_stack``); the nodes of one call of a leaf
  module (a torch.nn layer the spec language has, by the fx tracer's own rule) become one
  ``call_module`` node reading the tensor that feeds the call, their parameters with them;
- every other node becomes the torch-level function or method the converter knows
  (``aten.add.Tensor`` is ``x + y``, ``aten.view.default`` ``x.view(...)``,
  ``aten.select.int`` ``x[:, i]``); one it does not know keeps its ATen operation, which
  the converter then reports with what it could not import, as it does any operation;
- a parameter used outside its layer (a class token) is a ``get_attr`` of its path.

The graph computes the function of the module at the example's shape only: the branch
the example took is the graph.
"""

from __future__ import annotations

import io
import logging
import operator
from contextlib import contextmanager, redirect_stderr
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

from archcalc.errors import ArchcalcError

aten = torch.ops.aten


def constant_tensor(value: torch.Tensor) -> torch.Tensor:
    """A tensor the forward pass made (``torch.ones(3)``): it has no spec equivalent."""
    return value


def _first_line(err: BaseException) -> str:
    text = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@contextmanager
def _quiet() -> Any:
    """torch.export logs its guards and prints its partial graph when it fails (to stderr);
    the one-line error says what failed."""
    loggers = [logging.getLogger(name) for name in ("torch", "torch.fx", "torch._dynamo")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with redirect_stderr(io.StringIO()):
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_graph(
    module: nn.Module, example: torch.Tensor, is_leaf: Callable[[nn.Module, str], bool],
    fx_failure: str,
) -> fx.GraphModule:  # fmt: skip
    """The module-granular fx graph of ``module`` exported on ``example`` (its current
    train/eval mode); ``fx_failure`` is why torch.fx could not trace it."""
    name = type(module).__name__
    try:
        with _quiet():
            program = torch.export.export(module, (example,), strict=False)
    except Exception as err:  # torch.export raises many kinds; say which and why, in one line
        raise ArchcalcError(
            f"torch.fx cannot trace {name} ({fx_failure}), nor can torch.export "
            f"({_first_line(err)}); data-dependent control flow or an untraceable operation"
        ) from None
    return _Rebuilder(module, program, is_leaf).build()


class _Rebuilder:
    """The exported ATen graph rebuilt with one ``call_module`` node per leaf module call."""

    def __init__(self, module: nn.Module, program: Any, is_leaf: Callable):
        from torch.export.graph_signature import InputKind, OutputKind

        self.modules = dict(module.named_modules())
        self.name = type(module).__name__
        self.is_leaf = is_leaf
        self.program = program
        self.graph = fx.Graph()
        self.env: dict[fx.Node, Any] = {}  # exported node -> new node
        self.attrs: dict[str, str] = {}  # placeholder name -> attribute path (or constant)
        self.constants: dict[str, torch.Tensor] = {}
        self.root: dict[str, Any] = {}  # what the new graph's get_attr/call_module nodes name
        self.user_input: str | None = None
        for spec in program.graph_signature.input_specs:
            arg = getattr(spec.arg, "name", None)
            if spec.kind == InputKind.USER_INPUT:
                self.user_input = arg
            elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
                self.attrs[arg] = spec.target
            elif spec.kind == InputKind.CONSTANT_TENSOR:
                self.constants[arg] = program.constants[spec.target]
        self.outputs = [spec.arg.name for spec in program.graph_signature.output_specs
                        if spec.kind == OutputKind.USER_OUTPUT]  # fmt: skip
        self.state = {**dict(module.named_parameters(remove_duplicate=False)),
                      **dict(module.named_buffers(remove_duplicate=False))}  # fmt: skip

    # -- which leaf module call a node belongs to

    def leaf(self, n: fx.Node) -> tuple[str, str] | None:
        """(the call's key, the module path) of the outermost leaf module around ``n``."""
        for key, (path, _) in (n.meta.get("nn_module_stack") or {}).items():
            m = self.modules.get(path)
            if path and m is not None and self.is_leaf(m, path):
                return key, path
        return None

    def stack(self, n: fx.Node | None, upto: str | None = None) -> dict[str, tuple[str, type]]:
        """The node's modules as the fx tracer records them: (path, class), the root left out,
        ending with the leaf ``upto``, or (by default) before the first leaf."""
        found: dict[str, tuple[str, type]] = {}
        for key, (path, _) in (n.meta.get("nn_module_stack") or {} if n else {}).items():
            m = self.modules.get(path)
            if not path or m is None:
                continue
            if upto is None and self.is_leaf(m, path):
                break
            found[key] = (path, type(m))
            if path == upto:
                break
        return found

    def groups(self) -> list[tuple[str | None, list[fx.Node]]]:
        """The graph's operations in order: (leaf path, the nodes of one call), or (None, [node])."""
        found: list[tuple[str | None, list[fx.Node]]] = []
        current: tuple[str, str] | None = None
        for n in self.program.graph.nodes:
            if n.op != "call_function":
                current = None
                continue
            where = self.leaf(n)
            if where is not None and where == current:  # torch keys each call (`act@1`)
                found[-1][1].append(n)
                continue
            current = where
            found.append((where[1] if where else None, [n]))
        return found

    # -- building

    def build(self) -> fx.GraphModule:
        for n in self.program.graph.nodes:
            if n.op == "placeholder" and n.name == self.user_input:
                self.env[n] = self.graph.placeholder(n.name)
        for path, nodes in self.groups():
            if path is None:
                self.operation(nodes[0])
            else:
                self.call(path, nodes)
        out = [self.value(self.find(name)) for name in self.outputs]
        self.graph.output(out[0] if len(out) == 1 else tuple(out))
        return fx.GraphModule(self.root, self.graph)

    def find(self, name: str) -> fx.Node:
        return next(n for n in self.program.graph.nodes if n.name == name)

    def value(self, arg: Any, reader: fx.Node | None = None) -> Any:
        """The new graph's counterpart of an exported node (or of nodes inside a value); a
        parameter is fetched where ``reader`` first reads it, in the modules around it."""

        def one(n: fx.Node) -> Any:
            if n in self.env:
                return self.env[n]
            if n.name in self.attrs:  # a parameter outside its layer: a get_attr of its path
                target = self.attrs[n.name]
                self.root[target] = self.state[target]
                node = self.graph.get_attr(target)
            elif n.name in self.constants:
                target = f"_constant_{len([k for k in self.root if k.startswith('_constant')])}"
                self.root[target] = self.constants[n.name]
                node = self.graph.call_function(constant_tensor, (self.graph.get_attr(target),))
            else:
                raise ArchcalcError(
                    f"cannot import {self.name}: the torch.export graph reads {n.name} ({n.op}), "
                    "which the importer cannot "
                    "rebuild (a higher-order operation: torch.no_grad or torch.cond in forward?)"
                )
            node.meta["nn_module_stack"] = self.stack(reader)
            self.env[n] = node
            return node

        return fx.node.map_arg(arg, one)

    def call(self, path: str, nodes: list[fx.Node]) -> None:
        """One call of a leaf module: a call_module node on the tensors fed from outside."""
        inside = set(nodes)
        own = f"{path}."
        inputs: list[fx.Node] = []
        for n in nodes:
            for a in n.all_input_nodes:
                if a in inside or a in inputs:
                    continue
                if a.name in self.attrs and self.attrs[a.name].startswith(own):
                    continue  # the layer's own weights
                inputs.append(a)
        outputs = [n for n in nodes if any(u not in inside for u in n.users)]
        m = self.modules[path]
        self.root[path] = m
        args = tuple(self.value(a, nodes[0]) for a in inputs)
        if isinstance(m, nn.MultiheadAttention) and len(args) == 1:
            args, inputs = args * 3, inputs * 3  # self-attention: m(x, x, x)
        node = self.graph.call_module(path, args)
        node.meta["nn_module_stack"] = self.stack(nodes[0], upto=path)
        if not _returns_several(m):
            for out in outputs:
                self.env[out] = node
            return
        for out in outputs:  # attention's (output, weights): which one each use reads
            index = _output_index(m, inputs, out)
            piece = self.graph.call_function(operator.getitem, (node, index))
            piece.meta["nn_module_stack"] = dict(node.meta["nn_module_stack"])
            self.env[out] = piece

    def operation(self, n: fx.Node) -> None:
        """A node outside every leaf: its torch-level form, or its ATen operation as it is."""
        args, kwargs = self.value(n.args, n), self.value(n.kwargs, n)
        mapped = _torch_level(n, args, kwargs)
        op, target, args, kwargs = mapped or ("call_function", n.target, args, kwargs)
        node = self.graph.create_node(op, target, tuple(args), dict(kwargs), name=n.name)
        node.meta["nn_module_stack"] = self.stack(n)
        self.env[n] = node
        if _in_place(n) and n.args and isinstance(n.args[0], fx.Node):
            self.env[n.args[0]] = node  # later readers of what was changed read the change


def _returns_several(m: nn.Module) -> bool:
    return isinstance(m, (nn.MultiheadAttention, nn.RNNBase)) or bool(
        getattr(m, "return_indices", False)
    )


def _output_index(m: nn.Module, inputs: list[fx.Node], out: fx.Node) -> int:
    """Which of a tuple-returning layer's outputs ``out`` is, by its shape (the first
    that fits: attention's output before its weights)."""
    shapes = [tuple(a.meta["val"].shape) for a in inputs if "val" in a.meta]
    with torch.no_grad():
        results = m(*(torch.zeros(s) for s in shapes))
    want = tuple(out.meta["val"].shape) if "val" in out.meta else None
    for i, r in enumerate(results):
        if isinstance(r, torch.Tensor) and tuple(r.shape) == want:
            return i
    return 0


def _in_place(n: fx.Node) -> bool:
    schema = getattr(n.target, "_schema", None)
    return bool(schema is not None and schema.arguments and schema.arguments[0].alias_info
                and schema.arguments[0].alias_info.is_write)  # fmt: skip


def _rank(n: Any) -> int:
    return n.meta["val"].dim() if isinstance(n, fx.Node) and "val" in n.meta else 0


def _at(args: tuple, i: int, default: Any = None) -> Any:
    return args[i] if len(args) > i else default


def _torch_level(n: fx.Node, args: tuple, kwargs: dict) -> tuple | None:
    """(op, target, args, kwargs) of the torch function or tensor method the fx tracer
    would have recorded for the ATen node ``n`` (its arguments already rebuilt), or None."""
    packet = getattr(n.target, "_overloadpacket", None)
    name = getattr(packet, "__name__", None)
    if n.target is operator.getitem:
        return "call_function", operator.getitem, args, kwargs
    if name is None:
        return None
    base = name.rstrip("_") if name.endswith("_") and not name.startswith("_") else name
    x = args[0] if args else None
    function = lambda target, *a, **k: ("call_function", target, (x, *a), k)  # noqa: E731
    method = lambda target, *a, **k: ("call_method", target, (x, *a), k)  # noqa: E731
    if base in ("add", "mul") and n.target.__name__.split(".")[1] in ("Tensor", "Scalar"):
        if kwargs.get("alpha", 1) != 1:
            return None
        return "call_function", operator.add if base == "add" else operator.mul, args[:2], {}
    simple = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
              "silu": F.silu, "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid,
              "mish": F.mish, "selu": F.selu, "relu6": F.relu6, "matmul": torch.matmul}  # fmt: skip
    if base in simple:
        return "call_function", simple[base], args, {}
    if base == "gelu":
        return function(F.gelu, approximate=kwargs.get("approximate", "none"))
    if base == "leaky_relu":
        return function(F.leaky_relu, _at(args, 1, 0.01))
    if base == "elu" and tuple(args[2:4]) in ((), (1,), (1, 1)):
        return function(F.elu, _at(args, 1, 1.0))
    if base == "hardtanh" and (_at(args, 1, -1.0), _at(args, 2, 1.0)) == (0.0, 6.0):
        return function(F.relu6)
    if name == "cat":
        return "call_function", torch.cat, (args[0], _at(args, 1, kwargs.get("dim", 0))), {}
    if name in ("view", "_unsafe_view", "reshape"):
        return method("view" if name != "reshape" else "reshape", *args[1:])
    if name == "flatten":
        return function(torch.flatten, *args[1:])
    if name == "expand":
        return method("expand", *args[1:])
    if name in ("contiguous", "clone", "alias", "detach"):
        return method("contiguous")
    if name in ("permute", "transpose", "unsqueeze", "narrow"):
        return method(name, *args[1:])
    if name == "mean" and n.target.__name__.endswith(".dim"):
        return method("mean", _at(args, 1), _at(args, 2, kwargs.get("keepdim", False)))
    if name in ("chunk", "split", "split_with_sizes"):
        dim = _at(args, 2, kwargs.get("dim", 0))
        return method("chunk" if name == "chunk" else "split", args[1], dim=dim)
    if name == "select":
        dim = args[1] % _rank(n.args[0])
        return "call_function", operator.getitem, (x, (slice(None),) * dim + (args[2],)), {}
    if name == "slice":
        dim, start, end, step = (list(args[1:]) + [0, None, None, 1][len(args) - 1 :])[:4]
        dim = dim % _rank(n.args[0])
        size = n.args[0].meta["val"].shape[dim]
        if start in (None, 0) and (end is None or end >= size) and step == 1:
            return method("contiguous")  # the whole dimension: the tensor itself
        return "call_function", operator.getitem, (x, (slice(None),) * dim + (slice(start, end, step),)), {}  # fmt: skip
    if name in ("softmax", "_softmax", "log_softmax", "_log_softmax"):
        target = torch.softmax if "log" not in name else F.log_softmax
        return "call_function", target, (x, args[1]), {}
    if name == "dropout":
        return function(F.dropout, _at(args, 1, 0.5), _at(args, 2, True))
    if name == "layer_norm":
        return "call_function", F.layer_norm, tuple(args[:5]), {}
    if name in ("max_pool1d", "max_pool2d"):
        kernel = args[1]
        given = dict(zip(("stride", "padding", "dilation", "ceil_mode"), args[2:]))
        given["stride"] = given.get("stride") or kernel
        return function(F.max_pool1d if name.endswith("1d") else F.max_pool2d, kernel, **given)
    if name in ("avg_pool1d", "avg_pool2d"):
        kernel = args[1]
        names = ("stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
        given = dict(zip(names, args[2:]))
        given["stride"] = given.get("stride") or kernel
        return function(F.avg_pool1d if name.endswith("1d") else F.avg_pool2d, kernel, **given)
    if name in ("adaptive_avg_pool1d", "adaptive_avg_pool2d"):
        target = F.adaptive_avg_pool1d if name.endswith("1d") else F.adaptive_avg_pool2d
        return function(target, args[1])
    if name == "constant_pad_nd":
        return function(F.pad, args[1], "constant", _at(args, 2, 0))
    if name in ("upsample_nearest2d", "upsample_bilinear2d"):
        size = tuple(n.meta["val"].shape[2:])
        if name == "upsample_nearest2d":
            return function(F.interpolate, size=size, mode="nearest")
        return function(F.interpolate, size=size, mode="bilinear", align_corners=args[2])
    return None
