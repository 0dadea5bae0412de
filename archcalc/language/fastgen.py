"""Generate the fast reader's table from the pydantic models of the spec language.

The pydantic models are the language's definition (and its JSON Schema). Building
them costs more than the rest of a small run (class creation, then the core schema
of the recursive layer union), so the fast reader (:mod:`archcalc.language.fast`)
works from a table derived from them once: each model's fields with the rule that
checks them (a :class:`~archcalc.language.values.Kind` marker, or a plain type with
its constraints), defaults, class constants and item checks. A field type this
generator does not understand becomes ``("slow", why)``: the fast reader then hands
any spec that uses it to pydantic.

``python -m archcalc.language.fastgen`` rewrites ``_fast_table.py``; a test fails when
the committed table differs from what the models give.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from archcalc.language.values import Kind

TABLE_FILE = Path(__file__).with_name("_fast_table.py")
CLASS_CONSTANTS = ("EXPR_FIELDS", "PROBABILITY_FIELDS", "ARITY")
_CONSTRAINTS = {
    annotated_types.MinLen: "min_length", annotated_types.MaxLen: "max_length",
    annotated_types.Ge: "ge", annotated_types.Gt: "gt", annotated_types.Le: "le",
    annotated_types.Lt: "lt",
}  # fmt: skip
_PLAIN = {int: "int", float: "float", bool: "bool", str: "str", type(None): "none", Any: "any"}


def _constraints(metadata: list) -> tuple[dict[str, Any], Kind | None, list]:
    """Known constraints, the Kind marker, and what is left unknown."""
    found: dict[str, Any] = {}
    kind, unknown = None, []
    for item in metadata:
        if isinstance(item, Kind):
            kind = item
        elif isinstance(item, FieldInfo):
            more, inner, rest = _constraints(item.metadata)
            found.update(more)
            kind = kind or inner
            unknown += rest
        elif type(item) in _CONSTRAINTS:
            name = _CONSTRAINTS[type(item)]
            found[name] = getattr(item, name)
        elif type(item).__name__ == "Strict":
            found["strict"] = item.strict
        elif type(item).__name__ == "_PydanticGeneralMetadata":
            found.update(vars(item))
        elif type(item).__name__ in ("PlainValidator", "WithJsonSchema", "Tag", "Discriminator"):
            continue  # the behaviour is the Kind's; the rest is documentation
        else:
            unknown.append(item)
    return found, kind, unknown


def rule(annotation: Any, metadata: list | None = None) -> tuple:
    """The fast reader's rule for one annotation (with the field's own constraints)."""
    metadata = list(metadata or [])
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        if _is_layer_union(base):
            return ("layers",)
        return rule(base, [*extra, *metadata])
    found, kind, unknown = _constraints(metadata)
    if unknown:
        return ("slow", f"unknown metadata {unknown!r}")
    if kind is not None:
        return (kind.name, *kind.args)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) < len(args):  # Optional: constraints apply to the value inside
            inner = options[0] if len(options) == 1 else Union[tuple(options)]
            return ("optional", rule(inner, metadata))
        if _is_layer_union(annotation):
            return ("layers",)
        members = tuple(rule(a) for a in args)
        models = [m for m in members if m[0] == "model"]
        # Decided by the input alone (a mapping is the model, anything else the rest), so
        # trying the members in order is what pydantic's smart union does.
        if len(models) == 1 and len(members) == 2 and not found:
            return ("union", members)
        return ("slow", f"union {annotation!r}")
    if origin is Literal:
        return ("literal", args)
    if origin is list:
        return ("list", rule(args[0]), found.get("min_length"), found.get("max_length"))
    if origin is dict:
        return ("dict", rule(args[0]), rule(args[1]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return ("model", annotation.__name__)
    if annotation in _PLAIN:
        name = _PLAIN[annotation]
        allowed = {"int": {"ge", "gt", "le", "lt", "strict"}, "float": {"ge", "gt", "le", "lt"},
                   "str": {"pattern", "max_length"}}.get(name, set())  # fmt: skip
        if set(found) - allowed:
            return ("slow", f"{name} with {found}")
        return (name, tuple(sorted(found.items())))
    return ("slow", f"type {annotation!r}")


def _is_layer_union(annotation: Any) -> bool:
    args = typing.get_args(annotation)
    return typing.get_origin(annotation) in (Union, types.UnionType) and any(
        typing.get_origin(a) is typing.Annotated and type(typing.get_args(a)[1]).__name__ == "Tag"
        for a in args
    )


def _default(field: FieldInfo) -> tuple:
    if field.is_required():
        return ("required",)
    if field.default_factory is not None:
        if field.default_factory in (list, dict):
            return ("factory", field.default_factory.__name__)
        return ("slow", "default factory")
    return ("value", field.default)


def model_entry(cls: type[BaseModel]) -> dict[str, Any]:
    """One model's entry: fields (name, rule, default), extra fields, constants, checks."""
    cls.model_rebuild()
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = []
    for name, field in cls.model_fields.items():
        fields.append((name, rule(hints.get(name, field.annotation), field.metadata),
                       _default(field)))  # fmt: skip
    decorators = cls.__pydantic_decorators__
    checks = [getattr(d.func, "fast_check", None) for d in decorators.model_validators.values()]
    slow = [f"validator {d}" for d in decorators.field_validators] + [
        "model validator without fast_check" for c in checks if c is None
    ]
    extra = cls.model_config.get("extra")
    extra_rule = None
    if extra == "allow":
        value = typing.get_args(hints["__pydantic_extra__"])[1]
        extra_rule = rule(value)
    elif extra != "forbid":
        slow.append(f"extra={extra!r}")
    from archcalc.language.fields import Model

    return {
        "fields": tuple(fields),
        "names": tuple(
            c.__name__ for c in cls.__mro__ if isinstance(c, type) and issubclass(c, Model)
        ),
        "extra": extra_rule,
        "constants": {k: getattr(cls, k) for k in CLASS_CONSTANTS if hasattr(cls, k)},
        "checks": tuple(c for c in checks if c),
        "slow": tuple(slow),
    }


def build_table() -> dict[str, Any]:
    """Every model reachable from Spec, and the layer type names."""
    from archcalc.language import layer_types, spec

    models: dict[str, type[BaseModel]] = {}

    def visit(cls: type[BaseModel]) -> None:
        if cls.__name__ in models:
            return
        models[cls.__name__] = cls
        for member in vars(sys.modules[cls.__module__]).values():
            if (
                isinstance(member, type)
                and issubclass(member, BaseModel)
                and (member.__name__ in _mentioned(cls))
            ):
                visit(member)

    for cls in (spec.Spec, *layer_types.LAYER_CLASSES, layer_types.BlockCall):
        visit(cls)
    return {
        "models": {name: model_entry(cls) for name, cls in sorted(models.items())},
        "layer_types": {name: cls.__name__ for name, cls in layer_types.BUILTIN_TYPES.items()},
    }


def _mentioned(cls: type[BaseModel]) -> set[str]:
    """Names of the models a model's field types mention."""
    names: set[str] = set()

    def walk(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.add(annotation.__name__)
        for arg in typing.get_args(annotation):
            walk(arg)

    hints = typing.get_type_hints(cls, include_extras=True)
    for name in cls.model_fields:
        walk(hints.get(name))
    return names


def render(table: dict[str, Any]) -> str:
    """The table as the source of ``_fast_table.py``: one line per field."""
    out = [
        '"""Generated by ``python -m archcalc.language.fastgen`` from the spec models: do not '
        'edit."""',
        "",
        "# fmt: off",
        "TABLE = {",
        '    "models": {',
    ]
    for name, entry in table["models"].items():
        out.append(f"        {name!r}: {{")
        out.append('            "fields": (')
        out += [f"                {field!r}," for field in entry["fields"]]
        out.append("            ),")
        out += [f"            {key!r}: {entry[key]!r}," for key in entry if key != "fields"]
        out.append("        },")
    out += ["    },", f'    "layer_types": {table["layer_types"]!r},', "}", ""]
    return "\n".join(out)


def main() -> int:
    TABLE_FILE.write_text(render(build_table()), encoding="utf-8")
    print(f"wrote {TABLE_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
