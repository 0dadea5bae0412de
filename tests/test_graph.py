"""The spec language as a graph: named tensors, merges, several outputs, conditions,
input sizes in expressions; and elaboration of the tree sugar into the same graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from archcalc import analyze
from archcalc.errors import ArchcalcError
from archcalc.graph.elaborate import elaborate
from archcalc.language.expr import evaluate_text, make_divisible
from tests.conftest import spec

ROOT = Path(__file__).resolve().parent.parent

SE_BLOCK = [
    {"name": "x", "type": "conv2d", "out_channels": 32, "kernel_size": 3, "padding": 1,
     "activation": "relu"},
    {"type": "adaptive_avgpool2d", "output_size": 1},
    {"type": "conv2d", "out_channels": "C_in // 4", "kernel_size": 1, "activation": "relu"},
    {"name": "gate", "type": "conv2d", "out_channels": 32, "kernel_size": 1,
     "activation": "hardsigmoid"},
    {"type": "mul", "inputs": ["x", "gate"]},
]  # fmt: skip


def test_squeeze_and_excitation_gates_by_broadcasting():
    a = analyze(spec(SE_BLOCK, [16, 8, 8]))
    assert [(r.type, r.output) for r in a.rows if r.type in ("conv2d", "mul")] == [
        ("conv2d", (32, 8, 8)), ("conv2d", (8, 1, 1)), ("conv2d", (32, 1, 1)), ("mul", (32, 8, 8))
    ]  # fmt: skip
    # the squeeze conv read C_in = 32 from its input: 32·8 + 8 parameters
    assert a.rows[3].params == 32 * 8 + 8
    assert a.output == (32, 8, 8)
    mul = a.graph.nodes[a.rows[-1].node]
    assert [a.graph.nodes[i].path for i in mul.inputs] == ["layers[0].activation",
                                                           "layers[3].activation"]  # fmt: skip


def test_add_broadcasts_and_reports_mismatches():
    layers = [{"name": "a", "type": "conv2d", "out_channels": 4, "kernel_size": 1},
              {"name": "b", "type": "adaptive_avgpool2d", "output_size": 1},
              {"type": "add", "inputs": ["a", "b"]}]  # fmt: skip
    assert analyze(spec(layers, [4, 5, 5])).output == (4, 5, 5)
    bad = [{"name": "a", "type": "conv2d", "out_channels": 4, "kernel_size": 1},
           {"name": "b", "type": "conv2d", "out_channels": 3, "kernel_size": 1, "input": "input"},
           {"type": "add", "inputs": ["a", "b"]}]  # fmt: skip
    with pytest.raises(ArchcalcError) as info:
        analyze(spec(bad, [4, 5, 5]))
    assert str(info.value) == ("layers[2]: add needs shapes that broadcast (each size equal, or 1). "
                               "Received: [4, 5, 5], [3, 5, 5]")  # fmt: skip


def test_concat_of_named_inputs_along_tokens():
    layers = [{"type": "conv2d", "out_channels": 8, "kernel_size": 4, "stride": 4},
              {"type": "flatten", "start_dim": 1}, {"type": "transpose", "dim0": 0, "dim1": 1,
                                                     "name": "patches"},
              {"name": "cls", "type": "parameter", "shape": [1, 8]},
              {"type": "concat", "inputs": ["cls", "patches"], "dim": 0}]  # fmt: skip
    a = analyze(spec(layers, [3, 16, 16]))
    assert a.output == (17, 8)
    assert a.totals["params"] == 8 * 3 * 16 + 8 + 8


def test_matmul_counts_its_products():
    layers = [{"name": "q", "type": "linear", "out_features": 4},
              {"name": "kt", "type": "transpose", "dim0": 0, "dim1": 1, "input": "input"},
              {"type": "matmul", "inputs": ["q", "kt"]}]  # fmt: skip
    a = analyze(spec(layers, [5, 4]))
    assert a.output == (5, 5)
    assert a.rows[-1].macs == 5 * 5 * 4


def test_several_outputs_and_dead_layers():
    layers = [{"name": "trunk", "type": "linear", "out_features": 8},
              {"name": "aux", "type": "linear", "out_features": 3},
              {"type": "linear", "out_features": 2, "input": "trunk", "name": "main"},
              {"type": "linear", "out_features": 7, "input": "trunk"}]  # fmt: skip
    a = analyze(spec(layers, [4], outputs=["main", "aux"]))
    assert a.outputs == [(2,), (3,)]
    assert [r.path for r in a.rows] == ["layers[0]", "layers[1]", "layers[2]"]
    assert a.totals["params"] == 40 + 27 + 18
    assert [w.message for w in a.warnings] == [
        "layers[3]: no output depends on it; left out of the rows and totals (name it under "
        "outputs: to keep it)"
    ]
    assert a.to_dict()["outputs"] == [
        {"name": "main", "path": "layers[2]", "shape": [2]},
        {"name": "aux", "path": "layers[1]", "shape": [3]},
    ]


@pytest.mark.parametrize(
    "layers, extra, message",
    [
        ([{"type": "add", "inputs": ["a", "input"]}], {},
         "layers[0].inputs[0]: unknown tensor name 'a'; visible here: input"),
        ([{"type": "linear", "out_features": 3, "input": "b"},
          {"name": "b", "type": "linear", "out_features": 3}], {},
         "layers[0].input: 'b' is defined later, at layers[1]; an item can only read earlier tensors"),
        ([{"name": "a", "type": "relu"}, {"name": "a", "type": "relu"}], {},
         "layers[1].name: name 'a' is already used at layers[0]; names must be unique in a layer list"),
        ([{"name": "input", "type": "relu"}], {},
         "layers[0].name: 'input' names the network's (or block's) input; choose another name"),
        ([{"type": "relu"}], {"outputs": ["nope"]},
         "outputs[0]: unknown tensor name 'nope'; visible here: input"),
        ([{"type": "parameter", "shape": [2], "input": "input"}], {},
         "layers[0].input: parameter reads no tensor; remove input"),
        ([{"type": "residual", "body": [{"name": "inner", "type": "relu"}]},
          {"type": "relu", "input": "inner"}], {},
         "layers[1].input: unknown tensor name 'inner'; visible here: input"),
    ],
)  # fmt: skip
def test_name_errors(layers, extra, message):
    with pytest.raises(ArchcalcError) as info:
        analyze(spec(layers, [4], **extra))
    assert str(info.value) == message


def test_names_inside_blocks_are_their_own():
    blocks = {"se": {"params": ["squeeze"], "layers": [
        {"type": "adaptive_avgpool2d", "output_size": 1},
        {"type": "conv2d", "out_channels": "squeeze", "kernel_size": 1, "activation": "relu"},
        {"type": "conv2d", "out_channels": "C_in * 0 + 16", "kernel_size": 1,
         "activation": "sigmoid", "name": "gate"},
        {"type": "mul", "inputs": ["input", "gate"]}]}}  # fmt: skip
    layers = [{"type": "se", "squeeze": 4}, {"type": "se", "squeeze": 8}]
    a = analyze(spec(layers, [16, 6, 6], blocks=blocks))
    assert a.output == (16, 6, 6)
    assert a.totals["params"] == (16 * 4 + 4 + 4 * 16 + 16) + (16 * 8 + 8 + 8 * 16 + 16)


def test_when_selects_the_projection_shortcut():
    blocks = {"block": {"params": ["planes", "stride"], "layers": [{"type": "residual", "body": [
        {"type": "conv2d", "out_channels": "planes", "kernel_size": 3, "stride": "stride",
         "padding": 1, "activation": "relu"},
        {"type": "conv2d", "out_channels": "planes", "kernel_size": 3, "padding": 1}],
        "shortcut": [{"type": "conv2d", "out_channels": "planes", "kernel_size": 1,
                      "stride": "stride", "when": "stride != 1 or C_in != planes"}],
        "activation": "relu"}]}}  # fmt: skip
    layers = [{"type": "block", "planes": 8, "stride": 1},
              {"type": "block", "planes": 16, "stride": 2},
              {"type": "block", "planes": 16, "stride": 1}]  # fmt: skip
    a = analyze(spec(layers, [8, 16, 16], blocks=blocks))
    shortcuts = [r.path for r in a.rows if ".shortcut" in r.path]
    assert shortcuts == ["layers[1].layers[0].shortcut[0]"]
    assert a.output == (16, 8, 8)


def test_when_with_free_symbols_is_an_error():
    with pytest.raises(ArchcalcError, match=r"^layers\[0\]\.when: condition 'n > 3' depends on "
                       r"free symbols \(n > 3\); give them values"):  # fmt: skip
        analyze(spec([{"type": "relu", "when": "n > 3"}], [4], symbols={"n": None}))


def test_repeat_zero_times_and_activation_parameters():
    blocks = {"unit": {"params": ["act", "width"], "layers": [
        {"type": "linear", "out_features": "width", "activation": "act"}]}}  # fmt: skip
    layers = [{"type": "repeat", "times": 0, "layers": [{"type": "linear", "out_features": 9}]},
              {"type": "unit", "act": "hardswish", "width": 6},
              {"type": "unit", "act": "relu", "width": 5}]  # fmt: skip
    a = analyze(spec(layers, [4], blocks=blocks))
    assert [r.type for r in a.rows] == ["linear", "hardswish", "linear", "relu"]
    blocks["bad"] = {"params": ["act"], "layers": [{"type": "linear", "out_features": "act"}]}
    with pytest.raises(ArchcalcError, match="'act' holds the activation 'relu', not a number"):
        analyze(spec([{"type": "bad", "act": "relu"}], [4], blocks=blocks))


@pytest.mark.parametrize("v, d, expected", [(16, 8, 16), (24, 8, 24), (60, 8, 64), (20, 8, 24),
                                            (4, 8, 8), (36, 8, 40), (480 // 4, 8, 120)])  # fmt: skip
def test_make_divisible_matches_torchvision(v, d, expected):
    def reference(value, divisor, min_value=None):  # torchvision.models._utils._make_divisible
        if min_value is None:
            min_value = divisor
        new_v = max(min_value, int(value + divisor / 2) // divisor * divisor)
        if new_v < 0.9 * value:
            new_v += divisor
        return new_v

    assert make_divisible(v, d) == reference(v, d) == expected
    assert evaluate_text(f"make_divisible({v}, {d})", {}) == expected


def test_input_sizes_in_expressions():
    layers = [{"type": "conv2d", "out_channels": "C_in * 2", "kernel_size": "H_in // 2"},
              {"type": "conv1d", "out_channels": 3, "kernel_size": 1, "input": "input",
               "when": "W_in == 8"}]  # fmt: skip
    a = analyze(spec(layers[:1], [3, 8, 8]))
    assert a.output == (6, 5, 5)
    with pytest.raises(
        ArchcalcError, match=r"L_in is not defined for an input of shape \[3, 8, 8\]"
    ):
        analyze(spec([{"type": "relu", "when": "L_in > 2"}], [3, 8, 8]))


def test_sugar_and_explicit_graph_elaborate_alike():
    sugar = [
        {"type": "residual", "body": [{"type": "linear", "out_features": 4}], "activation": "relu"}
    ]
    explicit = [{"name": "body", "type": "linear", "out_features": 4},
                {"type": "add", "inputs": ["body", "input"]}, {"type": "relu"}]  # fmt: skip
    g1, g2 = elaborate(spec(sugar, [4])), elaborate(spec(explicit, [4]))
    assert [(n.type, n.inputs, n.shape) for n in g1.nodes] == [
        (n.type, n.inputs, n.shape) for n in g2.nodes
    ]
    assert [n.shown for n in g1.nodes] == [False, True, False, True]  # the sugar's add is no row
    assert analyze(spec(sugar, [4])).totals == analyze(spec(explicit, [4])).totals


def test_unknown_types_suggest_by_meaning():
    for wrong, right in [("swish", "silu"), ("hard_swish", "hardswish"), ("dense", "linear")]:
        with pytest.raises(ArchcalcError, match=f"did you mean '{right}'"):
            analyze(spec([{"type": wrong}], [4]))
    with pytest.raises(ArchcalcError) as info:
        analyze(spec([{"type": "upsampel", "scale_factor": 2}], [4, 4, 4]))
    assert "did you mean 'upsample'" in str(info.value)


def test_expectations_per_output():
    """A published figure may cover one output only (Inception-v3's GFLOPS: the main head)."""
    from archcalc.quantities.expectations import check_expectations

    layers = [{"name": "trunk", "type": "linear", "out_features": 2, "bias": False},
              {"name": "aux", "type": "linear", "out_features": 2, "bias": False},
              {"name": "main", "type": "identity", "input": "trunk"}]  # fmt: skip
    good = {"macs": 12, "outputs": {"main": {"macs": 8, "output": [2]}, "aux": {"macs": 12}}}
    a = analyze(spec(layers, [4], outputs=["main", "aux"], expect=good))
    assert check_expectations(a) == []
    bad = {"outputs": {"main": {"macs": 12}}}
    a = analyze(spec(layers, [4], outputs=["main", "aux"], expect=bad))
    assert [str(m) for m in check_expectations(a)] == ["outputs.main macs: expected 12, computed 8"]


def test_activation_parameters_in_types_and_norms():
    """Conv2dNormActivation with its activation as a block parameter: after batch norm, as a
    type of its own, and passed on from block to block."""
    blocks = {
        "cna": {"params": ["act"], "layers": [
            {"type": "conv2d", "out_channels": 4, "kernel_size": 1, "bias": False},
            {"type": "batchnorm2d", "activation": "act"}, {"type": "act"}]},
        "outer": {"params": ["act"], "layers": [{"type": "cna", "act": "act"}]},
    }  # fmt: skip
    a = analyze(spec([{"type": "outer", "act": "hardswish"}, {"type": "cna", "act": "relu"}],
                     [4, 8, 8], blocks=blocks))  # fmt: skip
    assert [r.type for r in a.rows] == ["conv2d", "batchnorm2d", "hardswish", "hardswish",
                                        "conv2d", "batchnorm2d", "relu", "relu"]  # fmt: skip
    with pytest.raises(
        ArchcalcError, match="'act' names an activation parameter; it takes no fields"
    ):
        blocks["cna"]["layers"][2] = {"type": "act", "p": 1}
        analyze(spec([{"type": "cna", "act": "relu"}], [4, 8, 8], blocks=blocks))


def test_center_crop_like_a_named_tensor():
    """U-Net: the skip is cropped to the up-sampled map's size, whatever the input size."""
    layers = [{"name": "enc", "type": "conv2d", "out_channels": 4, "kernel_size": 3},
              {"type": "maxpool2d", "kernel_size": 2},
              {"type": "conv2d", "out_channels": 8, "kernel_size": 3},
              {"name": "up", "type": "conv_transpose2d", "out_channels": 4, "kernel_size": 2, "stride": 2},
              {"name": "skip", "type": "center_crop", "input": "enc", "like": "up"},
              {"type": "concat", "inputs": ["skip", "up"]}]  # fmt: skip
    for size, up in ((20, 14), (30, 24)):
        a = analyze(spec(layers, [1, size, size]))
        assert a.row("skip").output == (4, up, up) and a.output == (8, up, up)
    with pytest.raises(ArchcalcError, match="give exactly one of size and like"):
        analyze(spec([{"type": "center_crop", "size": 2, "like": "input"}], [1, 4, 4]))


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs" / "zoo").glob("*.yaml")),
    ids=lambda p: p.name,
)
@pytest.mark.parametrize("symbolic", [False, True], ids=["numeric", "symbolic"])
def test_reused_leaf_answers_change_nothing(path, symbolic, monkeypatch):
    """The leaf memo (archcalc.graph.memo) gives the graph the walk without it gives: every
    node's path, name, type, hyperparameters, inputs and shape, every row, every warning."""
    from archcalc.graph import memo

    def snapshot():
        try:
            a = analyze(path, symbolic=symbolic)
        except ArchcalcError as err:
            return str(err)
        nodes = [(n.path, n.name, n.type, dict(n.hyper), n.inputs, n.shape) for n in a.graph.nodes]
        return nodes, [r.to_dict() for r in a.rows], [str(w) for w in a.warnings], a.assumptions

    fast = snapshot()
    monkeypatch.setattr(memo, "ENABLED", False)
    assert snapshot() == fast


def test_a_block_that_never_repeats_stops_being_remembered(monkeypatch):
    """After GIVE_UP_AFTER calls that all missed, a block's calls (and its items) are no longer
    keyed; later equal calls are elaborated afresh, to the same graph."""
    from archcalc.graph import elaborate as elaboration
    from archcalc.graph import memo

    block = {"params": ["out"], "layers": [
        {"type": "conv2d", "out_channels": "out", "kernel_size": 3, "padding": 1},
        {"type": "batchnorm2d"}, {"type": "relu"}]}  # fmt: skip
    calls = [{"type": "cbr", "out": 8 + i} for i in range(12)] + [{"type": "cbr", "out": 19}] * 3
    doc = {"name": "n", "input": [3, 8, 8], "blocks": {"cbr": block}, "layers": calls}
    seen = []
    original = elaboration._Elaborator.run

    def run(self, file):
        seen.append(self)
        return original(self, file)

    monkeypatch.setattr(elaboration._Elaborator, "run", run)

    def snapshot():
        a = analyze(doc)
        return [(n.path, n.type, dict(n.hyper), n.inputs, n.shape) for n in a.graph.nodes], [
            r.to_dict() for r in a.rows]  # fmt: skip

    fast = snapshot()
    assert seen[-1].calls.misses["cbr"] >= memo.GIVE_UP_AFTER  # it gave up ...
    assert len(seen[-1].calls.calls) == memo.GIVE_UP_AFTER  # ... and remembered none after
    monkeypatch.setattr(memo, "ENABLED", False)
    assert snapshot() == fast
