"""Reading specs: files, YAML/JSON text or dicts -> a validated :class:`Spec`.

Everything that can go wrong with untrusted input is stopped here with a
one-line :class:`ArchcalcError`: unreadable files, malformed YAML or JSON,
YAML alias bombs and self-referencing aliases, documents nested absurdly
deep, and every schema violation (with the spec path of the culprit).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from archcalc import collector
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
        data, lines = parse_document(
            _read(Path(source)), file, is_json=str(source).endswith(".json")
        )
    elif isinstance(source, str):
        data, lines = parse_document(source, file, is_json=source.lstrip().startswith('{"'))
    elif isinstance(source, dict):
        data, lines = source, {}
    else:
        raise ArchcalcError(
            f"expected a path, YAML/JSON text or a dict. Received: {type(source).__name__}",
            file=file,
        )
    return validate(data, file, lines)


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
    """Safe YAML (libyaml when available) that rejects duplicate keys and remembers the line
    of every mapping (``lines``: id of the dict -> 1-based line), for messages that say where."""

    def __init__(self, stream):
        super().__init__(stream)
        self.lines: dict[int, int] = {}

    def construct_object(self, node, deep=False):
        data = super().construct_object(node, deep)
        if isinstance(node, yaml.MappingNode):
            self.lines[id(data)] = node.start_mark.line + 1
        return data

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


def parse_document(
    text: str, file: str | None = None, *, is_json: bool = False
) -> tuple[Any, dict]:
    """Parse YAML (or JSON) text into plain Python data and the line of each YAML mapping
    (by id; none for JSON), or raise ArchcalcError."""
    lines: dict[int, int] = {}
    try:
        if is_json:
            data = json.loads(text, object_pairs_hook=_no_duplicates)
        else:
            loader = _Loader(text)
            try:
                with collector.paused():  # PyYAML's objects all survive: see archcalc.collector
                    data = loader.get_single_data()
                lines = loader.lines
            finally:
                loader.dispose()
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
        if mark and _tab_at(text, mark):
            problem += " (a tab: YAML indents with spaces)"
        raise ArchcalcError(f"{where}invalid YAML: {problem}", file=file) from None
    except yaml.YAMLError as err:
        raise ArchcalcError(f"invalid YAML: {str(err).splitlines()[0]}", file=file) from None
    except (RecursionError, MemoryError):
        raise ArchcalcError("document is nested too deeply to read", file=file) from None
    return data, lines


def _tab_at(text: str, mark) -> bool:
    line = text.splitlines()[mark.line] if mark.line < len(text.splitlines()) else ""
    return "\t" in line[: mark.column + 1]


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


def validate(data: Any, file: str | None = None, lines: dict[int, int] | None = None) -> Spec:
    """Validate plain data as a Spec; schema errors become ArchcalcErrors (all of them, in
    spec order, each with its path, and the YAML line and layer name where known)."""
    check_document(data, file)
    lines = lines or {}
    try:
        with collector.paused():
            spec = Spec.model_validate(data)
    except ArchcalcError as err:
        item = _item_at(data, _parse_path(err.path or ""))
        if item is not None:
            err.at(line=lines.get(id(item)), name=_name_of(item))
        raise err.at(file=file) from None
    except ValidationError as err:
        raise validation_error(err, data, file, lines) from None
    if lines:
        spec._lines.update(item_lines(data, spec, lines))
    return spec


def item_lines(data: dict, spec: Spec, lines: dict[int, int]) -> dict[int, int]:
    """id of each validated layer item -> the line where it is written (data and spec walked
    side by side: top-level layers, blocks, and composites' bodies, shortcuts, branches)."""
    found: dict[int, int] = {}

    def walk(raw_items: Any, items: Any) -> None:
        if not isinstance(raw_items, list) or not isinstance(items, (list, tuple)):
            return
        for raw, item in zip(raw_items, items):
            if not isinstance(raw, dict):
                continue
            if id(raw) in lines:
                found[id(item)] = lines[id(raw)]
            for key in ("layers", "body", "shortcut"):
                walk(raw.get(key), item.__dict__.get(key))
            branches = item.__dict__.get("branches")
            if isinstance(raw.get("branches"), list) and branches:
                for raw_branch, branch in zip(raw["branches"], branches):
                    walk(raw_branch, branch)

    walk(data.get("layers"), spec.layers)
    raw_blocks = data.get("blocks") if isinstance(data.get("blocks"), dict) else {}
    for name, block in spec.blocks.items():
        raw = raw_blocks.get(name)
        if isinstance(raw, dict):
            walk(raw.get("layers"), block.layers)
    return found


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
