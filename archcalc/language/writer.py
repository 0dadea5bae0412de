"""Writing a spec (plain data) as YAML a person can read: one line per layer item.

Mappings of scalars are written in flow style (``{name: conv1, type: conv2d, ...}``);
nested layer lists (residual bodies, branches, blocks) are indented; keys keep
their order. Only plain data is written (the safe loader reads it back as is).

>>> print(to_yaml({"name": "net", "input": [3, 8, 8], "layers": [{"type": "relu"}]}), end="")
name: net
input: [3, 8, 8]
layers:
  - {type: relu}
"""

from __future__ import annotations

import json
import re
from typing import Any

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def scalar(value: Any) -> str:
    """A YAML scalar: plain where safe, else JSON-quoted (valid YAML)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text)


def _flow(value: Any) -> str | None:
    """A flow-style rendering if ``value`` holds no layer lists, else None."""
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            inner = _flow(v)
            if inner is None:
                return None
            parts.append(f"{scalar(k)}: {inner}")
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, (list, tuple)):
        if any(isinstance(v, dict) and ("type" in v) for v in value):
            return None
        inner = [_flow(v) for v in value]
        if any(i is None for i in inner):
            return None
        return "[" + ", ".join(inner) + "]"
    return scalar(value)


def _block(key: str, value: Any, indent: int) -> list[str]:
    pad = " " * indent
    flow = _flow(value)
    if flow is not None and len(flow) + indent + len(key) < 200:
        return [f"{pad}{scalar(key)}: {flow}"]
    if isinstance(value, dict):
        lines = [f"{pad}{scalar(key)}:"]
        for k, v in value.items():
            lines += _block(k, v, indent + 2)
        return lines
    lines = [f"{pad}{scalar(key)}:"]
    for item in value:
        lines += _item(item, indent + 2)
    return lines


def _item(item: Any, indent: int) -> list[str]:
    pad = " " * indent
    flow = _flow(item)
    if flow is not None:
        return [f"{pad}- {flow}"]
    if isinstance(item, list):  # a branch: a list of layers
        lines = [f"{pad}-"]
        for sub in item:
            lines += _item(sub, indent + 2)
        return lines
    keys = list(item)
    lines = []
    for i, k in enumerate(keys):
        sub = _block(k, item[k], indent + 2)
        sub[0] = (f"{pad}- " if i == 0 else f"{pad}  ") + sub[0].lstrip()
        lines += sub
    return lines


def to_yaml(spec: dict[str, Any]) -> str:
    """The spec as YAML text: top-level keys in order, layer items one per line."""
    lines: list[str] = []
    for key, value in spec.items():
        if key == "description" and isinstance(value, str):
            lines.append("description: >")
            lines += [f"  {line}" for line in _wrap(value)]
            continue
        lines += _block(key, value, 0)
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int = 88) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines
