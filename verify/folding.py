"""Fold an imported module's flat item list into blocks, one per repeated submodule.

Every submodule of the user's own classes (a torchvision Bottleneck, a ViT encoder
layer, an MBConv) whose items form one contiguous run that reads one outside tensor
and is read only through its last item becomes a block call; its items, named
relative to it, become the block's layers (reading the block's ``input``).
Submodules whose items are the same become one block used many times; the
submodules inside are folded first, so blocks nest like the modules do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archcalc.errors import ArchcalcError
from archcalc.language.writer import to_yaml


@dataclass
class Item:
    """An imported item before folding: full names, explicit inputs, its module scopes."""

    data: dict[str, Any]  # the spec item (name, type, fields); input(s) added when written
    inputs: list[str]  # names of the tensors it reads, always explicit
    scopes: tuple[str, ...]  # paths of the user modules it sits in, outermost first
    calls: tuple[str, ...] = ()  # which call of each (a module called twice: two runs)
    module: str | None = None  # the module path it was traced from, if any


@dataclass
class Folded:
    layers: list[dict[str, Any]]
    blocks: dict[str, dict[str, Any]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # a folded tensor -> its block call

    def renamed(self, name: str) -> str:
        """What a tensor is called at the top level after folding."""
        seen = {name}
        while name in self.names:
            name = self.names[name]
            if name in seen:  # a folding defect: say so, never hang
                raise ArchcalcError(
                    f"archcalc import could not name tensor {name!r} (a cycle "
                    "in folding modules into blocks; import with --flat)"
                )
            seen.add(name)
        return name


def fold(items: list[Item], classes: dict[str, str]) -> Folded:
    """Blocks for the user modules (``classes``: module path -> class name)."""
    folder = _Folder(classes)
    folder.named.update(item.data["name"] for item in items)
    layers = folder.sequence(items, "", "input")
    blocks = parameterise(folder.blocks, layers)
    return Folded(layers, blocks, folder.renamed)


def _skeleton(value: Any) -> Any:
    """A body with its numbers blanked: blocks with equal skeletons differ only in numbers."""
    if isinstance(value, dict):
        return {k: (v if k in ("name", "type", "input", "inputs") else _skeleton(v))
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [_skeleton(v) for v in value]
    return "#" if isinstance(value, int) and not isinstance(value, bool) else value


def _numbers(value: Any, where: tuple = ()) -> list[tuple[tuple, int]]:
    """Every number of a body, with where it sits."""
    if isinstance(value, dict):
        return [n for k, v in value.items() if k not in ("name", "type", "input", "inputs")
                for n in _numbers(v, (*where, k))]  # fmt: skip
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in _numbers(v, (*where, i))]
    return [(where, value)] if isinstance(value, int) and not isinstance(value, bool) else []


def _put(value: Any, where: tuple, new: Any) -> Any:
    if not where:
        return new
    head, rest = where[0], where[1:]
    if isinstance(value, dict):
        return {k: (_put(v, rest, new) if k == head else v) for k, v in value.items()}
    return [(_put(v, rest, new) if i == head else v) for i, v in enumerate(value)]


def parameterise(blocks: dict[str, dict], layers: list[dict]) -> dict[str, dict]:
    """Blocks of one class that differ only in numbers become one block with parameters;
    a number that is a whole multiple of a parameter in every call is written as one."""
    groups: dict[str, list[str]] = {}
    for name, block in blocks.items():
        key = block["description"] + to_yaml({"layers": _skeleton(block["layers"])})
        groups.setdefault(key, []).append(name)
    calls: dict[str, tuple[str, dict[str, Any]]] = {}  # old block -> new block, call fields
    result: dict[str, dict] = {}
    for names in groups.values():
        keep = names[0]
        if len(names) == 1:
            result[keep] = blocks[keep]
            continue
        tables = [_numbers(blocks[n]["layers"]) for n in names]
        body = blocks[keep]["layers"]
        params: list[tuple[str, list[int]]] = []
        for k, (where, _) in enumerate(tables[0]):
            column = [table[k][1] for table in tables]
            if len(set(column)) == 1:
                continue
            text = None
            for pname, base in params:
                if all(b and v % b == 0 for v, b in zip(column, base)):
                    ratios = {v // b for v, b in zip(column, base)}
                    if len(ratios) == 1:
                        r = ratios.pop()
                        text = pname if r == 1 else f"{r}*{pname}"
                        break
            if text is None:
                field = str(where[-1]) if not isinstance(where[-1], int) else str(where[-2])
                pname, n = field, 2
                while any(pname == p for p, _ in params):
                    pname, n = f"{field}{n}", n + 1
                params.append((pname, column))
                text = pname
            body = _put(body, where, text)
        result[keep] = {"description": blocks[keep]["description"],
                        "params": [p for p, _ in params], "layers": body}  # fmt: skip
        for i, name in enumerate(names):
            calls[name] = (keep, {p: column[i] for p, column in params})
    _rewrite_calls(layers, calls)
    for block in result.values():
        _rewrite_calls(block["layers"], calls)
    return result


def _rewrite_calls(layers: list[dict], calls: dict[str, tuple[str, dict]]) -> None:
    for item in layers:
        if item.get("type") in calls:
            new, fields = calls[item["type"]]
            item["type"] = new
            item.update(fields)


class _Folder:
    def __init__(self, classes: dict[str, str]):
        self.classes = classes
        self.blocks: dict[str, dict[str, Any]] = {}
        self.signatures: dict[str, str] = {}  # body YAML -> block name
        self.renamed: dict[str, str] = {}  # a folded run's last tensor -> the block call
        self.local: dict[str, str] = {}  # a traced name inside a block -> its local name
        self.named: set[str] = set()  # the names of module calls (and of every item)

    def sequence(self, items: list[Item], prefix: str, block_input: str) -> list[dict[str, Any]]:
        """The items of one scope as layers: child scopes folded into block calls."""
        if prefix:  # traced names (add_3, layer1_0_relu_1) become local ones (add, relu_2)
            self.name_locally(items, prefix)
        out: list[dict[str, Any]] = []
        previous = block_input
        i = 0
        while i < len(items):
            scope = _child_scope(items[i].scopes, prefix)
            call = _call(items[i], scope)
            j = i + 1
            while (
                scope is not None
                and j < len(items)
                and _child_scope(items[j].scopes, prefix) == scope
                and _call(items[j], scope) == call  # a module called twice: two runs
            ):
                j += 1
            run = items[i:j]
            if scope is not None and j == i + 1:
                # a module of one operation (an exported Reshape) reads best as that item,
                # named as the module is
                item, name = items[i], self.call_name(scope, run)
                if item.data["name"] != name:
                    self.renamed[item.data["name"]] = name
                    item = Item({**item.data, "name": name}, item.inputs, item.scopes)
                out.append(self.item(item, prefix, block_input, previous))
                previous, i = name, j
                continue
            made = self.block_call(run, scope, items[j:], prefix) if scope else None
            if made is not None:
                entry, reads = made
                name = self.call_name(scope, run)
                entry["name"] = _relative(name, prefix, block_input)
                reads = self.renamed.get(reads, reads)
                if reads != previous:
                    entry["input"] = _relative(reads, prefix, block_input, self.local)
                out.append(entry)
                if run[-1].data["name"] != name:
                    self.renamed[run[-1].data["name"]] = name
                previous = name
                i = j
                continue
            item = items[i]
            out.append(self.item(item, prefix, block_input, previous))
            previous = item.data["name"]
            i += 1
        return out

    def name_locally(self, items: list[Item], prefix: str) -> None:
        """Local names for the items directly in ``prefix``: a module's path below it
        (``conv1``, also in the module's second call), else the type (``add``, ``relu_2``)."""
        taken: set[str] = set()
        direct = [item for item in items if _child_scope(item.scopes, prefix) is None]
        for item in direct:
            name = item.data["name"]
            origin = name if name.startswith(prefix + ".") else item.module or ""
            local = origin[len(prefix) + 1 :] if origin.startswith(prefix + ".") else None
            if local is not None and local not in taken:
                taken.add(local)
                if local != name[len(prefix) + 1 :]:
                    self.local[name] = local
        for item in direct:
            name = item.data["name"]
            if (
                name in self.local
                or name.startswith(prefix + ".")
                and name[len(prefix) + 1 :] in taken
            ):
                continue
            base, k = item.data["type"], 2
            local = base
            while local in taken:
                local, k = f"{base}_{k}", k + 1
            taken.add(local)
            self.local[name] = local

    def call_name(self, scope: str, run: list[Item]) -> str:
        """The name of a call of the module at ``scope`` (the items of ``run``): its path,
        ``blk_2`` for its second call; never a name another traced item has."""
        own = {item.data["name"] for item in run}
        name, k = scope, 2
        while name in self.named and name not in own:
            name, k = f"{scope}_{k}", k + 1
        self.named.add(name)
        return name

    def item(self, item: Item, prefix: str, block_input: str, previous: str) -> dict[str, Any]:
        data = dict(item.data)
        entry: dict[str, Any] = {"name": _relative(data.pop("name"), prefix, block_input, self.local),
                                 "type": data.pop("type")}  # fmt: skip
        inputs = [self.renamed.get(x, x) for x in item.inputs]
        if len(inputs) == 1 and inputs[0] != previous:
            entry["input"] = _relative(inputs[0], prefix, block_input, self.local)
        elif len(inputs) > 1:
            entry["inputs"] = [_relative(x, prefix, block_input, self.local) for x in inputs]
        entry.update(data)
        return entry

    def block_call(self, run: list[Item], scope: str, rest: list[Item],
                   prefix: str) -> tuple[dict[str, Any], str] | None:  # fmt: skip
        made = {item.data["name"] for item in run}
        outside = {self.renamed.get(x, x) for item in run for x in item.inputs if x not in made}
        if len(outside) != 1:
            return None  # reads several outside tensors (or none): keep it inline
        last = run[-1].data["name"]
        if any(x in made and x != last for item in rest for x in item.inputs):
            return None  # something later reads its insides
        reads = outside.pop()
        if not any(reads in item.inputs or self.renamed.get(x) == reads
                   for item in run for x in item.inputs):  # fmt: skip
            return None
        body = self.sequence(run, scope, reads)
        text = to_yaml({"layers": body})
        name = self.signatures.get(text)
        if name is None:
            base = self.classes.get(scope, "block")
            name, k = base, 2
            while name in self.blocks:
                name, k = f"{base}_{k}", k + 1
            self.signatures[text] = name
            self.blocks[name] = {"description": f"{base} (imported)", "layers": body}
        return {"name": "", "type": name}, reads


def _call(item: Item, scope: str | None) -> str | None:
    """Which call of the module at ``scope`` the item belongs to."""
    if scope is None or not item.calls:
        return scope
    return item.calls[item.scopes.index(scope)]


def _child_scope(scopes: tuple[str, ...], prefix: str) -> str | None:
    """The outermost scope below ``prefix`` (None if the item sits directly in it)."""
    for scope in scopes:
        if scope != prefix and (prefix == "" or scope.startswith(prefix + ".")):
            return scope
    return None


def _relative(name: str, prefix: str, block_input: str, local: dict | None = None) -> str:
    if name == block_input and prefix:
        return "input"
    if prefix and name.startswith(prefix + "."):
        return name[len(prefix) + 1 :]
    return (local or {}).get(name, name) if prefix else name
