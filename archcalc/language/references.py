"""Static checks of a spec that need more than one field at a time.

Unknown layer types, block parameters, undeclared names in expressions and
conditions, activation fields naming a block parameter, and recursive blocks
are found here, when the spec is loaded, with the spec path of the offending
item. Tensor names (``input:``, ``inputs:``, ``outputs:``) are resolved when the
spec is elaborated, where repeats and blocks are unrolled.
"""

from __future__ import annotations

from typing import Any, Iterator

from archcalc.errors import ArchcalcError
from archcalc.language import conditions, expr
from archcalc.language._fast_table import TABLE
from archcalc.language.values import ACTIVATION_TYPES, PADDING_WORDS, suggest

#: Fields of a BlockCall that are not block parameters.
CALL_FIELDS = frozenset({"type", "name", "expect", "input", "when"})
#: Words a user may try for a type, mapped to what archcalc calls it (suggest by meaning).
TYPE_MEANINGS = {
    "swish": "silu", "hard_swish": "hardswish", "hswish": "hardswish", "h_swish": "hardswish",
    "hard_sigmoid": "hardsigmoid", "hsigmoid": "hardsigmoid", "dense": "linear",
    "fc": "linear", "fully_connected": "linear", "conv": "conv2d", "convolution": "conv2d",
    "deconv": "conv_transpose2d", "deconv2d": "conv_transpose2d", "convtranspose2d": "conv_transpose2d",
    "conv2d_transpose": "conv_transpose2d", "upsampling": "upsample", "upsample2d": "upsample",
    "interpolate": "upsample", "resize": "upsample", "maxpool": "maxpool2d",
    "avgpool": "avgpool2d", "global_avgpool": "adaptive_avgpool2d", "gap": "adaptive_avgpool2d",
    "batchnorm": "batchnorm2d", "bn": "batchnorm2d", "batch_norm": "batchnorm2d",
    "layer_norm": "layernorm", "ln": "layernorm", "groupnorm": "group_norm",
    "instancenorm": "instance_norm2d", "instance_norm": "instance_norm2d", "lrn": "local_response_norm",
    "attention": "multihead_attention", "mha": "multihead_attention", "self_attention": "multihead_attention",
    "multiheadattention": "multihead_attention", "cat": "concat", "concatenate": "concat",
    "sum": "add", "plus": "add", "multiply": "mul", "product": "mul", "view": "reshape",
    "pad": "zero_pad", "padding": "zero_pad", "crop": "center_crop", "shuffle": "channel_shuffle",
    "skip": "residual", "shortcut": "residual", "res": "residual", "gate": "mul",
    "logsoftmax": "log_softmax", "relu_6": "relu6", "leakyrelu": "leaky_relu", "prelu_": "prelu",
    "droppath": "stochastic_depth", "drop_path": "stochastic_depth", "avg_pool": "avgpool2d",
    "max_pool": "maxpool2d", "squeeze_excitation": "mul", "global_pool": "adaptive_avgpool2d",
}  # fmt: skip


def child_lists(layer) -> Iterator[tuple[str, list]]:
    """The nested layer lists of a composite, with their path suffixes."""
    kind = layer.type
    if kind == "residual":
        yield ".body", layer.body
        yield ".shortcut", layer.shortcut
    elif kind == "concat" and layer.branches is not None:
        for index, branch in enumerate(layer.branches):
            yield f".branches[{index}]", branch
    elif kind == "repeat":
        yield ".layers", layer.layers


def field_texts(field: str, value: Any) -> Iterator[tuple[str, str]]:
    """The expression strings in one field's value, with their path suffixes."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "pairs":
        for i, pair in enumerate(value[1]):
            for j, item in enumerate(pair):
                if isinstance(item, str):
                    yield f"{field}[{i}][{j}]", item
        return
    values = value if isinstance(value, (list, tuple)) else (value,)
    for index, item in enumerate(values):
        if isinstance(item, str) and item not in PADDING_WORDS:
            yield (f"{field}[{index}]" if isinstance(value, (list, tuple)) else field), item


def expressions(layer) -> Iterator[tuple[str, str]]:
    """Every expression string of a layer item, with the field path suffix."""
    block_args = layer.__pydantic_extra__ or {}  # None for built-in types (extra fields forbidden)
    items = [(k, v) for k, v in block_args.items() if v not in ACTIVATION_TYPES]
    items += [(name, getattr(layer, name)) for name in layer.EXPR_FIELDS]
    items += [(name, getattr(layer, name)) for name in layer.PROBABILITY_FIELDS]
    if layer.expect is not None:
        items += [(f"expect.{key}", value) for key, value in layer.expect
                  if value is not None and not hasattr(value, "approx")]  # fmt: skip
    for field, value in items:
        for suffix, text in field_texts(field, value):
            yield "." + suffix, text


def check_references(spec: Any) -> None:
    """Raise ArchcalcError for the first reference problem in ``spec``."""
    BUILTIN_TYPES = TABLE["layer_types"]

    for name in list(spec.symbols) + [p for block in spec.blocks.values() for p in block.params]:
        if name in expr.RESERVED_NAMES or name in ACTIVATION_TYPES:
            raise ArchcalcError(f"{name!r} is reserved and cannot name a symbol or parameter")
    for name in spec.blocks:
        if name in BUILTIN_TYPES:
            raise ArchcalcError(
                f"block name {name!r} is a built-in layer type; choose another name",
                path=f"blocks.{name}",
            )
    calls: dict[str, set[str]] = {}
    globals_ = frozenset(spec.symbols)
    _check_list(spec, spec.layers, "layers", globals_, frozenset(), calls.setdefault("", set()))
    for name, block in spec.blocks.items():
        scope = globals_ | frozenset(block.params)
        _check_list(spec, block.layers, f"blocks.{name}.layers", scope, frozenset(block.params),
                    calls.setdefault(name, set()))  # fmt: skip
    done: set[str] = set()
    for name in spec.blocks:
        _find_cycle(name, calls, [name], done)
    if spec.expect is not None:
        for key, value in spec.expect:
            if hasattr(value, "approx"):
                continue
            for index, item in enumerate(value if isinstance(value, list) else [value]):
                if isinstance(item, str):
                    _check_names(
                        item, globals_, f"expect.{key}", index if key == "output" else None
                    )
    for index, item in enumerate(spec.input):
        if isinstance(item, str):
            _check_names(item, globals_, "input", index)


def _check_names(text: str, scope: frozenset[str], path: str, index: int | None = None,
                 condition: bool = False) -> None:  # fmt: skip
    tree = conditions.parse_condition(text) if condition else expr.parse(text)
    found = conditions.condition_names(tree) if condition else expr.names(tree)
    unknown = sorted(found - scope)
    if unknown:
        declared = ", ".join(sorted(scope - frozenset(expr.INPUT_SIZE_NAMES))) or "none"
        where = f"{path}[{index}]" if index is not None else path
        case = [s for s in scope if s.lower() == unknown[0].lower()]
        hint = (
            f" (did you mean {case[0]!r}? names are case-sensitive)"
            if case
            else suggest(unknown[0], scope)
        )
        raise ArchcalcError(
            f"undeclared name {unknown[0]!r} in {text!r}{hint}; declared: {declared}", path=where
        )


def _check_list(spec: Any, layers: list, prefix: str, scope: frozenset, params: frozenset,
                calls: set) -> None:  # fmt: skip
    BUILTIN_TYPES = TABLE["layer_types"]

    local = scope | frozenset(expr.INPUT_SIZE_NAMES)
    for index, layer in enumerate(layers):
        path = f"{prefix}[{index}]"
        if type(layer).__name__ == "BlockCall":
            block = spec.blocks.get(layer.type)
            if block is None and layer.type in params:  # a parameter holding an activation
                if layer.__pydantic_extra__:
                    raise ArchcalcError(
                        f"{layer.type!r} names an activation parameter; it takes no fields",
                        path=f"{path}.{next(iter(layer.__pydantic_extra__))}",
                    )
                continue
            if block is None:
                known = [*BUILTIN_TYPES, *spec.blocks]
                raise ArchcalcError(
                    f"unknown layer type {layer.type!r}"
                    f"{suggest(layer.type, known, meaning=TYPE_MEANINGS)}",
                    path=f"{path}.type",
                )
            calls.add(layer.type)
            given = set(layer.__pydantic_extra__ or {})
            for extra in sorted(given - set(block.params)):
                wanted = ", ".join(block.params) or "no parameters"
                raise ArchcalcError(
                    f"unknown parameter of block {layer.type!r}{suggest(extra, block.params)}; "
                    f"it takes: {wanted}",
                    path=f"{path}.{extra}",
                )
            missing = [param for param in block.params if param not in given]
            if missing:
                raise ArchcalcError(
                    f"block {layer.type!r} needs parameter(s) {', '.join(missing)}", path=path
                )
        for suffix, text in expressions(layer):
            _check_names(text, local, path + suffix)
        if layer.when is not None:
            _check_names(layer.when, local, f"{path}.when", condition=True)
        act = layer.__dict__.get("activation")
        if act is not None and act not in ACTIVATION_TYPES and act not in params:
            hint = suggest(act, [*ACTIVATION_TYPES, *params], meaning=TYPE_MEANINGS)
            raise ArchcalcError(
                f"unknown activation {act!r}{hint}; expected one of "
                f"{', '.join(ACTIVATION_TYPES)}" + (" or a block parameter" if params else ""),
                path=f"{path}.activation",
            )
        for suffix, children in child_lists(layer):
            _check_list(spec, children, path + suffix, scope, params, calls)


def _find_cycle(name: str, calls: dict[str, set[str]], stack: list[str], done: set[str]) -> None:
    """Depth-first search for a block that (indirectly) calls itself."""
    for callee in sorted(calls.get(name, ())):
        if callee in stack:
            loop = " -> ".join([*stack[stack.index(callee) :], callee])
            raise ArchcalcError(f"recursive block: {loop}", path=f"blocks.{stack[0]}")
        if callee not in done:
            _find_cycle(callee, calls, [*stack, callee], done)
    done.add(name)
