"""Training memory: hand-computed tables, symbols, solve; and PyTorch's saved tensors."""

from __future__ import annotations

import json

import pytest

from archcalc import analyze
from archcalc.cli import main
from archcalc.errors import ArchcalcError
from archcalc.language.expr import symbol
from archcalc.quantities.memory import training_memory
from archcalc.questions.solve import MemoryOptions, solve
from tests.conftest import ROOT, SPECS, spec

CONV = {"type": "conv2d", "out_channels": 4, "kernel_size": 1, "name": "a"}


def saved(layers, input_shape, batch=2, **options):
    m = training_memory(analyze(spec(layers, input_shape)), batch=batch, **options)
    return [m.of(row.node).saved_bytes for row in m.analysis.rows], m


# Hand-computed: (layers, input, batch, bytes each row adds to what backward keeps)
HAND = [
    # conv keeps its input 2·3·8·8·4; ReLU its output 2·4·8·8·4; max pooling the ReLU's
    # output again (counted once) and int64 indices 2·4·4·4·8
    ([{"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1}, {"type": "relu"},
      {"type": "maxpool2d", "kernel_size": 2}], (3, 8, 8), 2, [1536, 2048, 1024]),
    # batch norm: the conv's output 3·4·5·5·4 and two float32 statistics per channel
    ([CONV, {"type": "batchnorm2d"}], (3, 5, 5), 3, [900, 1200 + 32]),
    # the network input needs no gradient: a first ReLU keeps nothing; the conv its output
    ([{"type": "relu"}, CONV], (3, 5, 5), 1, [0, 300]),
    # GELU keeps its input (the conv's output), sigmoid its output
    ([CONV, {"type": "gelu"}, {"type": "sigmoid"}], (3, 2, 2), 1, [48, 64, 64]),
    # a view: flatten shares the ReLU's storage, which the linear layer then keeps again
    ([CONV, {"type": "relu"}, {"type": "flatten"}, {"type": "linear", "out_features": 2}],
     (3, 2, 2), 2, [96, 128, 0, 0]),
    # dropout: a float mask as large as its input (CPU); dropout2d one value per map
    ([{"type": "linear", "out_features": 10}, {"type": "dropout", "p": 0.5}], (6,), 4, [96, 160]),
    ([CONV, {"type": "dropout2d", "p": 0.5}], (3, 2, 2), 4, [192, 64]),
    # a global average pool keeps nothing; layer norm its input and two statistics per row
    ([CONV, {"type": "adaptive_avgpool2d", "output_size": 1}], (3, 2, 2), 1, [48, 0]),
    ([{"type": "linear", "out_features": 8}, {"type": "layernorm", "normalized_shape": 8}],
     (5, 6), 2, [240, 320 + 80]),
    # a squeeze-and-excitation gate: the product keeps both factors
    ([CONV, {"type": "adaptive_avgpool2d", "output_size": 1, "name": "g"},
      {"type": "mul", "inputs": ["a", "g"]}], (3, 4, 4), 2, [384, 0, 512 + 32]),
    # self-attention over 5 tokens of width 8, 2 heads, batch 2: q, k, v 3·2·5·8·4, the
    # weights 2·2·5·5·4, the heads' concatenation 2·5·8·4 (its input the linear's output)
    ([{"type": "linear", "out_features": 8}, {"type": "multihead_attention", "num_heads": 2}],
     (5, 8), 2, [320, 320 + 960 + 400 + 320]),
    # a linear layer on permuted tokens keeps its own contiguous copy
    ([CONV, {"type": "permute", "dims": [1, 2, 0]}, {"type": "linear", "out_features": 3}],
     (3, 2, 2), 2, [96, 0, 128]),
]  # fmt: skip


@pytest.mark.parametrize("layers, shape, batch, expected", HAND)
def test_hand_computed_saved_bytes(layers, shape, batch, expected):
    rows, m = saved(layers, shape, batch)
    assert rows == expected
    assert m.saved_bytes == sum(expected)


def test_cuda_dropout_keeps_a_bool_mask():
    rows, _ = saved([{"type": "linear", "out_features": 10}, {"type": "dropout", "p": 0.5}], (6,),
                    4, device="cuda")  # fmt: skip
    assert rows == [96, 40]


def test_totals_parameters_gradients_optimizer_and_peak():
    net = analyze(spec([{"type": "linear", "out_features": 10}], (6,)))
    for optimizer, copies in (("sgd", 0), ("momentum", 1), ("adam", 2), ("none", 0)):
        m = training_memory(net, batch=4, optimizer=optimizer)
        assert m.parameter_bytes == m.gradient_bytes == 70 * 4
        assert m.optimizer_bytes == copies * 280
        assert m.working_bytes == (4 * 10 + 4 * 6) * 4  # the output and input gradients
        assert m.peak_bytes == 2 * 280 + copies * 280 + m.saved_bytes + m.working_bytes
    half = training_memory(net, batch=4, dtype="bfloat16")
    assert half.parameter_bytes == 140 and half.saved_bytes == 4 * 6 * 2


def test_symbolic_batch_equals_numeric():
    for name in ("zoo/resnet18.yaml", "zoo/mobilenet_v3_small.yaml", "zoo/vit_b_16.yaml"):
        net = analyze(SPECS / name)
        formula = training_memory(net, batch="B")
        for batch in (1, 3):
            numeric = training_memory(net, batch=batch)
            for key, value in formula.totals().items():
                at = value if isinstance(value, int) else value.subs(symbol("B"), batch)
                assert at == numeric.totals()[key], (name, key)


def test_symbolic_sizes_stay_formulas():
    net = analyze(SPECS / "quiz_conv.yaml", symbolic=True)
    m = training_memory(net, batch="B")
    assert str(m.saved_bytes) == "4*B*J*K*L"


def test_symbolic_unet_peak_is_its_numeric_peak_at_every_size():
    # regression: with S free, the working term's sizes (nested floors of S) are not
    # comparable for every S; sympy took minutes comparing them. Now an unevaluated Max.
    doc = _unet(None)
    formula = training_memory(analyze(doc), batch=2)
    for size in (188, 572):
        numeric = training_memory(analyze(_unet(size)), batch=2)
        for key, value in formula.totals().items():
            at = value if isinstance(value, int) else value.subs(symbol("S"), size).doit()
            assert at == numeric.totals()[key], (size, key)


def test_symbolic_densenet_peak_is_its_numeric_peak():
    # DenseNet's concatenations give thousands of working-pair candidates, each a multiple of
    # one resolution's size product: compared by their contents, not by subtracting (5.6 s)
    import yaml

    doc = yaml.safe_load((SPECS / "zoo" / "densenet121.yaml").read_text())
    doc.pop("expect", None)
    doc["input"], doc["symbols"] = [3, "H", "W"], {"H": None, "W": None}
    formula = training_memory(analyze(doc, symbolic=True))
    assert len(formula.working_bytes.args) <= 12  # 193 before: every pair at a resolution
    for h, w in ((224, 224), (97, 131)):
        numeric = training_memory(analyze(doc, H=h, W=w))
        for key, value in formula.totals().items():
            at = value if isinstance(value, int) else value.subs({symbol("H"): h, symbol("W"): w})
            assert at == numeric.totals()[key], (h, w, key)


def _unet(size):
    import yaml

    doc = yaml.safe_load((SPECS / "zoo/unet.yaml").read_text())
    doc["symbols"]["S"] = size
    doc.pop("expect", None)
    return doc


def test_torchinfo_block_reproduces_the_published_resnet152_printout():
    # torchinfo's README: ResNet-152 at batch 1
    block = training_memory(analyze(SPECS / "zoo/resnet152.yaml"), batch=1).torchinfo
    assert (block["input_mb"], block["forward_backward_pass_mb"], block["params_mb"],
            block["total_mb"]) == (0.60, 360.87, 240.77, 602.25)  # fmt: skip


def test_torchinfo_line_of_a_formula_is_its_exact_bytes_over_a_million(capsys):
    # torchinfo's megabytes are decimals; a formula's are its exact bytes, not 1.2e-5*H*W
    from archcalc.render.memory import memory_table

    net = analyze(SPECS / "quiz_conv.yaml", symbolic=True)
    line = next(text for text in memory_table(training_memory(net, batch="B")).splitlines()
                if text.startswith("torchinfo would print"))  # fmt: skip
    assert "input size (4*B*J*K*L + 64)/10^6" in line
    assert "e-" not in line and "." not in line.split(":", 1)[1]


def test_the_tables_rules_are_as_wide_as_its_widest_row():
    # ResNet-50's rows run to 147 characters (a maxpool's "input (counted earlier), int64
    # indices"); the rules stopped at 120
    from archcalc.render.memory import memory_table

    lines = memory_table(training_memory(analyze(SPECS / "zoo/resnet50.yaml"))).splitlines()
    rule = lines[0]
    table = lines[3 : lines.index(rule, 3)]
    assert set(rule) == {"="} and len(rule) == max(len(text) for text in table) > 120


@pytest.mark.parametrize("options, message", [
    ({"batch": 0}, "batch: expected a positive integer. Received: 0"),
    ({"dtype": "float64"}, "dtype: expected one of float32, float16, bfloat16. Received: 'float64'"),
    ({"optimizer": "lion"}, "optimizer: expected one of none, sgd, momentum, adam. Received: 'lion'"),
])  # fmt: skip
def test_bad_settings(options, message):
    with pytest.raises(ArchcalcError) as err:
        training_memory(analyze(spec([CONV], (3, 2, 2))), **options)
    assert str(err.value) == message


def test_solve_for_the_largest_batch_that_fits():
    net = SPECS / "zoo/resnet50.yaml"
    found = solve(net, ["batch"], ["memory.peak_bytes <= 16e9"], {"batch": (1, 10_000)})
    largest = max(s["batch"] for s in found.solutions)
    assert [s["batch"] for s in found.solutions] == list(range(1, largest + 1))
    analysis = analyze(net)
    assert training_memory(analysis, batch=largest).peak_bytes <= 16 * 10**9
    assert training_memory(analysis, batch=largest + 1).peak_bytes > 16 * 10**9
    cheaper = solve(net, ["batch"], ["memory.peak_bytes <= 16e9"], {"batch": (1, 10_000)},
                    memory=MemoryOptions(dtype="float16", optimizer="sgd"))  # fmt: skip
    assert max(s["batch"] for s in cheaper.solutions) > 2 * largest


def test_cli_memory_table_json_and_analyze_columns(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["memory", "specs/lenet5.yaml", "--batch", "4"]) == 0
    table = capsys.readouterr().out
    assert "training memory at batch 4, float32, adam optimizer" in table
    assert "torchinfo would print" in table
    assert main(["memory", "specs/lenet5.yaml", "--batch", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["saved_bytes"] == sum(layer["saved_bytes"] for layer in data["layers"]) + data[
        "merges_saved_bytes"]  # fmt: skip
    assert main(["analyze", "specs/lenet5.yaml", "--memory", "4", "--rf", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["layers"]
    assert [r["memory"]["saved_bytes"] for r in rows] == [r["saved_bytes"] for r in data["layers"]]
    assert rows[0]["receptive_field"]["size"] == [5, 5]
    assert main(["analyze", "specs/lenet5.yaml", "--memory", "B"]) == 0
    out = capsys.readouterr().out
    assert "Saved bytes (batch B)" in out
    total = next(line for line in out.splitlines() if line.startswith("Total "))
    assert total.split()[-1] == "35312*B"


def test_a_wide_memory_total_is_printed_under_the_table(tmp_path, capsys):
    layers = "".join("  - {type: conv2d, out_channels: 8, kernel_size: 3, stride: 2}\n"
                     for _ in range(6))  # fmt: skip
    path = tmp_path / "stages.yaml"
    path.write_text(f"name: stages\nsymbols: {{H: null}}\ninput: [3, H, H]\nlayers:\n{layers}")
    assert main(["analyze", str(path), "--memory", "B"]) == 0
    lines = capsys.readouterr().out.splitlines()
    total = next(line for line in lines if line.startswith("Total "))
    assert total.split()[-1] == "(below)"  # not a row as wide as the formula
    below = next(line for line in lines if line.startswith("Total Saved bytes (batch B): "))
    assert below.endswith(
        "12*B*H**2 + 32*B*h1**2 + 32*B*h2**2 + 32*B*h3**2 + 32*B*h4**2 + 32*B*h5**2"
    )


# ----------------------------------------------------------------------------- against PyTorch

torch = pytest.importorskip("torch")
from verify.build import build  # noqa: E402
from verify.memcheck import measure_saved_bytes  # noqa: E402

# One spec per layer type (and per way of keeping): archcalc's bytes equal PyTorch's, exactly.
TYPES = [
    [{"type": "conv2d", "out_channels": 4, "kernel_size": 3}],
    [CONV, {"type": "conv2d", "out_channels": 2, "kernel_size": 2, "padding": "same"}],
    [CONV, {"type": "conv2d", "out_channels": 2, "kernel_size": 3, "padding": [[0, 1], [1, 0]]}],
    [CONV, {"type": "conv_transpose2d", "out_channels": 2, "kernel_size": 2, "stride": 2}],
    *([CONV, {"type": t}] for t in ("relu", "relu6", "leaky_relu", "sigmoid", "tanh", "gelu", "silu",
                                    "hardswish", "hardsigmoid", "elu", "selu", "mish", "softplus",
                                    "hardtanh", "softmax", "log_softmax", "prelu", "identity")),
    [CONV, {"type": "maxpool2d", "kernel_size": 3, "stride": 2, "padding": 1}],
    [CONV, {"type": "avgpool2d", "kernel_size": 2}],
    [CONV, {"type": "adaptive_avgpool2d", "output_size": 1}],
    [CONV, {"type": "adaptive_avgpool2d", "output_size": 3}],
    [CONV, {"type": "adaptive_maxpool2d", "output_size": 2}],
    [CONV, {"type": "batchnorm2d"}],
    [CONV, {"type": "batchnorm2d", "affine": False}],
    [CONV, {"type": "layernorm", "normalized_shape": [8]}],
    [CONV, {"type": "group_norm", "num_groups": 2}],
    [CONV, {"type": "instance_norm2d", "affine": True}],
    [CONV, {"type": "local_response_norm", "size": 3}],
    [CONV, {"type": "dropout", "p": 0.3}],
    [CONV, {"type": "dropout2d", "p": 0.3}],
    [CONV, {"type": "stochastic_depth", "p": 0.2}],
    [CONV, {"type": "stochastic_depth", "p": 0.2, "mode": "batch"}],
    [CONV, {"type": "upsample", "scale_factor": 2, "mode": "bilinear"}],
    [CONV, {"type": "zero_pad", "padding": 1}],
    [CONV, {"type": "center_crop", "size": 4}, {"type": "conv2d", "out_channels": 2, "kernel_size": 1}],
    [CONV, {"type": "channel_shuffle", "groups": 2}],
    [CONV, {"type": "pixel_shuffle", "upscale_factor": 2}],
    [CONV, {"type": "mean", "dims": [1, 2]}],
    [CONV, {"type": "narrow", "dim": 0, "start": 1, "length": 2}, {"type": "conv2d", "out_channels": 2, "kernel_size": 1}],
    [CONV, {"type": "transpose", "dim0": 1, "dim1": 2}, {"type": "flatten"}, {"type": "linear", "out_features": 3}],
    [CONV, {"type": "conv2d", "out_channels": 4, "kernel_size": 1, "name": "b"}, {"type": "add", "inputs": ["a", "b"]}],
    [CONV, {"type": "conv2d", "out_channels": 4, "kernel_size": 1, "name": "b"},
     {"type": "conv2d", "out_channels": 4, "kernel_size": 1, "name": "c"}, {"type": "mul", "inputs": ["a", "b", "c"]}],
    [CONV, {"type": "conv2d", "out_channels": 4, "kernel_size": 1, "name": "b"}, {"type": "concat", "inputs": ["a", "b"]}],
    [CONV, {"type": "conv2d", "out_channels": 4, "kernel_size": 1, "name": "b"}, {"type": "matmul", "inputs": ["a", "b"]}],
    [CONV, {"type": "parameter", "shape": [4, 1, 1], "name": "s"}, {"type": "mul", "inputs": ["a", "s"]}],
]  # fmt: skip
TOKENS = [
    [{"type": "linear", "out_features": 8}, {"type": "multihead_attention", "num_heads": 2}],
    [{"type": "linear", "out_features": 8}, {"type": "multihead_attention", "num_heads": 2, "dropout": 0.1}],
    [{"type": "linear", "out_features": 8}, {"type": "transpose", "dim0": 0, "dim1": 1},
     {"type": "linear", "out_features": 2}],
    [{"type": "linear", "out_features": 8}, {"type": "narrow", "dim": 0, "start": 0, "length": 1},
     {"type": "flatten"}, {"type": "linear", "out_features": 2}],
]  # fmt: skip


def _measure(analysis, batch=3):
    torch.manual_seed(0)
    model = build(analysis)
    x = torch.randn(batch, *[int(n) for n in analysis.input])
    return measure_saved_bytes(model, x)


@pytest.mark.parametrize("layers, shape", [(t, (3, 8, 8)) for t in TYPES] + [(t, (5, 8)) for t in TOKENS],
                         ids=lambda v: "-".join(item["type"] for item in v) if isinstance(v, list) else None)  # fmt: skip
def test_saved_bytes_equal_pytorch(layers, shape):
    analysis = analyze(spec(layers, shape))
    assert training_memory(analysis, batch=3).saved_bytes == _measure(analysis)


@pytest.mark.parametrize("name", ["lenet5.yaml", "zoo/lenet5_1998.yaml", "zoo/squeezenet1_1.yaml",
                                  "zoo/mobilenet_v3_small.yaml", "zoo/shufflenet_v2_x1_0.yaml"])  # fmt: skip
def test_shipped_specs_saved_bytes_equal_pytorch(name):
    analysis = analyze(SPECS / name)
    assert training_memory(analysis, batch=3).saved_bytes == _measure(analysis)


@pytest.mark.parametrize("name", ["lenet5.yaml", "zoo/resnet18.yaml", "zoo/vit_b_16.yaml",
                                  "zoo/efficientnet_b0.yaml"])  # fmt: skip
@pytest.mark.parametrize("batch", [1, 3])
def test_torchinfo_block_equals_torchinfo(name, batch):
    torchinfo = pytest.importorskip("torchinfo")
    analysis = analyze(SPECS / name)
    model = build(analysis).eval()
    summary = torchinfo.summary(model, input_size=(batch, *model.input_shape), verbose=0)
    block = training_memory(analysis, batch=batch).torchinfo
    assert (block["input_bytes"], block["forward_backward_pass_bytes"], block["params_bytes"]) == (
        summary.total_input, summary.total_output_bytes, summary.total_param_bytes)  # fmt: skip
