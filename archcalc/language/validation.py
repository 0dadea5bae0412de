"""Validation by the pydantic models, and their errors as one-line ArchcalcErrors.

Used where the fast reader (:mod:`archcalc.language.fast`) is not sure: pydantic gives
the answer, and every schema violation is reported with its spec path, YAML line and
layer name, in spec order.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from archcalc.errors import ArchcalcError
from archcalc.language.spec import BUILTIN_TYPES, UNION_TAGS, Spec, suggest


def validate_with_pydantic(data: Any, file: str | None, lines: dict[int, int]) -> Spec:
    """``Spec.model_validate(data)``, its errors as ArchcalcErrors."""
    try:
        return Spec.model_validate(data)
    except ArchcalcError as err:
        item = _item_at(data, _parse_path(err.path or ""))
        if item is not None:
            err.at(line=lines.get(id(item)), name=_name_of(item))
        raise err.at(file=file) from None
    except ValidationError as err:
        raise validation_error(err, data, file, lines) from None


def validation_error(err: ValidationError, data: Any, file: str | None,
                     lines: dict[int, int] | None = None) -> ArchcalcError:  # fmt: skip
    """Every pydantic error as an ArchcalcError with a spec path, in spec order; the first
    carries the others."""
    errors = _relevant(err.errors(include_url=False), data)
    # A misspelt field shows up as "unknown" plus "missing" in the same object: the unknown
    # one says more, and the missing one is its consequence.
    misspelt = {_clean_loc(e["loc"])[:-1] for e in errors if e["type"] == "extra_forbidden"}
    errors = [e for e in errors
              if not (e["type"] == "missing" and _clean_loc(e["loc"])[:-1] in misspelt)]  # fmt: skip
    problems = []
    for order, error in enumerate(errors):
        loc = _clean_loc(error["loc"])
        problem = ArchcalcError(
            _message(error, data, loc), path=format_path(loc) or None, file=file
        )
        item = _item_at(data, loc)
        if item is not None:
            problem.at(line=(lines or {}).get(id(item)), name=_name_of(item))
        problems.append((problem.line if problem.line is not None else 10**9, order, problem))
    problems.sort(key=lambda entry: entry[:2])
    first = problems[0][2]
    first.others = [problem for _, _, problem in problems[1:]]
    return first


def _message(error: dict, data: Any, loc: tuple) -> str:
    kind, field = error["type"], (loc[-1] if loc else None)
    owner = _layer_type_at(data, loc[:-1])
    if kind == "extra_forbidden":
        allowed = _allowed_fields(owner) if owner else (_TOP_LEVEL if len(loc) == 1 else [])
        message = f"unknown field {field!r}" + (f" for {owner}" if owner else "")
        message += suggest(str(field), allowed)
        if allowed:
            message += "; expected one of: " + ", ".join(allowed)
        return message
    if kind == "missing":
        return f"missing required field {field!r}" + (f" for {owner}" if owner else "")
    if kind == "missing_type":
        return error["msg"]
    if kind == "list_type":
        expected = "a list of sizes, channels first ([C], [C, L], [C, H, W] or [C, D, H, W])" if loc == (
            "input",) else "a list"  # fmt: skip
        return f"expected {expected}. Received: {field}={_short_repr(error.get('input'))}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping of fields. Received: {_short_repr(error.get('input'))}"
    if error["loc"] and error["loc"][-1] == "[key]":
        return (f"invalid name {_short_repr(error.get('input'))}: a name starts with a letter and "
                "holds letters, digits and _")  # fmt: skip
    plain = _PLAIN.get(kind)
    if plain is not None:
        received = (
            f". Received: {field}={_short_repr(error.get('input'))}"
            if isinstance(field, str)
            else ""
        )
        ctx = error.get("ctx") or {}
        return plain.format(**ctx) + received
    message = error["msg"].removeprefix("Value error, ")
    if kind == "literal_error":
        message = "expected one of " + error.get("ctx", {}).get("expected", "")
    if isinstance(field, str) and "input" in error and "Received:" not in message:
        message += f". Received: {field}={_short_repr(error['input'])}"
    if kind == "literal_error" and isinstance(error.get("input"), str):
        expected = error.get("ctx", {}).get("expected", "")
        choices = [c.strip(" '") for c in expected.replace(" or ", ", ").split(",")]
        message += suggest(error["input"], choices)
    return message


#: pydantic's error types in archcalc's words.
_PLAIN = {
    "string_type": "expected text",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "too_short": "expected at least {min_length} item(s)",
    "too_long": "expected at most {max_length} item(s)",
    "greater_than_equal": "expected a value >= {ge}",
    "less_than_equal": "expected a value <= {le}",
    "greater_than": "expected a value > {gt}",
    "string_pattern_mismatch": "expected a name: a letter, then letters, digits and _",
}


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TOP_LEVEL = [name for name in Spec.model_fields]
_MODEL_NAMES = frozenset(
    {"Approx", "LayerExpect", "OutputExpect", "SpecExpect", "Block", "SpecSource"}
)
_PATH_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


def _parse_path(path: str) -> tuple:
    """``'layers[3].body[0].stride'`` -> ``('layers', 3, 'body', 0, 'stride')``."""
    return tuple(int(index) if index else key for index, key in _PATH_PART.findall(path))


def _item_at(data: Any, loc: tuple) -> dict | None:
    """The innermost layer item (a mapping with a ``type``) on the way to ``loc``."""
    node, item = data, None
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and "type" in node:
            item = node
    return item


def _name_of(item: dict) -> str | None:
    name = item.get("name")
    return name if isinstance(name, str) else None


def _clean_loc(loc: tuple) -> tuple:
    """Drop what pydantic inserts into a location beside the user's keys: union tags after a
    list index, a union member's label (``function-plain[validate()]``, ``Approx``, ``int``),
    and ``[key]`` for a mapping's key."""
    cleaned: list = []
    for item in loc:
        if isinstance(item, str) and (
            (item in UNION_TAGS and cleaned and isinstance(cleaned[-1], int))
            or _union_member(item) is not None
            or item == "[key]"
        ):
            continue
        cleaned.append(item)
    return tuple(cleaned)


_MEMBER_LABEL = re.compile(r"^(function-\w+\[.*\]|int|str|float|bool|list\[.*\]|dict\[.*\]|none)$")


def _union_member(item: Any) -> str | None:
    """'model' or 'value' for a label pydantic gives a union member in a location, else None."""
    if not isinstance(item, str):
        return None
    if item in _MODEL_NAMES:
        return "model"
    if _MEMBER_LABEL.match(item):
        return "value"
    return None


def _relevant(errors: list[dict], data: Any) -> list[dict]:
    """Of a union's errors keep the member the user meant: the model where a mapping was given
    (an ``approx:`` figure), the plain value otherwise."""
    kept = []
    for error in errors:
        loc = error["loc"]
        member = next(((i, _union_member(x)) for i, x in enumerate(loc) if _union_member(x)), None)
        if member is None:
            kept.append(error)
            continue
        given = _value_at(data, _clean_loc(loc[: member[0]]))
        if (member[1] == "model") == isinstance(given, dict):
            kept.append(error)
    return kept or errors


def _value_at(data: Any, loc: tuple) -> Any:
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def format_path(loc: tuple) -> str:
    """``('layers', 3, 'stride')`` -> ``'layers[3].stride'``.

    >>> format_path(("layers", 4, "body", 2))
    'layers[4].body[2]'
    """
    text = ""
    for item in loc:
        text += f"[{item}]" if isinstance(item, int) else (f".{item}" if text else str(item))
    return text


def _layer_type_at(data: Any, loc: tuple) -> str | None:
    """The layer type named at ``loc``, if that is a layer (not the spec itself) whose type
    reads as a name: a stray ``type: "\\n"`` must not break the one-line message."""
    node = _value_at(data, loc) if loc else None
    kind = node.get("type") if isinstance(node, dict) else None
    return kind if isinstance(kind, str) and _TYPE_NAME.fullmatch(kind) else None


_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,99}")


def _allowed_fields(layer_type: str | None) -> list[str]:
    cls = BUILTIN_TYPES.get(layer_type or "")
    return [name for name in cls.model_fields if name != "type"] if cls else []
