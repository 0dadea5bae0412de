"""The training-memory pass: what one training step keeps in memory, per node and in total.

For every node: its output (elements and bytes at batch B) and the tensors PyTorch's
autograd *saves for backward* when the node runs in training mode, as measured with
``torch.autograd.graph.saved_tensors_hooks`` (parameters and buffers excluded):

- convolutions, linear layers, LeNet's subsampling and RBF keep their input;
  ReLU, sigmoid, tanh, softmax and log-softmax their output; the other activations
  (ReLU6, leaky ReLU, GELU, SiLU, hardswish, ELU, ...) their input;
- max pooling its input and int64 indices of the output's size; average pooling its
  input; adaptive average pooling its input unless the output is one position per map
  (a mean, which keeps nothing);
- batch norm its input and two float32 statistics per channel; layer, group and
  instance norm their input and two statistics per normalised group;
- dropout a mask as large as its input (float on the CPU, where PyTorch multiplies by
  scaled noise; bool on CUDA, where a fused kernel runs); dropout2d one value per map;
  stochastic depth one per sample;
- a product keeps each factor the other factor's gradient needs; sums, concatenation,
  padding, cropping, upsampling, shuffles and means keep nothing;
- views (flatten, reshape, permute, narrow, ...) share their source's storage: a tensor
  saved by several nodes, or through several views, counts once (for the first node
  that keeps it), with its whole storage; a reshape of a permuted tensor copies, and a
  linear layer or attention reading a permuted tensor keeps its own contiguous copy.

Nothing is saved where no input needs a gradient and the node has no parameters (the
network input does not need one). Totals add parameters, their gradients and the
optimizer's state (momentum one copy, Adam two). The training peak is an *estimate*:
parameters + gradients + optimizer state + saved tensors + the largest pair of activation
gradients that backward holds at once (a node's output gradient and its input gradient).

>>> from archcalc import analyze
>>> net = analyze({"name": "n", "input": [3, 8, 8], "layers": [
...     {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
...     {"type": "relu"}, {"type": "maxpool2d", "kernel_size": 2}]})
>>> m = training_memory(net, batch=2)
>>> [node.saved_bytes for node in m.nodes[1:]]    # conv: input; relu: output; pool: indices
[1536, 2048, 1024]
>>> m.saved_bytes
4608
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archcalc.errors import ArchcalcError
from archcalc.language.expr import at_least, product, simplify, symbol, to_text, total
from archcalc.quantities.analysis import Analysis

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
#: Tensors of state the optimizer keeps per parameter.
OPTIMIZER_STATES = {"none": 0, "sgd": 0, "momentum": 1, "adam": 2}
DEVICES = ("cpu", "cuda")
#: ``sys.getsizeof`` of a storage object beyond its bytes, which torchinfo's input size includes:
#: the Python object's size, 64 bytes on torch 2.13 (56 on 2.11; verify uses its own torch's).
TORCHINFO_STORAGE_OVERHEAD = 64

_VIEWS = {"flatten", "reshape", "permute", "transpose", "unsqueeze", "narrow", "center_crop",
          "identity"}  # fmt: skip
_KEEP_OUTPUT = {"relu", "sigmoid", "tanh", "softmax", "log_softmax"}
_KEEP_INPUT = {"relu6", "leaky_relu", "gelu", "silu", "hardswish", "hardsigmoid", "elu",
               "selu", "mish", "softplus", "hardtanh", "prelu"}  # fmt: skip
_NOTHING = {"add", "concat", "zero_pad", "upsample", "channel_shuffle", "pixel_shuffle", "mean",
            "parameter"}  # fmt: skip


@dataclass
class Kept:
    """One tensor a node keeps for backward."""

    what: str  # "input", "output", "indices", "mask", "statistics", "copy of the input", ...
    bytes: Any
    counted: bool  # False where an earlier node keeps the same storage


@dataclass
class NodeMemory:
    node: int
    output_elements: Any  # at batch B
    output_bytes: Any
    kept: list[Kept] = field(default_factory=list)

    @property
    def saved_bytes(self) -> Any:
        """Bytes this node adds to what backward keeps (shared storage counted once)."""
        return total(k.bytes for k in self.kept if k.counted)


@dataclass
class TrainingMemory:
    """The result of :func:`training_memory`; byte counts may be symbolic in B, H, W, ..."""

    analysis: Analysis
    batch: Any
    dtype: str
    optimizer: str
    device: str
    nodes: list[NodeMemory]
    parameter_bytes: Any
    gradient_bytes: Any
    optimizer_bytes: Any
    saved_bytes: Any
    working_bytes: Any  # the largest output-gradient + input-gradient pair of one node
    peak_bytes: Any
    torchinfo: dict[str, Any]

    def of(self, node: int) -> NodeMemory:
        return self.nodes[node]

    def totals(self) -> dict[str, Any]:
        return {"parameter_bytes": self.parameter_bytes, "gradient_bytes": self.gradient_bytes,
                "optimizer_bytes": self.optimizer_bytes, "saved_bytes": self.saved_bytes,
                "working_bytes": self.working_bytes, "peak_bytes": self.peak_bytes}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        layers = []
        for row in self.analysis.rows:
            m = self.nodes[row.node]
            layers.append({
                "path": row.path, "name": row.name, "type": row.type,
                "output_elements": _json(m.output_elements), "output_bytes": _json(m.output_bytes),
                "saved_bytes": _json(m.saved_bytes),
                "saved": [{"what": k.what, "bytes": _json(k.bytes), "counted": k.counted} for k in m.kept],
            })  # fmt: skip
        hidden = total(self.nodes[i].saved_bytes for i in _hidden(self.analysis))
        return {
            "batch": _json(self.batch), "dtype": self.dtype, "optimizer": self.optimizer,
            "device": self.device, "layers": layers, "merges_saved_bytes": _json(hidden),
            **{k: _json(v) for k, v in self.totals().items()},
            "torchinfo": {k: _json(v) for k, v in self.torchinfo.items()},
        }  # fmt: skip


def _json(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, str)):
        return value
    value = simplify(value)
    return value if isinstance(value, int) else to_text(value)


def _hidden(analysis: Analysis) -> list[int]:
    """The live nodes that are no row (a residual's or a concat of branches' merge)."""
    rows = {row.node for row in analysis.rows}
    live = analysis.graph.live()
    return [n.id for n in analysis.graph.nodes[1:] if n.id not in rows and live[n.id]]


def check_options(dtype: str, optimizer: str, device: str) -> None:
    """Reject unknown settings with the accepted ones."""
    for name, value, allowed in (("dtype", dtype, DTYPE_BYTES), ("optimizer", optimizer, OPTIMIZER_STATES),
                                 ("device", device, DEVICES)):  # fmt: skip
        if value not in allowed:
            raise ArchcalcError(
                f"{name}: expected one of {', '.join(allowed)}. Received: {value!r}"
            )


def training_memory(analysis: Analysis, batch: Any = 1, dtype: str = "float32",
                    optimizer: str = "adam", device: str = "cpu") -> TrainingMemory:  # fmt: skip
    """The memory pass over an analysed graph at batch ``batch`` (an int, or a symbol name)."""
    check_options(dtype, optimizer, device)
    if isinstance(batch, str):
        if batch in analysis.spec.symbols:  # the batch would silently be that size too
            raise ArchcalcError(f"batch: expected a name of its own, not one of the spec's "
                                f"symbols ({', '.join(analysis.spec.symbols)}). "
                                f"Received: batch={batch}")  # fmt: skip
        batch = symbol(batch)
    elif isinstance(batch, int) and batch < 1:
        raise ArchcalcError(f"batch: expected a positive integer. Received: {batch}")
    walk = _Walk(analysis, batch, DTYPE_BYTES[dtype], device)
    nodes = walk.run()
    size = DTYPE_BYTES[dtype]
    params = analysis.totals["params"]
    parameter_bytes = simplify(params * size)
    optimizer_bytes = simplify(OPTIMIZER_STATES[optimizer] * parameter_bytes)
    saved = total(m.saved_bytes for m in nodes)
    working = walk.working()
    peak = total([parameter_bytes, parameter_bytes, optimizer_bytes, saved, working])
    return TrainingMemory(analysis, batch, dtype, optimizer, device, nodes, parameter_bytes,
                          parameter_bytes, optimizer_bytes, saved, working, peak,
                          _torchinfo(analysis, nodes, batch, size))  # fmt: skip


def _bounds(a: Any, b: Any) -> bool:
    """Whether ``a >= b`` is certain, decided cheaply: numbers, or a difference free of
    floor and ceiling (those make sympy's sign reasoning take seconds per pair)."""
    if isinstance(a, int) and isinstance(b, int):
        return a >= b
    if a == b:
        return True
    if not isinstance(a, int) and not isinstance(b, int):
        # byte counts at one resolution are multiples of one product of sizes (DenseNet's
        # concatenations: 55,544 subtractions, 5.6 s, before this)
        (ca, pa), (cb, pb) = a.as_content_primitive(), b.as_content_primitive()
        if pa == pb:
            return bool(ca >= cb)
    import sympy

    difference = a - b  # like terms cancel as the sum is built; expanding floors is slow
    if difference.is_Number:
        return bool(difference >= 0)
    if difference.has(sympy.floor, sympy.ceiling):
        return False
    return at_least(difference, 0) is True


class _Walk:
    """Forward over the live nodes: which storage each output is, whether it is contiguous and
    whether it needs a gradient; then what each node keeps."""

    def __init__(self, analysis: Analysis, batch: Any, size: int, device: str):
        self.analysis, self.graph = analysis, analysis.graph
        self.batch, self.size, self.device = batch, size, device
        n = len(self.graph.nodes)
        self.root: list[int | None] = [
            0
        ] * n  # the node whose output storage this is (None: a parameter)
        self.strides: list[tuple | None] = [None] * n
        self.contiguous = [True] * n
        self.grad = [False] * n
        self.seen: set[Any] = set()
        self.rows = {row.node: row for row in analysis.rows}
        self.strides[0] = _contiguous_strides(_batched(self.graph.input.shape))

    def elements(self, node: int) -> Any:
        shape = self.graph.nodes[node].shape
        per_sample = product(shape)
        return per_sample if self.graph.nodes[node].type == "parameter" else self.batch * per_sample

    def run(self) -> list[NodeMemory]:
        live = self.graph.live()
        result = []
        for node in self.graph.nodes:
            elements = self.elements(node.id)
            m = NodeMemory(node.id, simplify(elements), simplify(elements * self.size))
            result.append(m)
            if node.id == 0 or not live[node.id]:
                continue
            row = self.rows.get(node.id)
            has_params = row is not None and row.params != 0
            self.grad[node.id] = has_params or any(self.grad[i] for i in node.inputs)
            self._storage(node)
            if self.grad[node.id]:
                for what, key, nbytes in self._kept(node):
                    counted = key is not None and key not in self.seen
                    if key is not None:
                        self.seen.add(key)
                    if nbytes is not None:
                        m.kept.append(Kept(what, simplify(nbytes), counted))
        return result

    def working(self) -> Any:
        """The largest (output + input) activation bytes of one node: the two gradients
        backward holds while it passes that node."""
        # Candidates no other candidate is known to bound: with symbols, two sizes may be
        # incomparable (one larger for small inputs, the other for large); the answer is then
        # their Max. Comparing against a growing Max expression is what sympy cannot do quickly.
        candidates: list[Any] = []
        for node in self.graph.nodes[1:]:
            pair = (self.elements(node.id) + sum(self.elements(i) for i in node.inputs)) * self.size
            pair = simplify(pair)
            if any(_bounds(c, pair) for c in candidates):
                continue
            candidates = [c for c in candidates if not _bounds(pair, c)]
            candidates.append(pair)
        if not candidates:
            return 0
        if len(candidates) == 1:
            return candidates[0]
        import sympy

        # unevaluated: sympy's own Max would compare every pair again, minutes on U-Net
        return sympy.Max(*candidates, evaluate=False)

    # --- storage: views share their source's -------------------------------------------------

    def _storage(self, node) -> None:
        """Which storage the node's output is, and its layout: strides (batch first, at a batch
        of 2, which lays a tensor out as any larger batch does) where the shapes are numbers,
        else only whether it is contiguous."""
        kind, h, i = node.type, node.hyper, node.id
        source = node.inputs[0] if node.inputs else None
        if kind == "parameter":
            self.root[i] = None  # a view of a parameter: never counted
            return
        alias = kind in _VIEWS or (
            kind in ("dropout", "dropout2d", "stochastic_depth") and not h["p"]
        )
        shape = _batched(node.shape)
        if not alias or source is None:
            self.root[i], self.strides[i] = i, _contiguous_strides(shape)
            return
        strides = self.strides[source]
        if strides is None or shape is None:  # symbolic sizes: contiguity alone
            self.strides[i] = None
            self.contiguous[i] = self._symbolic_contiguity(node, source)
            if self.contiguous[i] is None:  # a reshape of a permuted tensor copies
                self.root[i], self.contiguous[i] = i, True
            else:
                self.root[i] = self.root[source]
            return
        before = _batched(self.graph.nodes[source].shape)
        if kind in ("flatten", "reshape"):
            strides = _view_strides(before, strides, shape)
            if strides is None:  # not expressible as a view: PyTorch copies
                self.root[i], self.strides[i] = i, _contiguous_strides(shape)
                return
        elif kind in ("permute", "transpose"):
            strides = (strides[0], *(strides[d + 1] for d in _order(node)))
        elif kind == "unsqueeze":
            d = h["dim"] + 1
            inner = strides[d] * before[d] if d < len(before) else 1
            strides = (*strides[:d], inner, *strides[d:])
        self.root[i], self.strides[i] = self.root[source], strides

    def _symbolic_contiguity(self, node, source) -> bool | None:
        contiguous = self.contiguous[source]
        if node.type in ("flatten", "reshape"):
            return True if contiguous else None
        if node.type in ("permute", "transpose"):
            return contiguous and _keeps_order(self.graph.nodes[source].shape, _order(node))
        if node.type in ("narrow", "center_crop"):
            return contiguous and node.shape == self.graph.nodes[source].shape
        return contiguous

    def _rows_of_features(self, source: int, owner: int, what: str):
        """What a matrix product over the last dimension keeps of its input: the input seen as
        rows of features, a view where the layout allows one, else a contiguous copy."""
        shape = self.graph.nodes[source].shape
        if len(shape) < 2:  # [N, F] as it is, strided or not
            return self._tensor(what, source)
        strides = self.strides[source]
        if strides is None:
            if self.contiguous[source]:
                return self._tensor(what, source)
        else:
            before = _batched(shape)
            if _view_strides(before, strides, (product(before[:-1]), before[-1])) is not None:
                return self._tensor(what, source)
        return self._copy(f"contiguous copy of the {what}", owner, self.elements(source))

    def _tensor(self, what: str, node: int):
        """The storage of node ``node``'s output, counted whole (a view keeps all of it)."""
        root = self.root[node]
        if root is None:
            return (what, None, None)
        return (what, ("storage", root), self.elements(root) * self.size)

    def _copy(self, what: str, owner: int, elements: Any, size: int | None = None):
        return (what, ("copy", owner, what), elements * (size or self.size))

    def _input(self, node):
        return self._tensor("input", node.inputs[0])

    # --- what each node keeps -------------------------------------------------------------

    def _kept(self, node) -> list:
        kind, h, i = node.type, node.hyper, node.id
        batch, float32 = self.batch, 4
        if kind in _NOTHING or kind in _VIEWS:
            return []
        if kind in ("mul", "matmul"):
            return self._product(node)
        if kind.startswith(("conv", "subsample", "rbf")):
            if kind.startswith("conv") and h.get("table"):  # one gathered copy per output map
                maps = sum(len(m) for m in h["table"])
                spatial = product(self.graph.nodes[node.inputs[0]].shape[1:])
                return [
                    self._copy("gathered input maps", i, batch * maps * spatial),
                    self._copy("int64 indices of the maps", i, maps, 8),
                ]
            if kind.startswith("conv") and not kind.startswith("conv_transpose"):
                padded = _padded_elements(self.graph.nodes[node.inputs[0]].shape, h)
                if padded is not None:
                    return [self._copy("padded copy of the input", i, batch * padded)]
            return [self._input(node)]
        if kind == "linear":
            return [self._rows_of_features(node.inputs[0], i, "input")]
        if kind in _KEEP_OUTPUT:
            return [self._tensor("output", i)]
        if kind in _KEEP_INPUT:
            return [self._input(node)]
        if kind.startswith(("maxpool", "adaptive_maxpool")):
            return [self._input(node), self._copy("int64 indices", i, self.elements(i), 8)]
        if kind.startswith("avgpool"):
            return [self._input(node)]
        if kind.startswith("adaptive_avgpool"):
            return [] if all(n == 1 for n in node.shape[1:]) else [self._input(node)]
        channels = self.graph.nodes[node.inputs[0]].shape[0]
        if kind.startswith("batchnorm"):
            return [
                self._input(node),
                self._copy("statistics (mean, 1/std)", i, 2 * channels, float32),
            ]
        if kind == "layernorm":
            groups = batch * product(node.shape[: len(node.shape) - len(h["normalized_shape"])])
            return [
                self._input(node),
                self._copy("statistics (mean, 1/std)", i, 2 * groups, float32),
            ]
        if kind == "group_norm":
            return [
                self._input(node),
                self._copy("statistics (mean, 1/std)", i, 2 * batch * h["num_groups"], float32),
            ]
        if kind.startswith("instance_norm"):
            per = 2 + bool(h["affine"]) + 2 * bool(h["track_running_stats"])
            return [
                self._input(node),
                self._copy("statistics (and repeated weights)", i, per * batch * channels, float32),
            ]
        if kind == "local_response_norm":
            spatial = product(node.shape[1:])
            window = batch * (channels + h["size"] - 1) * spatial
            return [self._input(node), self._copy("padded squares", i, window),
                    self._copy("scale and its power", i, 2 * self.elements(i))]  # fmt: skip
        if kind == "dropout":
            if not h["p"]:
                return []
            size = (
                1 if self.device == "cuda" else self.size
            )  # CUDA's fused kernel keeps a bool mask
            return [self._copy("mask", i, self.elements(i), size)]
        if kind == "dropout2d":
            return [self._copy("mask", i, batch * channels)] if h["p"] else []
        if kind == "stochastic_depth":
            if not h["p"]:
                return []
            return [self._copy("noise", i, batch if h["mode"] == "row" else 1)]
        if kind == "multihead_attention":
            return self._attention(node)
        raise ArchcalcError(f"the memory pass has no rule for layer type {kind!r}", path=node.path)

    def _product(self, node) -> list:
        """a·b keeps b where a needs a gradient and a where b does; a chain a·b·c also keeps
        the partial products its later factors need."""
        kept = []
        left, left_grad = node.inputs[0], self.grad[node.inputs[0]]
        left_item = self._tensor("first factor", left)
        for k, right in enumerate(node.inputs[1:], start=1):
            right_grad = self.grad[right]
            if left_grad:
                kept.append(self._tensor(f"factor {k + 1}", right))
            if right_grad:
                kept.append(left_item)
            if k + 1 < len(node.inputs):  # the partial product is a new tensor
                partial = self.batch * product(_broadcast(self.graph.nodes, node.inputs[: k + 1]))
                left_item = self._copy(f"product of factors 1..{k + 1}", node.id, partial)
                left_grad = left_grad or right_grad
        return kept

    def _attention(self, node) -> list:
        """Self-attention over [L, E] with h heads, computed as verify's module does: the input
        (for the in-projection), contiguous q, k, v per head (3·L·E), the softmax weights
        (h·L²), with dropout its mask and the dropped weights, and the heads' concatenation
        read by the out-projection (L·E)."""
        length, width = node.shape
        heads = node.hyper["num_heads"]
        b = self.batch
        kept = [self._rows_of_features(node.inputs[0], node.id, "input"),
                self._copy("q, k, v per head", node.id, 3 * b * length * width),
                self._copy("attention weights", node.id, b * heads * length * length)]  # fmt: skip
        if node.hyper["dropout"]:
            size = 1 if self.device == "cuda" else self.size
            kept.append(self._copy("dropout mask", node.id, b * heads * length * length, size))
            kept.append(self._copy("dropped weights", node.id, b * heads * length * length))
        kept.append(self._copy("concatenated heads", node.id, b * length * width))
        return kept


def _batched(shape: tuple) -> tuple | None:
    """The shape with a batch of 2 in front, or None where a size is symbolic."""
    if any(not isinstance(n, int) for n in shape):
        return None
    return (2, *shape)


def _contiguous_strides(shape: tuple | None) -> tuple | None:
    if shape is None:
        return None
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def _view_strides(old: tuple, strides: tuple, new: tuple) -> tuple | None:
    """The strides of ``old`` (with ``strides``) reshaped to ``new`` without copying, or None
    where no view exists (PyTorch's rule: each run of dimensions that the new shape merges or
    splits must be contiguous within itself)."""
    if product(old) == 0:
        return _contiguous_strides(new)
    result = [0] * len(new)
    view_d = len(new) - 1
    base = strides[-1] if strides else 1
    tensor_numel = view_numel = 1
    for d in reversed(range(len(old))):
        tensor_numel *= old[d]
        if d == 0 or (old[d - 1] != 1 and strides[d - 1] != tensor_numel * base):
            while view_d >= 0 and (view_numel < tensor_numel or new[view_d] == 1):
                result[view_d] = view_numel * base
                view_numel *= new[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                base, tensor_numel, view_numel = strides[d - 1], 1, 1
    return tuple(result) if view_d == -1 else None


def _order(node) -> tuple[int, ...]:
    h = node.hyper
    if node.type == "permute":
        return tuple(h["dims"])
    order = list(range(len(node.shape)))
    order[h["dim0"]], order[h["dim1"]] = order[h["dim1"]], order[h["dim0"]]
    return tuple(order)


def _keeps_order(shape: tuple, order: tuple[int, ...]) -> bool:
    """A permutation leaves a tensor contiguous when the dimensions longer than 1 keep their order."""
    moved = [d for d in order if shape[d] != 1]
    return moved == sorted(moved)


def _broadcast(nodes, inputs) -> tuple:
    shapes = [nodes[i].shape for i in inputs]
    width = max(len(s) for s in shapes)
    padded = [(1,) * (width - len(s)) + tuple(s) for s in shapes]
    return tuple(next((d for d in dims if d != 1), 1) for dims in zip(*padded))


def _padded_elements(shape: tuple, h: dict) -> Any:
    """Per-sample elements of the zero-padded copy a convolution makes when its padding is
    asymmetric (PyTorch pads first, then convolves); None where it pads in place."""
    before, after = tuple(h["padding"]), tuple(h.get("padding_end", h["padding"]))
    if before == after:
        return None
    return shape[0] * product(n + b + a for n, b, a in zip(shape[1:], before, after))


def _torchinfo(
    analysis: Analysis, nodes: list[NodeMemory], batch: Any, size: int
) -> dict[str, Any]:
    """torchinfo's summary figures for verify's model of the spec: "Forward/backward pass size"
    is twice the outputs of leaf modules that hold parameters; "Params size" the parameters
    of leaf modules (an attention's in-projection belongs to the attention module itself,
    which is no leaf, so torchinfo leaves it out); MB are 10^6 bytes."""
    graph = analysis.graph
    outputs, param_bytes = [], []
    for row in analysis.rows:
        if row.params == 0:
            continue
        outputs.append(nodes[row.node].output_bytes)
        params = row.params
        if row.type == "multihead_attention":
            width = row.output[1]
            params = width * width + (width if row.hyper["bias"] else 0)  # out_proj only
        param_bytes.append(params * size)
    input_bytes = simplify(batch * product(graph.input.shape) * size + TORCHINFO_STORAGE_OVERHEAD)
    forward_backward = simplify(2 * total(outputs))
    params = total(param_bytes)
    result = {"input_bytes": input_bytes, "forward_backward_pass_bytes": forward_backward,
              "params_bytes": params}  # fmt: skip
    all_bytes = result["total_bytes"] = total([input_bytes, forward_backward, params])
    for name, value in (("input_mb", input_bytes), ("forward_backward_pass_mb", forward_backward),
                        ("params_mb", params), ("total_mb", all_bytes)):  # fmt: skip
        # torchinfo prints two decimals; a formula in B keeps its coefficients as decimals
        result[name] = round(value / 1e6, 2) if isinstance(value, int) else (value / 10**6).evalf(8)
    return result
