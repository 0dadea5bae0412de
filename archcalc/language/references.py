"""Static checks of a spec that need more than one field at a time.

Unknown layer types, block parameters, undeclared names in expressions and
recursive blocks are found here, when the spec is loaded, with the spec path
of the offending item.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from archcalc.errors import ArchcalcError
from archcalc.language import expr

if TYPE_CHECKING:
    from archcalc.language.spec import Spec

#: Fields of a BlockCall that are not block parameters.
CALL_FIELDS = frozenset({"type", "name", "expect"})


def child_lists(layer) -> Iterator[tuple[str, list]]:
    """The nested layer lists of a composite, with their path suffixes."""
    kind = layer.type
    if kind == "residual":
        yield ".body", layer.body
        yield ".shortcut", layer.shortcut
    elif kind == "concat":
        for index, branch in enumerate(layer.branches):
            yield f".branches[{index}]", branch
    elif kind == "repeat":
        yield ".layers", layer.layers


def expressions(layer) -> Iterator[tuple[str, str]]:
    """Every expression string of a layer item, with the field path suffix."""
    block_args = layer.__pydantic_extra__ or {}  # None for built-in types (extra fields forbidden)
    items = list(block_args.items()) + [(name, getattr(layer, name)) for name in layer.EXPR_FIELDS]
    if layer.expect is not None:
        items += [(f"expect.{key}", value) for key, value in layer.expect
                  if value is not None and not hasattr(value, "approx")]  # fmt: skip
    for field, value in items:
        values = value if isinstance(value, (list, tuple)) else (value,)
        for index, item in enumerate(values):
            if isinstance(item, str) and item not in ("same", "valid"):
                suffix = f"{field}[{index}]" if isinstance(value, (list, tuple)) else field
                yield "." + suffix, item


def check_references(spec: Spec) -> None:
    """Raise ArchcalcError for the first reference problem in ``spec``."""
    from archcalc.language.spec import BUILTIN_TYPES

    for name in list(spec.symbols) + [p for block in spec.blocks.values() for p in block.params]:
        if name in expr.RESERVED_NAMES:
            raise ArchcalcError(f"{name!r} is reserved and cannot name a symbol or parameter")
    for name in spec.blocks:
        if name in BUILTIN_TYPES:
            raise ArchcalcError(
                f"block name {name!r} is a built-in layer type; choose another name",
                path=f"blocks.{name}",
            )
    calls: dict[str, set[str]] = {}
    globals_ = frozenset(spec.symbols)
    _check_list(spec, spec.layers, "layers", globals_, calls.setdefault("", set()))
    for name, block in spec.blocks.items():
        scope = globals_ | frozenset(block.params)
        _check_list(
            spec, block.layers, f"blocks.{name}.layers", scope, calls.setdefault(name, set())
        )
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


def _check_names(text: str, scope: frozenset[str], path: str, index: int | None = None) -> None:
    unknown = sorted(expr.names(expr.parse(text)) - scope)
    if unknown:
        from archcalc.language.spec import suggest

        declared = ", ".join(sorted(scope)) or "none"
        where = f"{path}[{index}]" if index is not None else path
        raise ArchcalcError(
            f"undeclared name {unknown[0]!r} in {text!r}{suggest(unknown[0], scope)}; "
            f"declared: {declared}",
            path=where,
        )


def _check_list(spec: Spec, layers: list, prefix: str, scope: frozenset, calls: set) -> None:
    from archcalc.language.spec import BUILTIN_TYPES, suggest

    for index, layer in enumerate(layers):
        path = f"{prefix}[{index}]"
        if type(layer).__name__ == "BlockCall":
            block = spec.blocks.get(layer.type)
            if block is None:
                known = [*BUILTIN_TYPES, *spec.blocks]
                raise ArchcalcError(
                    f"unknown layer type {layer.type!r}{suggest(layer.type, known)}",
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
            _check_names(text, scope, path + suffix)
        for suffix, children in child_lists(layer):
            _check_list(spec, children, path + suffix, scope, calls)


def _find_cycle(name: str, calls: dict[str, set[str]], stack: list[str], done: set[str]) -> None:
    """Depth-first search for a block that (indirectly) calls itself."""
    for callee in sorted(calls.get(name, ())):
        if callee in stack:
            loop = " -> ".join([*stack[stack.index(callee) :], callee])
            raise ArchcalcError(f"recursive block: {loop}", path=f"blocks.{stack[0]}")
        if callee not in done:
            _find_cycle(callee, calls, [*stack, callee], done)
    done.add(name)
