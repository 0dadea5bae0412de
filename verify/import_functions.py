"""The importer's conversions of torch functions and tensor methods (``x + y``, ``torch.cat``,
``x.view(n, -1)``, ``chunk``, ``getitem``, ``F.layer_norm``) into spec items; a mixin of the
converter in :mod:`verify.importer`, which holds the state these methods read and write."""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx

from verify.import_common import (
    _FUNCTIONS,
    _METHODS,
    _dim,
    _Node,
    _size,
    _Unsupported,
)


class FunctionConversions:
    """Functions and methods as spec items (see :class:`verify.importer._Converter`)."""

    def function(self, n: fx.Node, target: Any) -> None:
        args, kwargs = n.args, n.kwargs
        if target in (
            operator.add,
            operator.iadd,
            torch.add,
            operator.mul,
            operator.imul,
            torch.mul,
        ):
            kind = "add" if target in (operator.add, operator.iadd, torch.add) else "mul"
            a, b = args[:2]
            if not (isinstance(a, fx.Node) and isinstance(b, fx.Node)):
                raise _Unsupported(f"{kind} with a constant")
            self.emit(n, {"type": kind}, [self.tensor(a), self.tensor(b)])
        elif target is torch.cat:
            tensors = args[0]
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
            if len(tensors) == 1:  # DenseNet's first layer concatenates one tensor: itself
                self.alias(n, tensors[0])
                return
            self.emit(n, {"type": "concat", "dim": _dim(dim, 0)}, [self.tensor(t) for t in tensors])
        elif target in (F.avg_pool2d, F.max_pool2d, F.avg_pool1d, F.max_pool1d):
            self.pool_function(n, target)
        elif target is F.pad:
            pads = list(args[1] if len(args) > 1 else kwargs["pad"])
            mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
            value = kwargs.get("value", args[3] if len(args) > 3 else 0)
            rank = self.values[args[0]].dim()
            if mode != "constant" or value not in (0, 0.0, None) or len(pads) // 2 > rank - 2:
                raise _Unsupported(f"padding other than zeros of the spatial dimensions ({mode})")
            pairs = [[pads[i], pads[i + 1]] for i in range(0, len(pads), 2)][::-1]
            spatial = rank - 2
            pairs = [[0, 0]] * (spatial - len(pairs)) + pairs
            self.emit(n, {"type": "zero_pad", "padding": pairs}, [self.tensor(args[0])])
        elif target is torch.flatten:
            start = kwargs.get("start_dim", args[1] if len(args) > 1 else 0)
            end = kwargs.get("end_dim", args[2] if len(args) > 2 else -1)
            if start == 0:
                raise _Unsupported("flattening the batch dimension")
            self.emit(n, {"type": "flatten", "start_dim": _dim(start, 0), "end_dim": _dim(end, 0)},
                      [self.tensor(args[0])])  # fmt: skip
        elif target in _FUNCTIONS:
            extra = {}
            if target is F.leaky_relu and len(args) > 1:
                extra["negative_slope"] = args[1]
            extra.update(
                {k: v for k, v in kwargs.items() if k in ("negative_slope", "approximate")}
            )
            self.emit(n, self.activation_item(_FUNCTIONS[target], **extra), [self.tensor(args[0])])
        elif target in (F.adaptive_avg_pool2d, F.adaptive_avg_pool1d, F.adaptive_max_pool2d):
            size = kwargs.get("output_size", args[1] if len(args) > 1 else None)
            kind = {F.adaptive_avg_pool2d: "adaptive_avgpool2d",
                    F.adaptive_avg_pool1d: "adaptive_avgpool1d",
                    F.adaptive_max_pool2d: "adaptive_maxpool2d"}[target]  # fmt: skip
            self.emit(n, {"type": kind, "output_size": _size(size)}, [self.tensor(args[0])])
        elif target is F.dropout:
            p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
            self.emit(n, {"type": "dropout", "p": p}, [self.tensor(args[0])])
        elif target is F.layer_norm:
            self.layer_norm(n)
        elif target is torch.matmul:
            self.emit(n, {"type": "matmul"}, [self.tensor(args[0]), self.tensor(args[1])])
        elif target in (torch.permute, torch.transpose, torch.reshape):
            self.method(n, target.__name__)
        elif target is operator.getitem:
            self.getitem(n)
        elif target in (F.interpolate,):
            mode = kwargs.get("mode", "nearest")
            self.emit(
                n, self.upsample(n, mode, kwargs.get("align_corners")), [self.tensor(args[0])]
            )
        elif target in (torch.softmax, F.softmax, F.log_softmax):
            dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
            kind = "log_softmax" if target is F.log_softmax else "softmax"
            self.emit(n, self.activation_item(kind, dim=dim), [self.tensor(args[0])])
        elif isinstance(target, torch._ops.OpOverload):  # kept by the torch.export fallback
            raise _Unsupported(f"ATen operation {target} has no spec equivalent")
        else:
            name = getattr(target, "__qualname__", getattr(target, "__name__", str(target)))
            raise _Unsupported(
                f"function {getattr(target, '__module__', '')}.{name} has no spec equivalent"
            )

    def method(self, n: fx.Node, name: str) -> None:
        args = n.args
        x = args[0]
        if name in ("contiguous", "clone") or (
            name == "expand" and self.refs.get(x) in self.learned
        ):
            self.alias(n, x)  # the same values (a learned tensor broadcasts over the batch)
            return
        if name in ("view", "reshape"):
            self.emit(n, {"type": "reshape", "shape": list(self.shape(n))}, [self.tensor(x)])
        elif name == "permute":
            dims = args[1:] if not isinstance(args[1], (list, tuple)) else args[1]
            dims = [d % self.values[x].dim() for d in dims]
            if dims[0] != 0:
                raise _Unsupported("a permutation that moves the batch dimension")
            self.emit(n, {"type": "permute", "dims": [d - 1 for d in dims[1:]]}, [self.tensor(x)])
        elif name == "transpose":
            rank = self.values[x].dim()
            a, b = (d % rank for d in args[1:3])
            if 0 in (a, b):
                raise _Unsupported("a transpose with the batch dimension")
            self.emit(n, {"type": "transpose", "dim0": a - 1, "dim1": b - 1}, [self.tensor(x)])
        elif name == "flatten":
            start = n.kwargs.get("start_dim", args[1] if len(args) > 1 else 0)
            end = n.kwargs.get("end_dim", args[2] if len(args) > 2 else -1)
            if start == 0:
                raise _Unsupported("flattening the batch dimension")
            self.emit(n, {"type": "flatten", "start_dim": _dim(start, 0), "end_dim": _dim(end, 0)},
                      [self.tensor(x)])  # fmt: skip
        elif name == "mean":
            dims = n.kwargs.get("dim", args[1] if len(args) > 1 else None)
            dims = [dims] if isinstance(dims, int) else list(dims)
            keep = n.kwargs.get("keepdim", args[2] if len(args) > 2 else False)
            rank = self.values[x].dim()
            if any(d % rank == 0 for d in dims):
                raise _Unsupported("a mean over the batch dimension")
            self.emit(n, {"type": "mean", "dims": [d % rank - 1 for d in dims], "keepdim": keep},
                      [self.tensor(x)])  # fmt: skip
        elif name in ("chunk", "split", "unbind"):
            self.chunks(n, name)
        elif name == "unsqueeze" and self.refs.get(x) in self.learned and args[1] == 0:
            self.alias(n, x)  # a learned tensor given its batch dimension
        elif name == "unsqueeze":
            d = args[1] % (self.values[x].dim() + 1)
            self.emit(n, {"type": "unsqueeze", "dim": d - 1}, [self.tensor(x)])
        elif name == "narrow":
            rank = self.values[x].dim()
            dim, start, length = (
                list(args[1:]) + [n.kwargs.get(k) for k in ("dim", "start", "length")]
            )[:3]
            if dim % rank == 0:
                raise _Unsupported("narrowing the batch dimension")
            self.emit(n, {"type": "narrow", "dim": dim % rank - 1, "start": start, "length": length},
                      [self.tensor(x)])  # fmt: skip
        elif name in ("add", "mul", "add_", "mul_", "matmul"):
            kind = name.rstrip("_")
            if not isinstance(args[1], fx.Node):
                raise _Unsupported(f"{kind} with a constant")
            self.emit(n, {"type": kind}, [self.tensor(x), self.tensor(args[1])])
        elif name in ("softmax", "log_softmax"):
            dim = n.kwargs.get("dim", args[1] if len(args) > 1 else None)
            self.emit(n, self.activation_item(name, dim=dim), [self.tensor(x)])
        elif name in _METHODS:
            self.emit(n, {"type": _METHODS[name]}, [self.tensor(x)])
        else:
            raise _Unsupported(f"method Tensor.{name} has no spec equivalent")

    def chunks(self, n: fx.Node, name: str) -> None:
        """``x.chunk(k, dim)``: the pieces are narrows of x, taken when they are read."""
        x = n.args[0]
        dim = n.kwargs.get("dim", n.args[2] if len(n.args) > 2 else 0)
        if dim % self.values[x].dim() == 0:
            raise _Unsupported(f"{name} along the batch dimension")
        sizes = [piece.shape[dim] for piece in self.values[n]]
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        self.refs[n] = (
            "chunks",
            self.tensor(x),
            _dim(dim % self.values[x].dim(), 0),
            starts,
            sizes,
        )
        self.understood += 1

    def getitem(self, n: fx.Node) -> None:
        source, index = n.args
        ref = self.refs.get(source)
        if isinstance(ref, tuple) and ref and ref[0] == "chunks":
            _, x, dim, starts, sizes = ref
            self.emit(n, {"type": "narrow", "dim": dim, "start": starts[index],
                          "length": sizes[index]}, [x])  # fmt: skip
            return
        if isinstance(ref, tuple):  # attention's (output, weights)
            if ref[index] is None:
                raise _Unsupported("uses attention weights")
            self.refs[n] = ref[index]
            self.understood += 1
            return
        # tensor indexing: x[:, i] (a select) or x[:, a:b] (a narrow) on one dimension
        index = index if isinstance(index, tuple) else (index,)
        if not index or index[0] != slice(None):
            raise _Unsupported("indexing the batch dimension")
        picks = [(d, i) for d, i in enumerate(index[1:], start=0) if i != slice(None)]
        if len(picks) != 1:
            raise _Unsupported("indexing more than one dimension")
        d, i = picks[0]
        size = self.values[source].shape[d + 1]
        if isinstance(i, int):
            start, length = i % size, 1
        elif isinstance(i, slice) and i.step in (None, 1):
            start, stop, _ = i.indices(size)
            length = stop - start
        else:
            raise _Unsupported(f"indexing with {i!r}")
        x = self.tensor(source)
        self.emit(n, {"type": "narrow", "dim": d, "start": start, "length": length}, [x])
        if isinstance(i, int):  # a select also drops the dimension
            narrowed = self.refs[n]
            self.refs.pop(n)
            fake = _Node(f"{n.name}_select")
            self.values[fake] = self.values[n]
            self.last = narrowed
            self.emit(fake, {"type": "reshape", "shape": list(self.shape(n))}, [narrowed])
            self.refs[n] = self.refs[fake]

    def layer_norm(self, n: fx.Node) -> None:
        """F.layer_norm(x, shape, weight, bias, eps) with the weights of one module
        (torchvision's LayerNorm2d calls it inside permutes)."""
        args = list(n.args) + [None] * 5
        x, shape, weight, bias, eps = args[:5]
        weight, bias = n.kwargs.get("weight", weight), n.kwargs.get("bias", bias)
        eps = n.kwargs.get("eps", eps if eps is not None else 1e-5)
        owner = None
        if isinstance(weight, fx.Node) and weight.op == "get_attr":
            owner = weight.target.rsplit(".", 1)[0] if "." in weight.target else ""
            if not isinstance(bias, fx.Node) or bias.op != "get_attr":
                raise _Unsupported("a layer norm without bias")
        item = {"type": "layernorm", "normalized_shape": _size(list(shape)), "eps": eps,
                "elementwise_affine": owner is not None}  # fmt: skip
        # the weight and bias get_attr nodes became parameter items: take them back
        for attr in (weight, bias):
            name = self.refs.get(attr)
            if isinstance(name, str) and any(it.data["name"] == name for it in self.items):
                self.items = [it for it in self.items if it.data["name"] != name]
                self.parameters.pop(name, None)
                self.learned.discard(name)
                self.used_names.discard(name)
                self.understood -= 1
        self.emit(n, item, [self.tensor(x)], weights_from=owner)
