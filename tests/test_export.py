"""archcalc export: every shipped spec as PyTorch code that builds verify's model, and back.

The exported file must import with torch alone, have exactly verify.build's parameters
(in the same order) and shapes, and compute the same function with the same weights;
importing it again (archcalc import) gives the same counts; ONNX's own shape inference
agrees with archcalc on every row (where the onnx package is installed).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="archcalc export needs the [verify] extra")

from archcalc import analyze  # noqa: E402
from archcalc.cli import main  # noqa: E402
from archcalc.language.writer import to_yaml  # noqa: E402
from tests.conftest import SPECS  # noqa: E402
from verify.build import build  # noqa: E402
from verify.exporter import export_onnx, export_pytorch, exported_module, onnx_shapes  # noqa: E402
from verify.importer import import_module  # noqa: E402

SHIPPED = [p.name for p in sorted(SPECS.glob("*.yaml")) if not p.name.startswith("quiz_")]
SHIPPED += [f"zoo/{p.name}" for p in sorted(SPECS.glob("zoo/*.yaml"))]
SMALL = {"zoo/unet.yaml": {"S": 188}}  # sizes for the heavy ones


@pytest.mark.parametrize("name", SHIPPED)
def test_exported_code_is_verify_model(name):
    analysis = analyze(SPECS / name, **SMALL.get(name, {}))
    source = export_pytorch(analysis, "Exported")
    compile(source, name, "exec")  # valid Python
    assert "import archcalc" not in source and "from verify" not in source
    exported = exported_module(source, "Exported").eval()
    assert sum(p.numel() for p in exported.parameters()) == analysis.totals["params"]
    assert_computes_verify_model(exported, analysis)


def assert_computes_verify_model(module, analysis) -> None:
    """``module`` has verify's model's parameters (same order, same shapes) and, given its
    weights, the same outputs, of the analysis's shapes."""
    reference = build(analysis).eval()
    mine, theirs = list(module.parameters()), list(reference.parameters())
    assert [tuple(p.shape) for p in mine] == [tuple(p.shape) for p in theirs]
    with torch.no_grad():
        for a, b in zip(mine, theirs):
            a.copy_(b)
        for a, b in zip(module.buffers(), reference.buffers()):
            a.copy_(b)
        x = torch.randn(2, *analysis.input)
        out, expected = module(x), reference(x)
    out = out if isinstance(out, tuple) else (out,)
    expected = expected if isinstance(expected, tuple) else (expected,)
    for a, b, shape in zip(out, expected, analysis.outputs):
        assert tuple(a.shape[1:]) == tuple(shape)
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_exported_code_reads_like_the_course():
    source = export_pytorch(analyze(SPECS / "lenet5.yaml"), "LeNet5")
    assert "self.fc1 = nn.Linear(16 * 4 * 4, 120)" in source  # the size worked out, shown
    assert "x = self.conv1(x)  # [6, 24, 24]" in source
    assert "nn.MaxPool2d(kernel_size=2, stride=2)" in source
    assert (
        'torch.nn.init.kaiming_normal_(self.conv1.weight, mode="fan_in", nonlinearity="relu")'
        in source
    )
    model = exported_module(source, "LeNet5")
    model.init_weights()
    assert float(model.conv1.bias.abs().sum()) == 0.0


@pytest.mark.parametrize("name", ["lenet5.yaml", "atari_dqn.yaml", "zoo/resnet18.yaml",
                                  "zoo/googlenet.yaml", "zoo/mobilenet_v3_small.yaml",
                                  "zoo/vit_b_16.yaml", "zoo/shufflenet_v2_x1_0.yaml"])  # fmt: skip
def test_export_then_import_gives_the_same_network(name):
    analysis = analyze(SPECS / name)
    module = exported_module(export_pytorch(analysis, "Exported"), "Exported").eval()
    again = analyze(to_yaml(import_module(module, tuple(analysis.input), name="again").spec))
    assert again.totals["params"] == analysis.totals["params"]
    assert again.totals["macs"] == analysis.totals["macs"]
    assert again.outputs == analysis.outputs


@pytest.mark.parametrize("name", [n for n in SHIPPED if not n.startswith("zoo/")] + [
    "zoo/resnet18.yaml", "zoo/googlenet.yaml", "zoo/mobilenet_v2.yaml", "zoo/squeezenet1_1.yaml",
    "zoo/unet.yaml", "zoo/dcgan_generator.yaml", "zoo/vit_b_16.yaml"])  # fmt: skip
def test_onnx_shape_inference_agrees(name, tmp_path):
    pytest.importorskip("onnx")
    analysis = analyze(SPECS / name, **SMALL.get(name, {}))
    path = str(tmp_path / "net.onnx")
    export_onnx(analysis, path, probe=True)
    shapes = onnx_shapes(path)
    rows = [row for row in analysis.rows if row.type != "parameter"]
    assert {row.path: list(row.output) for row in rows} == {
        row.path: shapes[row.path][1:] for row in rows
    }


def test_export_command(tmp_path, capsys):
    out = tmp_path / "dqn.py"
    assert main(["export", str(SPECS / "atari_dqn.yaml"), "-o", str(out)]) == 0
    assert "class AtariDqn(nn.Module):" in out.read_text()
    assert main(["export", str(SPECS / "quiz_conv.yaml")]) == 1
    assert "export needs numbers" in capsys.readouterr().err


@pytest.mark.parametrize(
    "module, code",
    [  # torch's repr of these leaves arguments out, or is not Python
        (torch.nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False),
         "nn.AvgPool2d(kernel_size=2, stride=2, ceil_mode=True, count_include_pad=False)"),
        (torch.nn.AvgPool2d(3, divisor_override=2),
         "nn.AvgPool2d(kernel_size=3, stride=3, divisor_override=2)"),
        (torch.nn.Conv2d(2, 4, 3, padding="same", bias=False),
         "nn.Conv2d(2, 4, kernel_size=3, padding='same', bias=False)"),
        (torch.nn.MaxPool2d(3, 2, ceil_mode=True), "nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)"),
    ],
)  # fmt: skip
def test_constructor_code_builds_the_same_module(module, code):
    from verify.exporter import module_code

    assert module_code(module) == code
