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
from typing import TYPE_CHECKING, Any

import yaml

from archcalc import collector
from archcalc.errors import ArchcalcError
from archcalc.language import fast
from archcalc.language.values import is_spec
from archcalc.language.yaml_events import read_events

if TYPE_CHECKING:
    from archcalc.language.spec import Spec

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
    if is_spec(source):
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
    return validate(data, file, lines, checked=not isinstance(source, dict))


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
        try:
            data = super().construct_object(node, deep)
        except (ValueError, OverflowError) as err:  # 2026-13-45 looks like a date, is not one
            if not isinstance(node, yaml.ScalarNode):
                raise
            mark = node.start_mark
            raise ArchcalcError(
                f"line {mark.line + 1}, column {mark.column + 1}: invalid YAML: cannot read "
                f"{node.value!r} as {node.tag.rsplit(':', 1)[-1]} ({err})"
            ) from None
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
    (by id; none for JSON), or raise ArchcalcError. The data has passed
    :func:`check_document` (the usual YAML is checked as it is read)."""
    lines: dict[int, int] = {}
    usual = None
    try:
        if is_json:
            data = json.loads(text, object_pairs_hook=_no_duplicates)
        elif (usual := _usual(text)) is not None:
            data, lines = usual
        else:  # anchors, tags, merge keys, errors: PyYAML's constructor
            loader = _Loader(text)
            try:
                with collector.paused():
                    data = loader.get_single_data()
                lines = loader.lines
            finally:
                loader.dispose()
        if usual is None:
            check_document(data, file)
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


def _usual(text: str) -> tuple[Any, dict] | None:
    with collector.paused():  # every object read survives: see archcalc.collector
        return read_events(text, MAX_DOCUMENT_DEPTH, MAX_DOCUMENT_NODES)


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


def validate(data: Any, file: str | None = None, lines: dict[int, int] | None = None, *,
             checked: bool = False) -> Spec:  # fmt: skip
    """Validate plain data as a Spec; schema errors become ArchcalcErrors (all of them, in
    spec order, each with its path, and the YAML line and layer name where known).

    The fast reader answers for the usual document; where it is not sure (an error, a value
    pydantic would coerce), the pydantic models decide and say what is wrong. ``checked``:
    the data came from :func:`parse_document`, which checked its size and depth."""
    if not checked:
        check_document(data, file)
    lines = lines or {}
    with collector.paused():
        spec = fast.read(data)
        if spec is None:
            from archcalc.language.validation import validate_with_pydantic

            spec = validate_with_pydantic(data, file, lines)
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
            line = lines.get(id(raw))
            if line is not None:
                found[id(item)] = line
            if len(raw) == 1:
                continue  # {type: relu}: nothing inside
            for key in ("layers", "body", "shortcut"):
                inner = raw.get(key)
                if inner is not None:
                    walk(inner, item.__dict__.get(key))
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
