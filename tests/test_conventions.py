"""archcalc conventions: each peer tool's figure, hand-computed on tiny specs, and (where the
tool is installed) against the tool's own total on the built model."""

from __future__ import annotations

import json

import pytest

from archcalc.cli import main
from archcalc.errors import ArchcalcError
from archcalc.quantities.analysis import analyze
from archcalc.quantities.conventions import TOOL_RULES, conventions, tool_figure
from tests.conftest import ROOT

# conv 2->3 (3x3, pad 1, bias) on 4x4: MACs 3·16·18 = 864; then BN, ReLU, max pool 2 -> [3,2,2],
# adaptive avg pool -> [3,1,1], flatten, linear 3->5 (MACs 15), softmax over 5.
SMALL = {
    "name": "small", "input": [2, 4, 4],
    "layers": [
        {"type": "conv2d", "out_channels": 3, "kernel_size": 3, "padding": 1},
        {"type": "batchnorm2d"}, {"type": "relu"},
        {"type": "maxpool2d", "kernel_size": 2},
        {"type": "adaptive_avgpool2d", "output_size": 1},
        {"type": "flatten"},
        {"type": "linear", "out_features": 5},
        {"type": "softmax"},
    ],
}  # fmt: skip
MACS = 864 + 15


def breakdown(tool: str, spec=SMALL) -> dict[str, int]:
    return {share.type: share.count for share in tool_figure(analyze(spec), tool).because}


def test_small_macs():
    assert analyze(SMALL).totals["macs"] == MACS


@pytest.mark.parametrize(
    "tool, expected",
    [
        # torchinfo: conv bias at every position (3·16), BN parameters 2·3, linear bias 5
        ("torchinfo", {"conv bias": 48, "batch norm": 6, "linear bias": 5}),
        # fvcore: BN 2 per input element (48), adaptive pool 1 per input element (12)
        ("fvcore", {"batch norm": 96, "adaptive pool": 12}),
        # ptflops: biases per output; BN 2/elt; ReLU and pools twice their inputs; softmax 1/elt
        ("ptflops", {"conv bias": 48, "batch norm": 96, "ReLU": 96, "max pool": 96,
                     "adaptive pool": 24, "linear bias": 5, "softmax": 5}),
        ("ptflops-aten", {"conv bias": 48, "linear bias": 5}),
        # thop: BN 4/elt; adaptive pool (4 + 1)·3; softmax 1 row · (3·5 − 1)
        ("thop", {"batch norm": 192, "adaptive pool": 15, "softmax": 14}),
        ("calflops", {}),
        # calflops' FLOPs: each MAC twice (conv 864, linear 15), the conv bias (not the linear's),
        # BN 2/elt, ReLU, both pools and softmax 1 per input element
        ("calflops-flops", {"conv x2": 864, "conv bias": 48, "batch norm": 96, "relu": 48,
                            "maxpool": 48, "adaptive avgpool": 12, "linear x2": 15, "softmax": 5}),
        # torchscan: BN 2/elt; max pool 12·(4 − 1); adaptive pool 3·(4 − 1 + 2); softmax no rule
        ("torchscan", {"batch norm": 96, "max pool": 36, "adaptive pool": 15}),
    ],
)  # fmt: skip
def test_small_spec_by_hand(tool, expected):
    figure = tool_figure(analyze(SMALL), tool)
    assert breakdown(tool) == expected
    if tool == "torchscan":
        assert figure.value is None and figure.known == MACS + sum(expected.values())
        assert "softmax" in figure.reason
    else:
        assert figure.value == MACS + sum(expected.values())
        assert figure.difference == sum(expected.values())


def test_residual_merge_is_seen():
    # a residual's hidden add: no tool counts it, but torchscan has no rule for it
    spec = {"name": "res", "input": [4], "layers": [
        {"type": "residual", "body": [{"type": "linear", "out_features": 4, "bias": False}]}]}  # fmt: skip
    figure = tool_figure(analyze(spec), "torchscan")
    assert figure.value is None and "add" in figure.reason and figure.known == 16
    assert tool_figure(analyze(spec), "ptflops").value == 16


def test_lrn_under_ptflops():
    # x·x, ·alpha, +k: 3·16; the pool over channels padded by size − 1: (4 + 2)·4
    spec = {"name": "lrn", "input": [4, 2, 2], "layers": [
        {"type": "local_response_norm", "size": 3, "alpha": 1e-4, "beta": 0.75, "k": 2}]}  # fmt: skip
    assert breakdown("ptflops", spec) == {"LRN": 3 * 16 + 6 * 4}
    assert breakdown("thop", spec) == {}


def test_attention():
    # L = 3 tokens of E = 4: MACs 4·L·E² + 2·L²·E = 192 + 72
    spec = {"name": "att", "input": [3, 4], "layers": [
        {"type": "multihead_attention", "num_heads": 2}]}  # fmt: skip
    assert analyze(spec).totals["macs"] == 264
    assert breakdown("ptflops", spec) == {"attention": -192}
    assert breakdown("torchinfo", spec) == {"attention": 16 + 4 - 264}
    assert breakdown("ptflops-aten", spec) == {"attention bias": 4 * 3 * 4}
    assert breakdown("thop", spec) == {"attention": -264}
    assert breakdown("fvcore", spec) == {}
    # torchscan: no rule for the module, but its out-projection child (a Linear) counts L·E²
    figure = tool_figure(analyze(spec), "torchscan")
    assert figure.value is None and figure.known == 3 * 16


def test_linear_on_tokens_under_torchinfo():
    # [3, 4] -> [3, 2]: torchinfo counts weight and bias once: 4·2 + 2, not 3·4·2
    spec = {"name": "tok", "input": [3, 4], "layers": [{"type": "linear", "out_features": 2}]}
    assert tool_figure(analyze(spec), "torchinfo").value == 10


def test_unknown_type_gives_no_figure(monkeypatch):
    rules = {kind: terms for kind, terms in TOOL_RULES["thop"].items() if kind != "mish"}
    monkeypatch.setitem(TOOL_RULES, "thop", rules)
    spec = {"name": "odd", "input": [4], "layers": [{"type": "mish"}]}
    figure = tool_figure(analyze(spec), "thop")
    assert figure.value is None and "does not know how thop counts mish" in figure.reason


def language_kinds() -> set[str]:
    """Every layer family of the spec language, as the rule tables name them."""
    from archcalc.language.fields import ACTIVATION_TYPES
    from archcalc.layers.registry import RULES
    from archcalc.quantities.tool_formulas import Layer

    types = set(RULES) | set(ACTIVATION_TYPES) | {"dropout", "dropout2d", "stochastic_depth"}
    kinds = {Layer("", t, {}, (), (), 0).kind for t in types} | {"table_conv"}
    return kinds


def test_every_layer_type_has_a_rule_for_every_tool():
    # torchscan prints a partial total for the types it has no rule for; every other tool has
    # a rule (possibly "counted as archcalc does") for every layer type of the language
    kinds = language_kinds()
    assert {"conv_transpose", "instance_norm", "prelu", "upsample", "rbf", "mean"} <= kinds
    for tool, rules in TOOL_RULES.items():
        if tool != "torchscan":
            assert kinds - set(rules) == set(), tool
    assert "rbf" not in TOOL_RULES["torchscan"] and "conv_transpose" in TOOL_RULES["torchscan"]


def test_published_conventions():
    figures = {f.tool: f for f in conventions(analyze(SMALL))}
    assert figures["torchvision GFLOPS"].value == MACS
    assert figures["FLOPs = 2 x MACs"].value == 2 * MACS
    # + biases (48 + 5) + one per ReLU output (48)
    assert figures["FLOPs with bias and element-wise ops"].value == 2 * MACS + 53 + 48


def test_torchvision_figure_leaves_out_auxiliary_outputs():
    # torchvision's 5.713 GFLOPS for Inception-v3 are measured in eval mode, where the aux
    # head (5,683,200 MACs, the spec's second output) does not run
    net = analyze(ROOT / "specs" / "zoo" / "inception_v3.yaml")
    figure = {f.tool: f for f in conventions(net)}["torchvision GFLOPS"]
    assert net.totals["macs"] == 5_718_899_296
    assert figure.value == 5_713_216_096 and round(figure.value / 1e9, 3) == 5.713
    assert [(b.type, b.count, b.layers) for b in figure.because] == [
        ("auxiliary outputs", -5_683_200, 3)]  # fmt: skip


def test_symbolic_spec_is_refused():
    spec = {"name": "sym", "symbols": {"n": None}, "input": [4], "layers": [
        {"type": "linear", "out_features": "n"}]}  # fmt: skip
    with pytest.raises(
        ArchcalcError, match=r"conventions needs numbers; give n a value \(--set n=VALUE\)"
    ):
        conventions(analyze(spec))


def test_unknown_tool():
    with pytest.raises(ArchcalcError, match="unknown tool"):
        tool_figure(analyze(SMALL), "nope")


def test_cli_json(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["conventions", "specs/zoo/resnet50.yaml", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    figures = {f["tool"]: f for f in data["figures"]}
    assert set(TOOL_RULES) <= set(figures)
    ptflops = figures["ptflops"]
    assert ptflops["difference"] == 43_252_712
    assert {b["type"]: b["count"] for b in ptflops["because"]} == {
        "batch norm": 22_227_968, "ReLU": 19_217_408, "max pool": 1_605_632,
        "adaptive pool": 200_704, "linear bias": 1_000}  # fmt: skip
    assert figures["torchscan"]["value"] is None and "add" in figures["torchscan"]["reason"]


def test_cli_golden(capsys, golden, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["conventions", "specs/zoo/resnet18.yaml"]) == 0
    golden("resnet18.yaml.conventions.txt", capsys.readouterr().out)


# -- against the tools themselves (skipped where they are not installed)

PEER_SPECS = ["specs/lenet5.yaml", "specs/alexnet.yaml", "specs/zoo/resnet18.yaml",
              "specs/zoo/mobilenet_v2.yaml", "specs/zoo/lenet5_1998.yaml",
              *sorted(f"tests/data/conventions/{p.name}"
                      for p in (ROOT / "tests/data/conventions").glob("*.yaml"))]  # fmt: skip
MODULES = {"torchinfo": "torchinfo", "fvcore": "fvcore", "ptflops": "ptflops",
           "ptflops-aten": "ptflops", "thop": "thop", "calflops": "calflops",
           "calflops-flops": "calflops", "torchscan": "torchscan"}  # fmt: skip


@pytest.mark.parametrize("tool", list(TOOL_RULES))
@pytest.mark.parametrize("path", PEER_SPECS)
def test_against_tool(tool, path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip(MODULES[tool])
    monkeypatch.chdir(ROOT)
    from benchmarks.conventions_check import measured
    from verify.toolcheck import predicted

    analysis = analyze(ROOT / path)
    assert measured(tool, analysis) == predicted(tool_figure(analysis, tool))
