"""The line of the field an error names, where an item is written one key per line.

Errors carry the line of their layer item (the ``- name: conv1`` line), which is all the
elaboration keeps. When the item spans several lines and the error names one of its fields
(``layers[0].stride``), the field's own line is more useful. It is found only when an error is
reported: the file is read again and composed (not constructed) by PyYAML, and the item's
mapping, the one that starts on the error's line, is asked for the key.
"""

from __future__ import annotations

import re
from pathlib import Path

from archcalc.errors import ArchcalcError

_FIELD = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)(?:\[\d+\])*$")


def refine(err: ArchcalcError) -> ArchcalcError:
    """Move each problem's line to its field's key where the field is on a line of its own;
    returns ``err``. Never raises: a file that cannot be read again keeps the item's line.

    >>> import tempfile, os
    >>> text = "name: n\\ninput: [3, 8, 8]\\nlayers:\\n  - name: c\\n    type: conv2d\\n    stride: 0\\n"
    >>> with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    ...     _ = f.write(text)
    >>> refine(ArchcalcError("m", path="layers[0].stride", file=f.name, line=4)).line
    6
    >>> os.unlink(f.name)
    """
    documents: dict[str, object] = {}
    for problem in (err, *err.others):
        try:
            _refine(problem, documents)
        except Exception:  # noqa: BLE001 (a best effort on an error path: keep the item's line)
            continue
    return err


def _refine(problem: ArchcalcError, documents: dict[str, object]) -> None:
    if not (problem.file and problem.line and problem.path):
        return
    found = _FIELD.search(problem.path)
    if found is None or not problem.file.endswith((".yaml", ".yml")):
        return
    if problem.file not in documents:
        import yaml

        text = Path(problem.file).read_text(encoding="utf-8")
        documents[problem.file] = yaml.compose(text, Loader=yaml.SafeLoader)
    line = _key_line(documents[problem.file], problem.line, found.group(1))
    if line is not None:
        problem.line = line


def _key_line(root: object, line: int, field: str) -> int | None:
    """The line of ``field``'s key in the first mapping that starts on ``line`` and has it."""
    import yaml

    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            if node.start_mark.line + 1 == line:
                for key, _ in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == field:
                        return key.start_mark.line + 1
            stack.extend(value for pair in reversed(node.value) for value in reversed(pair))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    return None
