"""The fast reader against pydantic: the same items wherever it answers, and no answer
wherever pydantic refuses or would coerce a value."""

from __future__ import annotations

import copy
import importlib.util
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from archcalc.errors import ArchcalcError
from archcalc.language import fast, fastgen
from archcalc.language.loader import load_spec
from archcalc.language.spec import Spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs" / "zoo").glob("*.yaml"))


def difference(a, b, path="spec") -> str | None:
    """Where the fast item ``a`` differs from pydantic's ``b`` (class names, field order,
    values and their types), or None."""
    if hasattr(type(b), "model_fields"):
        if type(a).__name__ != type(b).__name__:
            return f"{path}: {type(a).__name__} vs {type(b).__name__}"
        if list(a.__dict__) != list(b.__dict__):
            return f"{path}: fields {list(a.__dict__)} vs {list(b.__dict__)}"
        for key in b.__dict__:
            found = difference(a.__dict__[key], b.__dict__[key], f"{path}.{key}")
            if found:
                return found
        return difference(a.__pydantic_extra__, b.__pydantic_extra__, f"{path}.<extra>")
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} {a!r} vs {type(b).__name__} {b!r}"
    if isinstance(b, dict):
        if list(a) != list(b):
            return f"{path}: keys {list(a)} vs {list(b)}"
        return next((d for k in b if (d := difference(a[k], b[k], f"{path}[{k!r}]"))), None)
    if isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"{path}: {len(a)} items vs {len(b)}"
        pairs = zip(a, b)
        return next((d for i, (x, y) in enumerate(pairs) if (d := difference(x, y, f"{path}[{i}]"))),
                    None)  # fmt: skip
    if a != b and not (a != a and b != b):  # NaN equals itself here
        return f"{path}: {a!r} vs {b!r}"
    return None


def agree(data) -> str:
    """'same', 'both refuse', 'fast defers' (pydantic accepts: a coercion), or a defect."""
    try:
        expected = Spec.model_validate(copy.deepcopy(data))
    except Exception:  # noqa: BLE001 - ValidationError or ArchcalcError: a refusal either way
        expected = None
    got = fast.read(copy.deepcopy(data))
    if got is None:
        return "both refuse" if expected is None else "fast defers"
    if expected is None:
        return "DEFECT: fast accepts what pydantic refuses"
    found = difference(got, expected)
    return f"DEFECT: {found}" if found else "same"


def test_table_is_generated_from_the_models():
    assert fastgen.TABLE_FILE.read_text(encoding="utf-8") == fastgen.render(
        fastgen.build_table()
    ), "run: python -m archcalc.language.fastgen"


def test_every_rule_of_the_table_is_understood():
    slow = [(name, field) for name, entry in fast.TABLE["models"].items()
            for field, rule, _ in entry["fields"] if "slow" in repr(rule)]  # fmt: skip
    assert slow == []
    assert all(not entry["slow"] for entry in fast.TABLE["models"].values())


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_shipped_specs_read_fast_and_equal(path):
    data = yaml.safe_load(path.read_text())
    assert agree(data) == "same", fast.why_not(data)


def _mutator():
    spec = importlib.util.spec_from_file_location("fuzz", ROOT / "benchmarks" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.mutate


@pytest.mark.parametrize("seed", range(4))
def test_mutated_specs_agree_with_pydantic(seed):
    """The fuzzer's mutations (hostile values, misspelt keys, retyped layers, ...) of the
    shipped specs: never a different answer, never an acceptance pydantic refuses."""
    mutate, rng = _mutator(), random.Random(seed)
    sources = [yaml.safe_load(p.read_text()) for p in SPECS]
    outcomes: dict[str, int] = {}
    for _ in range(150):
        doc = copy.deepcopy(rng.choice(sources))
        for _ in range(rng.randint(1, 3)):
            mutate(doc, rng)
        outcome = agree(doc)
        assert not outcome.startswith("DEFECT"), (outcome, doc)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("same", 0) > 10 and outcomes.get("both refuse", 0) > 10, outcomes


BASE = {"name": "t", "input": [3, 8, 8], "layers": [{"type": "conv2d", "out_channels": 4,
                                                      "kernel_size": 3}]}  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value", "outcome"),
    [
        ("stride", 2, "same"),
        ("stride", [1, 2], "same"),
        ("stride", "S * 2", "both refuse"),  # S not declared: the reference check refuses
        ("bias", False, "same"),
        ("bias", "yes", "fast defers"),  # pydantic reads "yes" as True
        ("bias", 1, "fast defers"),
        ("padding", "same", "same"),
        ("padding", [[1, 0], [0, 1]], "same"),
        ("groups", True, "both refuse"),
        ("out_channels", 0, "both refuse"),
        ("name", "a\n", "same"),  # names are free text
        ("input", "a\n", "both refuse"),  # a tensor name: the pattern has no newline
        ("name", 3, "both refuse"),
        ("kernal_size", 3, "both refuse"),
    ],
)
def test_field_values(field, value, outcome):
    data = copy.deepcopy(BASE)
    data["layers"][0][field] = value
    assert agree(data) == outcome


@pytest.mark.parametrize(
    ("layer", "outcome"),
    [
        ({"type": "leaky_relu", "negative_slope": 0.2}, "same"),
        ({"type": "leaky_relu", "negative_slope": 1}, "same"),  # an int becomes 0.2's type
        ({"type": "leaky_relu", "negative_slope": "2e-1"}, "same"),  # YAML's 2e-1 is a string
        ({"type": "leaky_relu", "negative_slope": "0.2 "}, "fast defers"),
        ({"type": "relu", "negative_slope": 0.2}, "both refuse"),  # an item check
        ({"type": "dropout", "p": 0.5}, "same"),
        ({"type": "flatten", "start_dim": 1.0}, "fast defers"),  # pydantic takes 1.0 as 1
        ({"type": "mean", "dims": (1, 2)}, "fast defers"),  # a tuple, where YAML gives a list
        ({"type": "upsample", "size": 4, "scale_factor": 2}, "both refuse"),
        ({"type": "my_block"}, "both refuse"),  # no such block
    ],
)
def test_layers(layer, outcome):
    data = {"name": "t", "input": [3, 8, 8], "layers": [layer]}
    assert agree(data) == outcome


def test_a_deferred_document_still_gets_pydantics_answer_and_errors():
    data = copy.deepcopy(BASE)
    data["layers"][0]["bias"] = "yes"
    assert fast.read(data) is None
    assert load_spec(data).layers[0].bias is True
    data["layers"][0]["stride"] = 0
    with pytest.raises(ArchcalcError, match=r"layers\[0\]\.stride: expected an integer >= 1"):
        load_spec(data)


def test_fast_items_are_frozen_and_compare_by_value():
    one = fast.read(copy.deepcopy(BASE))
    two = fast.read(copy.deepcopy(BASE))
    assert one == two and one is not two
    with pytest.raises(AttributeError, match="frozen"):
        one.layers[0].stride = 2
    assert dict(one.layers[0])["out_channels"] == 4


def test_analyze_does_not_build_the_pydantic_models():
    code = (
        "import sys, io, contextlib\n"
        "from archcalc.cli import main\n"
        "sys.argv = ['archcalc', 'analyze', 'specs/lenet5.yaml', '--json']\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    code = main()\n"
        "print(code, 'pydantic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.split() == ["0", "False"], out.stderr


def test_isinstance_holds_for_the_model_a_fast_item_stands_for():
    import archcalc
    from archcalc.language.layer_types import Conv, Layer, Linear

    spec = archcalc.load_spec(ROOT / "specs" / "lenet5.yaml")
    assert type(spec).__module__ == "archcalc.language.fast"
    assert isinstance(spec, archcalc.Spec) and not isinstance(spec.layers[0], archcalc.Spec)
    assert isinstance(spec.layers[0], Conv) and isinstance(spec.layers[0], Layer)
    assert not isinstance(spec.layers[0], Linear)


@pytest.mark.parametrize(
    ("text", "outcome"),
    [("1.5", "same"), ("+1.5", "same"), ("1.", "same"), (".5", "same"), ("1e400", "same"),
     ("1E5", "same"), ("00.5", "same"), ("1_0", "fast defers"), ("inf", "fast defers"),
     (" 1.5", "fast defers"), ("0x10", "both refuse")],
)  # fmt: skip
def test_numbers_written_as_text(text, outcome):
    """YAML reads 6.3e8 (no dot or sign in the exponent) as a string; pydantic reads it as a
    float, and so does the fast reader for plain decimals (anything else: pydantic)."""
    layer = {"type": "leaky_relu", "negative_slope": text}
    assert agree({"name": "t", "input": [4], "layers": [layer]}) == outcome
