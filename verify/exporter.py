"""``archcalc export``: a spec as one standalone PyTorch file (or, through it, ONNX).

The file defines an ``nn.Module`` with the spec's layers as attributes (names from
the spec), a ``forward`` whose every line ends with the tensor's shape
(``# [16, 4, 4]``), every inferred size filled in (``nn.Linear(16 * 4 * 4, 120)``,
the arithmetic shown), one small module class per block (calls with the same layers
share a class), and ``init_weights()`` applying the initialisation ``archcalc init``
recommends. It imports nothing but torch: the few modules torch.nn lacks are
copied into the file.

The modules are verify's own (:mod:`verify.build`), so the exported model is the one
verify proves: the same parameters, in the same order, and the same shapes.
"""

from __future__ import annotations

import inspect
import keyword
import re
from typing import Any

import torch
from torch import nn

from archcalc.errors import ArchcalcError
from archcalc.graph.graph import Group, Node
from archcalc.init.recommend import recommend
from archcalc.language.expr import product
from archcalc.language.fast import LAYER_TYPES
from archcalc.quantities.analysis import Analysis
from verify import build as build_module
from verify import modules

_MERGES = ("add", "mul", "concat", "matmul")
_HEADER = '''"""{name}: written by `archcalc export` from the spec {spec!r}.

{description}Input [{input}] (channels first, no batch); {params:,} parameters, {macs:,} MACs.
Every forward line ends with the shape after it (no batch).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
'''


def _identifier(text: str, taken: set[str]) -> str:
    name = re.sub(r"\W+", "_", text).strip("_") or "layer"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = f"layer_{name}"
    base, k = name, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def _shape(shape: tuple) -> str:
    return "[" + ", ".join(str(int(v)) for v in shape) + "]"


_DEFAULTS = (", padding=0", ", dilation=1", ", ceil_mode=False", ", bias=True", ", groups=1",
             ", eps=1e-05", ", momentum=0.1", ", affine=True", ", track_running_stats=True",
             "inplace=False", ", elementwise_affine=True", ", output_padding=0",
             ", count_include_pad=True", ", padding_mode='zeros'")  # fmt: skip


def tidy(code: str) -> str:
    """A constructor call as a person writes it: ``(5, 5)`` -> ``5``, PyTorch's defaults
    dropped, ``in_features=``/``out_features=`` positional.

    >>> tidy("nn.MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False)")
    'nn.MaxPool2d(kernel_size=2, stride=2)'
    """
    code = re.sub(r"\((\d+)(?:, \1)+\)", r"\1", code)
    for default in _DEFAULTS:  # whole values only: groups=1, not groups=192
        code = re.sub(re.escape(default) + r"(?=[,)])", "", code)
    code = re.sub(r"^(nn\.Conv\w*\(.*?), stride=1\b", r"\1", code)
    code = code.replace("in_features=", "").replace("out_features=", "").replace("(, ", "(")
    return code.replace(", )", ")")


def module_code(m: nn.Module) -> str:
    """Constructor source of one of verify's modules."""
    maker = modules.CODE.get(type(m))
    if maker is not None:
        return maker(m)
    if isinstance(m, build_module.TableConv2d):
        kernel = tuple(m.weights()[0].shape[2:])
        return (f"TableConv2d({[list(t) for t in m.table]}, {kernel}, {m.stride}, {m.padding}, "
                f"{m.dilation}, {m.bias is not None})")  # fmt: skip
    if isinstance(m, build_module.Subsample):
        return f"Subsample({m.weight.shape[0]}, {m.kernel_size}, {m.stride})"
    if isinstance(m, build_module.RBF):
        return f"RBF({m.centres.shape[1]}, {m.centres.shape[0]})"
    lines = repr(m).splitlines()
    if len(lines) != 1 or not type(m).__module__.startswith("torch.nn"):
        raise ValueError(f"no constructor code for {type(m).__name__}")
    # torch's repr writes padding='same' bare (padding=same): quote it back into Python
    code = tidy(re.sub(r"\bpadding=(same|valid)\b", r"padding='\1'", f"nn.{lines[0]}"))
    return _complete(code, m)


def _same(a: Any, b: Any) -> bool:
    """Equal as constructor arguments: ``2`` is ``(2, 2)``."""
    if isinstance(a, tuple) != isinstance(b, tuple):
        a, b = (a, b) if isinstance(a, tuple) else (b, a)
        return all(v == b for v in a)
    return a == b


def _complete(code: str, m: nn.Module) -> str:
    """``code`` with the arguments torch's repr leaves out added back (AvgPool2d's repr has
    no ceil_mode, count_include_pad or divisor_override): the code is built on the meta
    device and compared with ``m``, constructor argument by argument."""
    try:
        with torch.device("meta"):
            built = eval(code, {"__builtins__": {}, "nn": nn})  # noqa: S307 - from torch's repr
    except Exception as err:  # noqa: BLE001 - a repr that is not Python: say so, in one line
        raise ArchcalcError(f"cannot write {type(m).__name__} as code: {code} does not build "
                            f"({type(err).__name__})") from None  # fmt: skip
    missing = []
    for name in inspect.signature(type(m).__init__).parameters:
        if name in ("self", "device", "dtype") or not hasattr(m, name):
            continue
        mine, theirs = getattr(m, name), getattr(built, name, None)
        if isinstance(mine, torch.Tensor) or isinstance(theirs, torch.Tensor):
            if name == "bias" and (mine is None) != (theirs is None):
                missing.append(f"bias={mine is not None}")
            continue
        if not _same(mine, theirs):
            missing.append(f"{name}={mine!r}")
    if not missing:
        return code
    return f"{code[:-1]}{'' if code.endswith('(') else ', '}{', '.join(missing)})"


class _Class:
    """One generated class: its attributes (name, code, comment), forward lines, init lines."""

    def __init__(self, name: str):
        self.name = name
        self.attributes: list[tuple[str, str, str]] = []
        self.forward: list[str] = []
        self.inits: list[str] = []
        self.taken: set[str] = set()

    def text(self, doc: str) -> str:
        lines = [f"class {self.name}(nn.Module):", f'    """{doc}"""', "",
                 "    def __init__(self):", "        super().__init__()"]  # fmt: skip
        for attr, code, comment in self.attributes:
            lines.append(f"        self.{attr} = {code}" + (f"  # {comment}" if comment else ""))
        lines += ["", "    def forward(self, x):", *self.forward]
        if self.inits:
            lines += ["", "    def init_weights(self):",
                      '        """The initialisation archcalc init recommends (biases zero)."""']  # fmt: skip
            lines += [f"        {line}" for line in self.inits]
        return "\n".join(lines)


class _Exporter:
    def __init__(self, analysis: Analysis):
        self.analysis = analysis
        self.graph = analysis.graph
        self.model = build_module.SpecModel(analysis)
        self.classes: list[tuple[_Class, str]] = []
        self.signatures: dict[str, str] = {}
        self.used_types: set[type] = set()
        # the names block classes must not take: the helpers this file may define, its imports
        kinds = {type(m) for m in self.model.node_modules.values()}
        self.reserved = {cls.__name__ for cls in _SUPPORT if cls in kinds} | _IMPORTED
        self.recs = {rec.row.node: rec for rec in recommend(analysis)}
        self.readers = self.graph.consumers()
        self.returning: int | None = None  # the output node of the block being written

    def run(self, class_name: str) -> str:
        self.top = class_name
        top = _Class(class_name)
        self.body(top, self.graph.tree, {0: "x"}, top_level=True)
        outputs = [self.names_of_outputs(top)]
        top.forward.append(f"        return {outputs[0]}")
        parts = [self.header()]
        for cls in self._support():
            parts.append(inspect.getsource(cls).rstrip())
        for cls, doc in self.classes:
            parts.append(cls.text(doc))
        spec = self.analysis.spec
        doc = spec.name + (f": {spec.description.strip()}" if spec.description else "")
        parts.append(top.text("\n    ".join(_wrap(doc, 88))))
        return "\n\n\n".join(parts) + "\n"

    def header(self) -> str:
        spec, totals = self.analysis.spec, self.analysis.totals
        return _HEADER.format(name=spec.name, spec=spec.name, input=", ".join(map(str, self.analysis.input)),
                              params=totals["params"], macs=totals["macs"],
                              description="")  # fmt: skip

    def _support(self) -> list[type]:
        return [cls for cls in _SUPPORT if cls in self.used_types]

    def names_of_outputs(self, top: _Class) -> str:
        names = [self.var[i] for i in self.graph.outputs]
        return names[0] if len(names) == 1 else "(" + ", ".join(names) + ")"

    # -- the classes

    def body(self, cls: _Class, groups: list[Group] | tuple, var: dict[int, str],
             top_level: bool = False) -> None:  # fmt: skip
        self.var = var
        for group in groups:
            self.group(cls, group)

    def group(self, cls: _Class, group: Group) -> None:
        if group.type not in build_module_BUILTINS and group.children:  # a block call
            self.block_call(cls, group)
            return
        if group.children:
            for children in group.children:
                for child in children:
                    self.group(cls, child)
            for i in range(group.first, group.end):  # the composite's own nodes: its merge,
                if i not in self.var:  # its activation
                    self.node(cls, self.graph.nodes[i])
            return
        for i in range(group.first, group.end):
            if i not in self.var:
                self.node(cls, self.graph.nodes[i])

    def output_name(self, cls: _Class, node: Node, name: str | None = None) -> str:
        """``x`` where the value flows straight into the next node and nothing else needs
        the current ``x``; a name where it is read again further on (a skip, a gate)."""
        readers = self.readers[node.id]
        current = [i for i, v in self.var.items() if v == "x" and i != node.id]
        x_free = all(r <= node.id for i in current for r in self.readers[i])
        if node.id == self.returning:  # what the block returns: its readers are outside
            return (
                "x"
                if x_free
                else _identifier(name or node.name or node.type, cls.taken | set(self.var.values()))
            )
        following = readers[0] if len(readers) == 1 else None
        if x_free and following is not None and node.id not in self.graph.outputs and not any(
            i not in self.var and i < following for i in range(node.id + 1, following)
        ):  # fmt: skip
            return "x"
        taken = cls.taken | {v for v in self.var.values()}
        return _identifier(name or node.name or node.type, taken)

    def node(self, cls: _Class, node: Node) -> None:
        args = [self.var[i] for i in node.inputs]
        out = self.output_name(cls, node)
        shape = _shape(node.shape)
        kind = node.type
        if kind == "add":
            code = " + ".join(args)
        elif kind == "mul":
            code = " * ".join(args)
        elif kind == "matmul":
            code = f"torch.matmul({args[0]}, {args[1]})"
        elif kind == "concat":  # a learned tensor (batch 1) takes the others' batch
            learned = [self.graph.nodes[i].type == "parameter" for i in node.inputs]
            other = next((a for a, flag in zip(args, learned) if not flag), None)
            rest = ", -1" * len(node.shape)
            parts = [f"{a}.expand({other}.shape[0]{rest})" if flag and other else a
                     for a, flag in zip(args, learned)]  # fmt: skip
            code = f"torch.cat([{', '.join(parts)}], dim={node.hyper.get('dim', 0) + 1})"
        else:
            module = self.model.node_modules[node.path]
            self.used_types.add(type(module))
            attr = _identifier(node.name or kind, cls.taken)
            cls.attributes.append((attr, self.constructor(node, module), self.comment(node)))
            code = f"self.{attr}({', '.join(args)})"
            self.init_line(cls, node, f"self.{attr}")
        cls.forward.append(f"        {out} = {code}  # {shape}")
        self.var[node.id] = out

    def constructor(self, node: Node, module: nn.Module) -> str:
        code = module_code(module)
        if node.type == "linear":
            source = self.graph.nodes[node.inputs[0]]
            if source.type == "flatten" and len(node.shape) == 1:
                before = self.graph.nodes[source.inputs[0]].shape
                factors = " * ".join(str(int(v)) for v in before)
                code = code.replace(
                    f"nn.Linear({int(product(before))},", f"nn.Linear({factors},", 1
                )
        return code

    def comment(self, node: Node) -> str:
        inp = self.graph.nodes[node.inputs[0]].shape if node.inputs else ()
        if node.type.startswith("conv") and inp:
            return f"{int(inp[0])} channels in; output {_shape(node.shape)}"
        if node.type == "linear" and len(inp) > 1:
            return f"on the last dimension of {_shape(inp)}"
        return ""

    def init_line(self, cls: _Class, node: Node, attr: str) -> None:
        rec = self.recs.get(node.id)
        if rec is None or node.hyper.get("table") or node.type in ("subsample",):
            return
        code = rec.torch.replace("layer.", f"{attr}.")
        if isinstance(self.model.node_modules[node.path], modules.PaddedConv):
            code = code.replace(f"{attr}.", f"{attr}.conv.")
        cls.inits.append(code.replace("; ", "\n        "))

    def block_call(self, cls: _Class, group: Group) -> None:
        inner = _Class("?")
        outer_var = self.var
        start = group.inputs[0] if group.inputs else 0
        var = {start: "x"}
        self.var = var
        returning, self.returning = self.returning, group.output
        for children in group.children:
            for child in children:
                self.group(inner, child)
        last = self.var[group.output]
        inner.forward.append(f"        return {last}")
        self.var, self.returning = outer_var, returning
        text = inner.text("")
        name = self.signatures.get(text)
        if name is None:
            base = _identifier(_class_name(group.type),
                               {c.name for c, _ in self.classes} | self.reserved | {self.top})  # fmt: skip
            inner.name = name = base
            self.signatures[text] = name
            self.classes.append((inner, f"The spec's block {group.type!r}."))
        attr = _identifier(group.name or group.type, cls.taken)
        cls.attributes.append((attr, f"{name}()", ""))
        if inner.inits:
            cls.inits.append(f"self.{attr}.init_weights()")
        out = self.output_name(cls, self.graph.nodes[group.output], group.name or group.type)
        cls.forward.append(f"        {out} = self.{attr}({self.var[start]})  "
                           f"# {_shape(self.graph.nodes[group.output].shape)}")  # fmt: skip
        for i in range(group.first, group.end):
            self.var.setdefault(i, out)
        self.var[group.output] = out


#: verify's own modules an exported file defines, in the order it defines them.
_SUPPORT = (modules.Concat, modules.Learned, modules.Reshape, modules.Permute, modules.Transpose,
            modules.Unsqueeze, modules.Narrow, modules.Pad, modules.CenterCrop, modules.Mean,
            modules.SelfAttention, modules.StochasticDepth, modules.PaddedConv,
            build_module.TableConv2d, build_module.Subsample, build_module.RBF)  # fmt: skip

_IMPORTED = frozenset({"math", "torch", "F", "nn"})
#: Names the top-level class must not take: any helper's, the imports'.
RESERVED = frozenset({cls.__name__ for cls in _SUPPORT}) | _IMPORTED


def _class_name(block: str) -> str:
    """A block's class name: ``inverted_residual`` -> ``InvertedResidual``; a name already in
    CamelCase (an imported ``CenterCrop``) is kept, so export and import round-trip it.

    >>> _class_name("inverted_residual"), _class_name("CenterCrop"), _class_name("se")
    ('InvertedResidual', 'CenterCrop', 'Se')
    """
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[\W_]+", block))


#: Item types that are not block calls (the language's own; from the fast reader's table, so
#: that exporting does not build the pydantic models).
build_module_BUILTINS = {"residual", "concat", "repeat"} | set(LAYER_TYPES)


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines


def export_pytorch(analysis: Analysis, class_name: str | None = None) -> str:
    """The spec as Python source: an nn.Module class (and its blocks' classes)."""
    if class_name is not None and (class_name in RESERVED or keyword.iskeyword(class_name)
                                   or not class_name.isidentifier()):  # fmt: skip
        raise ArchcalcError(f"class name: expected a Python name other than the file's own "
                            f"({', '.join(sorted(RESERVED))}). Received: {class_name!r}")  # fmt: skip
    name = class_name or _identifier(analysis.spec.name.title().replace("-", ""), set(RESERVED))
    return _Exporter(analysis).run(name)


def exported_module(source: str, class_name: str) -> nn.Module:
    """Run exported source (our own output) and build its module."""
    namespace: dict[str, Any] = {"__name__": "archcalc_export"}
    exec(compile(source, f"<{class_name}>", "exec"), namespace)  # noqa: S102 - our own output
    return namespace[class_name]()


class _Probe(nn.Module):
    """The spec's model returning every row's output as well: ONNX's shape inference then
    names a shape for each, to hold against archcalc's."""

    def __init__(self, model: nn.Module, paths: list[str]):
        super().__init__()
        self.model, self.paths = model, paths

    def forward(self, x):
        seen: dict[str, Any] = {}
        handles = [self.model.node_modules[p].register_forward_hook(
            lambda m, a, out, p=p: seen.__setitem__(p, out)) for p in self.paths]  # fmt: skip
        try:
            out = self.model(x)
        finally:
            for handle in handles:
                handle.remove()
        return (out if isinstance(out, tuple) else (out,)) + tuple(seen[p] for p in self.paths)


def export_onnx(analysis: Analysis, path: str, *, probe: bool = False) -> list[str]:
    """verify's model of the spec as an ONNX file (legacy TorchScript exporter, opset 17).

    With ``probe``, every row's output (but learned tensors', which are constants) is an
    extra graph output named after its path (``layers[4].body[2]``); returns the output
    names. Needs the onnx package."""
    import torch

    model = build_module.SpecModel(analysis).eval()
    outputs = [f"output_{i}" for i in range(len(analysis.graph.outputs))]
    paths = [row.path for row in analysis.rows if row.type != "parameter"] if probe else []
    names = outputs + paths
    target = _Probe(model, paths) if probe else model
    example = torch.randn(1, *[int(v) for v in analysis.input])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(target, (example,), path, dynamo=False, opset_version=17,
                          input_names=["input"], output_names=names)  # fmt: skip
    return names


def onnx_shapes(path: str) -> dict[str, list[int]]:
    """ONNX's own shape inference: every graph output's shape (batch dimension included)."""
    import onnx

    graph = onnx.shape_inference.infer_shapes(onnx.load(path)).graph
    return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in graph.output}
