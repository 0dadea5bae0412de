"""What an item's expressions and tensor names can read while a spec is elaborated.

Symbols (given values, defaults or free symbols), an item's input sizes (``C_in``,
``H_in``, ...) and the tensor names in lexical scope.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from archcalc.errors import ArchcalcError
from archcalc.language import expr
from archcalc.layers.rules import shape_text

Value = expr.Value
_INPUT_NAMES = {1: ("C_in",), 2: ("C_in", "L_in"), 3: ("C_in", "H_in", "W_in"),
                4: ("C_in", "D_in", "H_in", "W_in")}  # fmt: skip
_SIZE_NAMES = frozenset(expr.INPUT_SIZE_NAMES)


class InputEnv(Mapping):
    """Names usable in an item's expressions: the scope's, plus its input's sizes."""

    __slots__ = ("base", "shape")

    def __init__(self, base: Mapping[str, Value], shape: tuple):
        self.base, self.shape = base, shape

    def __getitem__(self, key: str) -> Value:
        if key in _SIZE_NAMES:  # never a symbol or block parameter: the names are reserved
            names = _INPUT_NAMES.get(len(self.shape), ("C_in",))
            if key in names:
                return self.shape[names.index(key)]
            raise ArchcalcError(
                f"{key} is not defined for an input of shape {shape_text(self.shape)} "
                f"(it has {', '.join(names)})"
            )
        return self.base[key]

    def get(self, key: str, default: Any = None) -> Any:
        # Mapping.get goes through __getitem__ and a KeyError: this is read for every
        # expression of every item
        if key in _SIZE_NAMES:
            try:
                return self[key]
            except ArchcalcError:
                return default
        return self.base.get(key, default)

    def __contains__(self, key: object) -> bool:
        if key in _SIZE_NAMES:
            return key in _INPUT_NAMES.get(len(self.shape), ("C_in",))
        return key in self.base

    def __iter__(self) -> Iterator[str]:
        yield from self.base
        yield from _INPUT_NAMES.get(len(self.shape), ("C_in",))

    def __len__(self) -> int:
        return len(self.base) + len(_INPUT_NAMES.get(len(self.shape), ("C_in",)))


class Scope:
    """Tensor names visible to an item: its own list's earlier items, then enclosing lists'."""

    __slots__ = ("names", "parent", "later")

    def __init__(self, parent: Scope | None = None, names: dict | None = None):
        self.names: dict[str, tuple[int, str]] = names or {}
        self.parent = parent
        self.later: dict[str, str] = {}  # names defined further down this list

    def define(self, name: str, node: int, path: str) -> None:
        if name == "input":
            raise ArchcalcError("'input' names the network's (or block's) input; choose "
                                "another name", path=f"{path}.name")  # fmt: skip
        if name in self.names:
            raise ArchcalcError(
                f"name {name!r} is already used at {self.names[name][1]}; names must be unique "
                "in a layer list", path=f"{path}.name",
            )  # fmt: skip
        self.names[name] = (node, path)

    def lookup(self, name: str, path: str) -> int:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name][0]
            if name in scope.later:
                raise ArchcalcError(
                    f"{name!r} is defined later, at {scope.later[name]}; an item can only read "
                    "earlier tensors", path=path,
                )  # fmt: skip
            scope = scope.parent
        known = sorted(self.visible())
        from archcalc.language.values import suggest

        raise ArchcalcError(
            f"unknown tensor name {name!r}{suggest(name, known)}; visible here: "
            f"{', '.join(known) or 'none'}", path=path,
        )  # fmt: skip

    def visible(self) -> set[str]:
        names: set[str] = set()
        scope: Scope | None = self
        while scope is not None:
            names |= set(scope.names)
            scope = scope.parent
        return names


def environment(spec: Any, values: Mapping[str, Any], symbolic: bool) -> dict[str, Value]:
    """Symbol values: given ones, else defaults (unless ``symbolic``), else free symbols."""
    unknown = sorted(set(values) - set(spec.symbols))
    if unknown:
        declared = ", ".join(spec.symbols) or "none"
        raise ArchcalcError(
            f"cannot set {unknown[0]!r}: not a declared symbol (declared: {declared})"
        )
    env: dict[str, Value] = {}
    for name, default in spec.symbols.items():
        value = values.get(name, None if symbolic else default)
        if value is None:
            env[name] = expr.symbol(name, declared=default)
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 0 <= value <= expr.MAX_VALUE
        ):
            raise ArchcalcError(f"symbol values are integers >= 0. Received: {name}={value!r}")
        env[name] = value
    return env
