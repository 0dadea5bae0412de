"""Reading specs: files, YAML/JSON text or dicts -> a validated :class:`Spec`.

Everything that can go wrong with untrusted input is stopped here with a
one-line :class:`ArchcalcError`: unreadable files, malformed YAML or JSON,
YAML alias bombs and self-referencing aliases, documents nested absurdly
deep, and every schema violation (with the spec path of the culprit).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from archcalc.errors import ArchcalcError
from archcalc.language.spec import BUILTIN_TYPES, UNION_TAGS, Spec, suggest

MAX_FILE_BYTES = 5_000_000
#: Nodes of the document with every YAML alias expanded (a 10,000-layer chain has ~40,000).
MAX_DOCUMENT_NODES = 2_000_000
MAX_DOCUMENT_DEPTH = 100
_SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def load_spec(source: Any, *, file: str | None = None) -> Spec:
    """Load and validate a spec from a path, YAML/JSON text, a dict, or a Spec.

    >>> spec = load_spec("{name: tiny, input: [4], layers: [{type: linear, out_features: 2}]}")
    >>> spec.layers[0].out_features
    2
    """
    if isinstance(source, Spec):
        return source
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and "\n" not in source and source.strip().endswith(_SPEC_SUFFIXES)
    ):
        file = file or str(source)
        data = parse_document(_read(Path(source)), file, is_json=str(source).endswith(".json"))
    elif isinstance(source, str):
        data = parse_document(source, file, is_json=source.lstrip().startswith('{"'))
    elif isinstance(source, dict):
        data = source
    else:
        raise ArchcalcError(
            f"expected a path, YAML/JSON text or a dict. Received: {type(source).__name__}",
            file=file,
        )
    return validate(data, file)


def _read(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ArchcalcError(f"file is too large ({size:,} bytes, at most {MAX_FILE_BYTES:,})")
        return path.read_text(encoding="utf-8")
    except ArchcalcError as err:
        raise err.at(file=str(path)) from None
    except UnicodeDecodeError:
        raise ArchcalcError("cannot read file: not UTF-8 text", file=str(path)) from None
    except OSError as err:
        raise ArchcalcError(f"cannot read file: {err.strerror or err}", file=str(path)) from None


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML (libyaml when available) that rejects duplicate keys."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int)) and key in seen:
                mark = key_node.start_mark
                raise ArchcalcError(
                    f"line {mark.line + 1}, column {mark.column + 1}: duplicate key {key!r}"
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def parse_document(text: str, file: str | None = None, *, is_json: bool = False) -> Any:
    """Parse YAML (or JSON) text into plain Python data, or raise ArchcalcError."""
    try:
        if is_json:
            data = json.loads(text, object_pairs_hook=_no_duplicates)
        else:
            data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except ArchcalcError as err:
        raise err.at(file=file) from None
    except json.JSONDecodeError as err:
        raise ArchcalcError(
            f"line {err.lineno}, column {err.colno}: invalid JSON: {err.msg}", file=file
        ) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = err.problem or err.context or "syntax error"
        raise ArchcalcError(f"{where}invalid YAML: {problem}", file=file) from None
    except yaml.YAMLError as err:
        raise ArchcalcError(f"invalid YAML: {str(err).splitlines()[0]}", file=file) from None
    except (RecursionError, MemoryError):
        raise ArchcalcError("document is nested too deeply to read", file=file) from None
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise ArchcalcError(f"duplicate key {key!r}")
        result[key] = value
    return result


def check_document(data: Any, file: str | None = None) -> None:
    """Reject documents that are not a mapping, self-referencing, too deep or too large.

    Sizes count YAML aliases expanded, in time linear in the distinct nodes,
    so a "billion laughs" document is refused before anything walks it.
    """
    if not isinstance(data, dict):
        found = "an empty document" if data is None else f"a {type(data).__name__}"
        raise ArchcalcError(
            f"expected a mapping with name, input and layers at the top level; found {found}",
            file=file,
        )
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any, depth: int) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ArchcalcError("document refers to itself (a recursive YAML alias)", file=file)
        if depth > MAX_DOCUMENT_DEPTH:
            raise ArchcalcError(
                f"document is nested more than {MAX_DOCUMENT_DEPTH} levels deep", file=file
            )
        active.add(key)
        children = node.values() if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_DOCUMENT_NODES:
                raise ArchcalcError(
                    f"document expands to more than {MAX_DOCUMENT_NODES:,} nodes "
                    "(YAML aliases expanded); refusing to process it",
                    file=file,
                )
        active.discard(key)
        sizes[key] = total
        return total

    size(data, 0)


def validate(data: Any, file: str | None = None) -> Spec:
    """Validate plain data as a Spec; schema errors become one-line ArchcalcErrors."""
    check_document(data, file)
    try:
        return Spec.model_validate(data)
    except ArchcalcError as err:
        raise err.at(file=file) from None
    except ValidationError as err:
        raise validation_error(err, data, file) from None


def validation_error(err: ValidationError, data: Any, file: str | None) -> ArchcalcError:
    """The first pydantic error as an ArchcalcError with a spec path."""
    errors = err.errors(include_url=False)
    # A misspelt field shows up as "unknown" plus "missing": the unknown one says more.
    errors.sort(key=lambda error: error["type"] != "extra_forbidden")
    first = errors[0]
    loc = _clean_loc(first["loc"])
    path = format_path(loc) or None
    kind, field = first["type"], (loc[-1] if loc else None)
    owner = _layer_type_at(data, loc[:-1])
    if kind == "extra_forbidden":
        allowed = _allowed_fields(owner)
        message = f"unknown field {field!r}" + (f" for {owner}" if owner else "")
        message += suggest(str(field), allowed)
        if allowed:
            message += "; expected one of: " + ", ".join(allowed)
    elif kind == "missing":
        message = f"missing required field {field!r}" + (f" for {owner}" if owner else "")
    elif kind == "missing_type":
        message = first["msg"]
    else:
        message = first["msg"].removeprefix("Value error, ")
        if isinstance(field, str) and "input" in first and "Received:" not in message:
            received = repr(first["input"])
            received = received if len(received) <= 60 else received[:57] + "..."
            message += f". Received: {field}={received}"
        if kind == "literal_error" and isinstance(first.get("input"), str):
            expected = first.get("ctx", {}).get("expected", "")
            choices = [c.strip(" '") for c in expected.replace(" or ", ", ").split(",")]
            message += suggest(first["input"], choices)
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ArchcalcError(message, path=path, file=file)


def _clean_loc(loc: tuple) -> tuple:
    """Drop the union-tag entries pydantic inserts after a list index."""
    cleaned: list = []
    for item in loc:
        if (
            isinstance(item, str)
            and item in UNION_TAGS
            and cleaned
            and isinstance(cleaned[-1], int)
        ):
            continue
        cleaned.append(item)
    return tuple(cleaned)


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
    node = data
    for item in loc:
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            return None
    kind = node.get("type") if isinstance(node, dict) else None
    return kind if isinstance(kind, str) else None


def _allowed_fields(layer_type: str | None) -> list[str]:
    cls = BUILTIN_TYPES.get(layer_type or "")
    return [name for name in cls.model_fields if name != "type"] if cls else []
