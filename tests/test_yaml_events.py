"""The event reader (archcalc.language.yaml_events) against PyYAML's safe constructor.

The event reader either gives exactly what the standard path gives (the same data, with
the same types, and the same line for every mapping) or declines, and the standard path
decides. Checked on every shipped spec, on scalars of every YAML 1.1 kind, and on
random documents.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from archcalc.errors import ArchcalcError
from archcalc.language.loader import _Loader, parse_document
from archcalc.language.yaml_events import read_events

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(ROOT.glob("specs/**/*.yaml")) + sorted((ROOT / "examples").glob("**/*.yaml"))


def standard(text: str) -> tuple:
    loader = _Loader(text)
    try:
        return loader.get_single_data(), loader.lines
    finally:
        loader.dispose()


def typed(value):
    """The value with every scalar's type made visible (True == 1 == 1.0 otherwise)."""
    if isinstance(value, dict):
        return [(typed(k), typed(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def mapping_lines(data, lines: dict[int, int], path: str = "") -> list[tuple[str, int]]:
    """(path, line) of every mapping, walking the data (lines are keyed by object id)."""
    found = []
    if isinstance(data, dict):
        found.append((path, lines.get(id(data))))
        for key, value in data.items():
            found += mapping_lines(value, lines, f"{path}.{key}")
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += mapping_lines(value, lines, f"{path}[{i}]")
    return found


def same_as_standard(text: str) -> None:
    fast = read_events(text)
    if fast is None:
        return
    data, lines = standard(text)
    assert typed(fast[0]) == typed(data)
    assert mapping_lines(fast[0], fast[1]) == mapping_lines(data, lines)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_spec_reads_the_same(path):
    text = path.read_text()
    assert read_events(text) is not None, "a shipped spec should need no anchors or tags"
    same_as_standard(text)


SCALARS = ["1", "-0", "+5", "0x1f", "017", "0o17", "0b101", "1_000", "1:20", "1e3", "1.5e+3",
           ".inf", "-.Inf", ".nan", "1.", "yes", "No", "ON", "off", "true", "False", "y", "~",
           "null", "", "2026-01-01", "2026-01-01 10:00:00", "conv2d", "'3'", '"yes"',
           "make_divisible(c // 4, 8)", "C_in", "[1, 2]", "{a: 1}"]  # fmt: skip


@pytest.mark.parametrize("scalar", SCALARS)
def test_plain_and_quoted_scalars_mean_what_they_mean_to_pyyaml(scalar):
    text = f"a: {scalar}\nb:\n  - {scalar}\n  - {scalar}\n"
    assert read_events(text) is not None
    same_as_standard(text)


@pytest.mark.parametrize("text", [
    "a: &x 1\nb: *x\n",  # anchors and aliases
    "a: !!str 5\n",  # explicit tags
    "base: &b {x: 1}\nc: {<<: *b, y: 2}\n",  # merge keys
    "a: 1\na: 2\n",  # a duplicate key: the standard path reports it (or a syntax error first)
    "? [1, 2]\n: 3\n",  # a collection as a key
    "a: 2026-13-45\n",  # looks like a date, is not one
    "- 1\n- 2\n",  # not a mapping
    "",  # empty
    "a: 1\n---\nb: 2\n",  # two documents
])  # fmt: skip
def test_anything_unusual_is_left_to_the_standard_path(text):
    assert read_events(text) is None


def test_errors_are_the_standard_paths():
    with pytest.raises(ArchcalcError, match=r"line 2, column 1: duplicate key 'a'"):
        parse_document("a: 1\na: 2\n")
    with pytest.raises(ArchcalcError, match=r"line 1, column 4: invalid YAML: cannot read "
                       r"'2026-13-45' as timestamp \(month must be in 1..12\)"):  # fmt: skip
        parse_document("a: 2026-13-45\n")
    with pytest.raises(ArchcalcError, match=r"line 3, column 1: invalid YAML"):
        parse_document("a: 1\nb: [1, 2\n")


_scalar = st.sampled_from(SCALARS[:-2] + ["x", "relu", "3", "64"])
_documents = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["a", "b", "type", "layers", "1", "yes"]), inner, max_size=4
        )
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["name", "input", "layers", "k"]), _documents,
                       min_size=1), st.booleans())  # fmt: skip
def test_random_documents_read_the_same(document, flow):
    text = yaml.safe_dump(document, default_flow_style=flow, sort_keys=False)
    text = yaml.safe_dump(yaml.safe_load(text), default_flow_style=flow, sort_keys=False)
    same_as_standard(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab:-[]{},'\"&*!#|>? \n0123456789", max_size=40))
def test_random_text_reads_the_same_or_fails_the_same(text):
    """Any text: the event reader agrees with the standard path, or declines; and where the
    standard path raises a YAML error, the event reader raises it too (or declines)."""
    try:
        expected = standard(text)
    except yaml.YAMLError as err:
        try:
            fast = read_events(text)
        except yaml.YAMLError as mine:
            assert str(mine) == str(err)
        else:
            assert fast is None
        return
    except (ValueError, OverflowError, TypeError, ArchcalcError):
        assert read_events(text) is None
        return
    fast = read_events(text)
    if fast is not None:
        assert typed(fast[0]) == typed(expected[0])


def nested(depth: int) -> str:
    """A document whose innermost list sits ``depth`` containers below the top mapping."""
    return "a: " + "[" * depth + "1" + "]" * depth + "\n"


@pytest.mark.parametrize("limit", [5, 100])
def test_the_limits_are_checked_as_the_events_are_read(limit):
    """The event reader refuses what the loader's document check would refuse (and leaves
    the error to it), so the check need not walk what the event reader returns."""
    assert read_events(nested(limit), max_depth=limit) is not None
    assert read_events(nested(limit + 1), max_depth=limit) is None
    # a: [1, 2, 3] is 5 nodes as the loader counts them (the mapping, the list, 3 items)
    assert read_events("a: [1, 2, 3]", max_nodes=5) is not None
    assert read_events("a: [1, 2, 3]", max_nodes=4) is None


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.sampled_from([1, "x", None]),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3)
        ),
        max_leaves=30,
    )
)
def test_the_event_readers_size_is_the_loaders(document):
    """The event reader declines exactly where the loader's document check refuses, so the
    check may be skipped for what the event reader returns."""
    from unittest import mock

    from archcalc.language import loader

    text = yaml.safe_dump({"a": document})
    data = read_events(text)[0]

    def refused(limit: int) -> bool:
        with mock.patch.object(loader, "MAX_DOCUMENT_NODES", limit):
            try:
                loader.check_document(data)
            except ArchcalcError:
                return True
        return False

    size = next(limit for limit in range(1, 1000) if not refused(limit))
    assert read_events(text, max_nodes=size) is not None
    assert read_events(text, max_nodes=size - 1) is None


def test_a_document_over_the_limits_gets_the_loaders_error():
    assert parse_document(nested(100))[0]["a"] is not None
    with pytest.raises(ArchcalcError, match="nested more than 100 levels deep"):
        parse_document(nested(101))
