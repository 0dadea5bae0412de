"""The fast reader: a spec's plain data to frozen items, without building pydantic models.

Creating the pydantic models of the language and the validator of their recursive
layer union costs several times a small network's whole analysis, on every run.
This reader checks the same rules from a table generated from those models
(:mod:`archcalc.language.fastgen`), calling the same value functions
(:mod:`archcalc.language.values`) and the same item checks, and builds light items
with the same attributes (``__dict__`` holds exactly the fields, ``EXPR_FIELDS`` and
the other class constants, ``__pydantic_extra__`` for block calls, ``_lines`` on the
spec). It only ever says yes or "not sure": any input it does not accept exactly as
pydantic would (a value pydantic would coerce, a check that fails, anything unusual)
returns ``None``, and the caller validates with pydantic, which gives the answer and
every error message. Tests check that both give equal items on every shipped spec and
on generated ones.

>>> spec = read({"name": "tiny", "input": [4], "layers": [{"type": "linear", "out_features": 2}]})
>>> type(spec.layers[0]).__name__, spec.layers[0].out_features, spec.layers[0].bias
('Linear', 2, True)
>>> read({"name": "tiny", "input": [4], "layers": [{"type": "linear", "out_features": True}]})
"""

from __future__ import annotations

import re
from typing import Any, Callable

from archcalc.language import values
from archcalc.language._fast_table import TABLE
from archcalc.language.checks import ITEM_CHECKS


class _NotSure(Exception):
    """Raised inside the reader: hand the document to pydantic."""


class Item(values.SpecObject):
    """A frozen item read by the fast reader: its fields are its ``__dict__``."""

    __slots__ = ("__dict__", "__pydantic_extra__")
    FIELDS: tuple[str, ...] = ()
    MODEL_NAMES: frozenset[str] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and self.__dict__ == other.__dict__
            and self.__pydantic_extra__ == other.__pydantic_extra__  # type: ignore[attr-defined]
        )

    def __iter__(self) -> Any:  # as pydantic's: (name, value) of the fields, then the extras
        yield from self.__dict__.items()
        yield from (self.__pydantic_extra__ or {}).items()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # lists inside, as pydantic's frozen models

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"{type(self).__name__}({shown})"


def _make_classes() -> dict[str, type[Item]]:
    classes = {}
    for name, entry in TABLE["models"].items():
        namespace: dict[str, Any] = {"__slots__": ("_lines",) if name == "Spec" else ()}
        namespace.update(entry["constants"])
        namespace["FIELDS"] = tuple(field for field, _, _ in entry["fields"])
        namespace["MODEL_NAMES"] = frozenset(entry["names"])  # isinstance(item, Conv) holds
        namespace["__module__"] = __name__
        classes[name] = type(name, (Item,), namespace)
    return classes


CLASSES = _make_classes()
LAYER_TYPES: dict[str, str] = TABLE["layer_types"]


def read(data: Any) -> Item | None:
    """The spec as fast items, or ``None`` where pydantic must decide."""
    if type(data) is not dict:
        return None
    try:
        spec = _model("Spec", data)
    except _NotSure:
        return None
    except (ValueError, TypeError, ArithmeticError, RecursionError):
        return None
    except Exception as err:  # an ArchcalcError from a check: pydantic reports it in full
        if type(err).__name__ == "ArchcalcError":
            return None
        raise
    object.__setattr__(spec, "_lines", {})
    return spec


def _model(name: str, data: Any) -> Item:
    if type(data) is not dict:
        raise _NotSure
    reader = _READERS.get(name)
    if reader is None:
        reader = _READERS[name] = _reader(name)
    return reader(data)


_MISSING = object()  # a required field not given
_FACTORIES = {"list": list, "dict": dict}
_READERS: dict[str, Callable[[dict], Item]] = {}


def _reader(name: str) -> Callable[[dict], Item]:
    """The reader of one model, made once: its defaults as one dict to copy, and the rule of
    each field by name, so that reading an item walks the keys it was given (a ``{type:
    relu}`` item: one key, not the model's seven fields)."""
    entry = TABLE["models"][name]
    cls, extra_rule, checks = CLASSES[name], entry["extra"], entry["checks"]
    if entry["slow"]:

        def slow(data: dict) -> Item:
            raise _NotSure

        return slow
    template: dict[str, Any] = {}
    rules: dict[str, tuple] = {}
    required, factories = [], []
    for field, rule, default in entry["fields"]:  # the template keeps the model's order
        rules[field] = (_RULES[rule[0]], rule)
        if default[0] == "value":
            template[field] = default[1]
        elif default[0] == "factory":
            template[field] = _MISSING
            factories.append((field, _FACTORIES[default[1]]))
        else:
            template[field] = _MISSING
            required.append(field)
    item_checks = [ITEM_CHECKS[check] for check in checks]

    def read(data: dict) -> Item:
        item = object.__new__(cls)
        fields = dict(template)
        extra_keys = None
        for key, value in data.items():
            found = rules.get(key) if type(key) is str else None
            if found is None:
                extra_keys = [key] if extra_keys is None else [*extra_keys, key]
            else:
                fields[key] = found[0](found[1], value)
        for field in required:
            if fields[field] is _MISSING:
                raise _NotSure  # required and missing
        for field, factory in factories:
            if fields[field] is _MISSING:
                fields[field] = factory()
        extra = None if extra_rule is None else {}
        if extra_keys is not None:
            if extra_rule is None:
                raise _NotSure  # unknown keys
            if any(type(key) is not str for key in extra_keys):
                raise _NotSure
            extra = {key: _check(extra_rule, data[key]) for key in extra_keys}
        if extra_rule is not None:  # pydantic keeps them in __dict__ too (a declared field)
            fields["__pydantic_extra__"] = extra
        object.__setattr__(item, "__dict__", fields)
        object.__setattr__(item, "__pydantic_extra__", extra)
        for check in item_checks:
            check(item)
        return item

    return read


def _check(rule: tuple, value: Any) -> Any:
    return _RULES[rule[0]](rule, value)


#: A decimal number written as text, which pydantic reads as a float (PyYAML reads ``6.3e8``,
#: with no dot or sign in the exponent, as a string).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _number(kind: type, rule: tuple, value: Any) -> Any:
    if kind is float and type(value) is str and _DECIMAL.fullmatch(value):
        value = float(value)
    elif type(value) is not kind and not (kind is float and type(value) is int):
        raise _NotSure
    value = kind(value)
    for name, bound in rule[1]:
        ok = {"ge": value >= bound, "gt": value > bound, "le": value <= bound,
              "lt": value < bound, "strict": True}[name]  # fmt: skip
        if not ok:
            raise _NotSure
    return value


_PATTERNS: dict[str, re.Pattern] = {}


def _string(rule: tuple, value: Any) -> str:
    if type(value) is not str:
        raise _NotSure
    constraints = dict(rule[1])
    if len(value) > constraints.get("max_length", len(value)):
        raise _NotSure
    pattern = constraints.get("pattern")
    if pattern is not None:
        compiled = _PATTERNS.get(pattern) or _PATTERNS.setdefault(pattern, re.compile(pattern))
        # Python's $ also matches before a final newline; pydantic's (Rust) regex does not.
        if "\n" in value or not compiled.search(value):
            raise _NotSure
    return value


def _exact(kind: type) -> Callable[[tuple, Any], Any]:
    def check(rule: tuple, value: Any) -> Any:
        if type(value) is not kind:
            raise _NotSure
        return value

    return check


def _list(rule: tuple, value: Any) -> list:
    _, inner, shortest, longest = rule
    if type(value) is not list:
        raise _NotSure
    if (shortest is not None and len(value) < shortest) or (
        longest is not None and len(value) > longest
    ):
        raise _NotSure
    return [_check(inner, item) for item in value]


def _dict(rule: tuple, value: Any) -> dict:
    if type(value) is not dict:
        raise _NotSure
    return {_check(rule[1], key): _check(rule[2], item) for key, item in value.items()}


def _literal(rule: tuple, value: Any) -> Any:
    if not any(type(value) is type(option) and value == option for option in rule[1]):
        raise _NotSure
    return value


def _union(rule: tuple, value: Any) -> Any:
    model = next(member for member in rule[1] if member[0] == "model")
    other = next(member for member in rule[1] if member[0] != "model")
    return _check(model if type(value) is dict else other, value)


def _layer(rule: tuple, value: Any) -> Item:
    if type(value) is not dict or type(value.get("type")) is not str:
        raise _NotSure
    return _model(LAYER_TYPES.get(value["type"], "BlockCall"), value)


def _optional(rule: tuple, value: Any) -> Any:
    return None if value is None else _check(rule[1], value)


def _slow(rule: tuple, value: Any) -> Any:
    raise _NotSure


def _none(rule: tuple, value: Any) -> None:
    if value is not None:
        raise _NotSure


#: One function per rule name of the table; each returns the value as pydantic would, or
#: raises (ValueError from the shared value functions, _NotSure otherwise).
_RULES: dict[str, Callable[[tuple, Any], Any]] = {
    "int_expr": lambda rule, value: values._int_or_expression(value, rule[1]),
    "size_expr": lambda rule, value: values._int_or_list(value, rule[1]),
    "padding": lambda rule, value: values._padding(value),
    "probability": lambda rule, value: values._probability(value),
    "activation_ref": lambda rule, value: values._activation_value(value),
    "int": lambda rule, value: _number(int, rule, value),
    "float": lambda rule, value: _number(float, rule, value),
    "bool": _exact(bool),
    "str": _string,
    "none": _none,
    "any": lambda rule, value: value,
    "literal": _literal,
    "optional": _optional,
    "list": _list,
    "dict": _dict,
    "model": lambda rule, value: _model(rule[1], value),
    "union": _union,
    "layers": _layer,
    "slow": _slow,
}


def why_not(data: Any) -> str:
    """Where the fast reader hands ``data`` to pydantic (for tests and debugging)."""
    import traceback

    try:
        _model("Spec", data)
    except Exception:
        return traceback.format_exc(limit=-3)
    return "accepted"
