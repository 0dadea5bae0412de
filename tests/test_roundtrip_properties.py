"""Property: export then import is the identity, on random networks.

Random conv/pool/linear/BN stacks and random chains of the graph language's tensor
operations (the strategies of the two torch property suites): every one archcalc accepts is
exported as PyTorch code, imported back from that code, and

- the imported spec has the same outputs, parameters, MACs, neurons and connections;
- the exported module computes verify's model's function (same weights, same output);
- exporting and importing the imported spec gives it back, text for text (a fixed point;
  item for item only where a block takes parameters: see the test).
"""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, assume, example, given, settings

torch = pytest.importorskip("torch", reason="export and import need the [verify] extra")

from archcalc import ArchcalcError, analyze  # noqa: E402
from archcalc.language.writer import to_yaml  # noqa: E402
from tests.test_export import assert_computes_verify_model  # noqa: E402
from tests.test_torch_graph_properties import chains, spec_and_torch  # noqa: E402
from tests.test_torch_properties import stacks  # noqa: E402
from verify.exporter import export_pytorch, exported_module  # noqa: E402
from verify.importer import import_module  # noqa: E402

TOTALS = ("params", "macs", "neurons", "connections")


def _chain_spec(chain) -> dict:
    shape, ops = chain
    return {"name": "random", "input": shape, "layers": spec_and_torch(shape, ops)[0]}


def _round_trip(analysis, blocks: bool = True):
    """The spec imported from ``analysis``'s exported code, as YAML, and that module."""
    module = exported_module(export_pytorch(analysis, "Net"), "Net").eval()
    imported = import_module(module, tuple(analysis.input), name="random", blocks=blocks)
    return to_yaml(imported.spec), module


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(stacks(), chains().map(_chain_spec)))
# what this property found: an import that never ended (a module of one operation named as its
# item), padding='same' written bare, AvgPool2d's ceil_mode lost with torch's repr, and block
# classes named after the file's own helpers (CenterCrop) or renamed on the way (Centercrop)
@example({"name": "r", "input": [7], "layers": [{"type": "reshape", "shape": [-1, 1]}]})
@example({"name": "r", "input": [6, 8, 8], "layers": [
    {"type": "conv2d", "out_channels": 6, "kernel_size": 5, "padding": "same"}]})  # fmt: skip
@example({"name": "r", "input": [1, 3, 3], "layers": [
    {"type": "avgpool2d", "kernel_size": 2, "stride": 2, "ceil_mode": True}]})  # fmt: skip
@example({"name": "r", "input": [1, 1, 1], "layers": [{"type": "center_crop", "size": 1}]})
def test_export_then_import_is_the_identity(spec):
    try:
        analysis = analyze(spec)
    except ArchcalcError:
        assume(False)  # what archcalc refuses, torch refuses too (the torch properties)
    text, module = _round_trip(analysis)
    again = analyze(text)
    assert again.outputs == analysis.outputs, text
    assert {k: again.totals[k] for k in TOTALS} == {k: analysis.totals[k] for k in TOTALS}, text

    assert_computes_verify_model(module, analysis)

    # the imported spec is a fixed point: item for item; and block for block where no block
    # takes parameters (export writes a class for each of their distinct calls, with the
    # numbers filled in, so import finds two blocks where the spec had one with two calls)
    assert _round_trip(again, blocks=False)[0] == _round_trip(analysis, blocks=False)[0]
    if "params:" not in text:
        assert _round_trip(again)[0] == text


def test_one_operation_modules_keep_their_names():
    # the exported Reshape helpers, traced to items named reshape and reshape_1, are named as
    # their modules are (the first once read reshape_2: the traced item held its own name)
    spec = {"name": "r", "input": [7], "layers": [
        {"type": "reshape", "shape": [-1, 1]}, {"type": "reshape", "shape": [7]}]}  # fmt: skip
    text = _round_trip(analyze(spec))[0]
    assert text.endswith("layers:\n  - {name: reshape, type: reshape, shape: [7, 1]}\n"
                         "  - {name: reshape_2, type: reshape, shape: [7]}\n")  # fmt: skip
