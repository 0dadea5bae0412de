"""archcalc import: modules written here traced into specs that compute the same function.

Every case is imported, analysed, built by verify and loaded with the module's own
weights; the outputs must agree to double precision and the counts must equal the
module's. torchvision is used only where it can be imported (see torchvision_models).
"""

from __future__ import annotations

import json
import re

import pytest

torch = pytest.importorskip("torch", reason="archcalc import needs the [verify] extra")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from archcalc import analyze  # noqa: E402
from archcalc.cli import main  # noqa: E402
from archcalc.errors import ArchcalcError  # noqa: E402
from archcalc.language.writer import to_yaml  # noqa: E402
from verify.build import build  # noqa: E402
from verify.importer import import_module  # noqa: E402
from verify.source import source_checks  # noqa: E402

CPU = torch.device("cpu")


class LeNet5(nn.Module):
    """The course's LeNet-5 exercise on 28x28 MNIST."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(256, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(x.size(0), -1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Block(nn.Module):
    """A residual block with a projection shortcut where the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else None)  # fmt: skip

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (self.down(x) if self.down is not None else x))


class ResNetLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.Sequential(
            Block(8, 8, 1), Block(8, 8, 1), Block(8, 16, 2), Block(16, 16, 1)
        )
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        return self.head(torch.flatten(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


class Inception(nn.Module):
    """Branches concatenated along the channels."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 3, 1)
        self.b = nn.Sequential(nn.Conv2d(4, 2, 1), nn.ReLU(), nn.Conv2d(2, 5, 3, padding=1))
        self.pool = nn.MaxPool2d(3, 1, 1)

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x), self.pool(x)], dim=1)


class SqueezeExcite(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc1, self.fc2 = nn.Conv2d(16, 4, 1), nn.Conv2d(4, 16, 1)

    def forward(self, x):
        x = F.relu(self.conv(x))
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * gate


class TinyViT(nn.Module):
    """Patches, a class token, a position embedding, one pre-norm encoder layer."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 4, 4)
        self.cls = nn.Parameter(torch.zeros(1, 1, 16))
        self.pos = nn.Parameter(torch.randn(1, 17, 16) * 0.02)
        self.ln1, self.ln2 = nn.LayerNorm(16), nn.LayerNorm(16)
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        y = self.ln1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        x = x + self.mlp(self.ln2(x))
        return self.head(x[:, 0])


class Shuffle(nn.Module):
    """ShuffleNet's unit: split the channels, process half, concatenate, interleave."""

    def __init__(self):
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU())

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        out = torch.cat([a, self.branch(b)], dim=1)
        n, c, h, w = out.shape
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


class SwishConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.c, self.act = nn.Conv2d(3, 3, 1), Swish()

    def forward(self, x):
        return self.act(self.act(self.c(x)))


class CalledTwice(nn.Module):
    """A module without weights called twice in a row, in the network and in a block."""

    def __init__(self):
        super().__init__()
        self.act, self.conv = Swish(), nn.Conv2d(3, 3, 3, padding=1)
        self.blk, self.blk2 = SwishConv(), SwishConv()

    def forward(self, x):
        return self.blk2(self.blk(self.act(self.act(self.conv(self.act(x))))))


CASES = [
    (LeNet5, (1, 28, 28), 44426),
    (ResNetLike, (3, 16, 16), None),
    (Inception, (4, 8, 8), None),
    (SqueezeExcite, (3, 8, 8), None),
    (TinyViT, (3, 16, 16), None),
    (Shuffle, (8, 6, 6), None),
    (CalledTwice, (3, 8, 8), None),
]


@pytest.mark.parametrize("cls, shape, params", CASES, ids=[c[0].__name__ for c in CASES])
def test_imported_specs_compute_the_same_function(cls, shape, params):
    torch.manual_seed(0)
    module = cls()
    imported = import_module(module, shape, name=cls.__name__,
                             source={"module": "tests", "kwargs": {}})  # fmt: skip
    text = to_yaml(imported.spec)
    analysis = analyze(text)  # the text reads back
    total = sum(p.numel() for p in module.parameters())
    assert analysis.totals["params"] == total == (params or total)
    model = build(analysis)
    checks = source_checks(analysis, model, CPU, module=module)
    assert [(c.name, c.passed) for c in checks] == [
        ("source:params", True), ("source:macs", True), ("source:output", True)
    ], [(c.name, c.expected, c.measured, c.detail) for c in checks]  # fmt: skip


def test_the_written_spec_reads_like_one():
    imported = import_module(ResNetLike(), (3, 16, 16), name="resnet-like")
    text = to_yaml(imported.spec)
    # a block for the repeated submodule, called once per instance, its width a parameter
    assert "blocks:\n  Block:\n" in text
    assert "- {name: blocks.0, type: Block, out_channels: 8}" in text
    assert "- {name: blocks.2, type: Block_2}" in text  # one instance: no parameters
    assert "{name: stem, type: conv2d, out_channels: 8, kernel_size: 3, padding: 1}" in text
    # named inputs only where the graph branches
    assert text.count("input: ") + text.count("inputs: ") <= 6


def test_unsupported_operations_are_named_with_what_was_understood():
    class Rolling(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3)

        def forward(self, x):
            return torch.roll(self.conv(x), 1, dims=2)

    with pytest.raises(ArchcalcError) as info:
        import_module(Rolling(), (3, 8, 8))
    message = str(info.value)
    assert message.startswith(
        "cannot import Rolling: 1 of 2 operations have no spec equivalent: roll"
    )
    assert "function torch" in message and message.endswith("understood 1 of 2")


class Stage(nn.Module):
    """Pools only while the image is larger than 8: Python control flow on a shape."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU6(inplace=True)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        x = self.act(self.bn(self.conv(x)))
        if x.shape[-1] > 8:
            x = self.pool(x)
        return x


class Pyramid(nn.Module):
    def __init__(self):
        super().__init__()
        self.stages = nn.Sequential(Stage(3, 8), Stage(8, 8), Stage(8, 16), Stage(16, 16))
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        if x.size(1) != 3:
            raise ValueError(f"expected 3 channels, got {x.size(1)}")
        x = self.stages(x)
        return self.fc(self.drop(F.relu6(x.mean((2, 3)))))


class Residual(nn.Module):
    """Adds its input only where the channels match (checked in Python), in place."""

    def __init__(self, c):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        identity = x
        out = self.conv2(self.relu(self.conv1(x)))
        if out.shape[1] == identity.shape[1]:
            out += identity
        return self.relu(out)


class ResidualNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.layers = nn.ModuleList([Residual(8) for _ in range(3)])
        self.head = nn.Linear(8 * 16, 4)

    def forward(self, x):
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        x = F.adaptive_avg_pool2d(x, (4, 4))
        return self.head(x.reshape(x.shape[0], -1))


def _proved(module, shape, **options):
    """The module imported, analysed, built and checked against itself (check 7)."""
    training = options.get("training", False)
    source = {"module": "tests", "kwargs": {}, **({"training": True} if training else {})}
    imported = import_module(module, shape, name=type(module).__name__, source=source, **options)
    text = to_yaml(imported.spec)
    analysis = analyze(text)
    assert analysis.totals["params"] == sum(p.numel() for p in module.parameters())
    checks = source_checks(analysis, build(analysis), CPU, module=module)
    assert [(c.name, c.passed) for c in checks] == [
        ("source:params", True), ("source:macs", True), ("source:output", True)
    ], [(c.name, c.expected, c.measured, c.detail) for c in checks]  # fmt: skip
    return imported, text


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_shape_dependent_control_flow_is_imported_through_torch_export(training):
    from verify.importer import _Tracer

    torch.manual_seed(0)
    module = Pyramid()
    with pytest.raises(Exception, match="symbolically traced variables"):
        _Tracer().trace(module)  # torch.fx cannot: `if x.shape[-1] > 8`
    imported, text = _proved(module, (3, 32, 32), training=training)
    assert imported.method.startswith("torch.export, at this input shape; torch.fx could not "
                                      "trace it (TraceError: symbolically traced")  # fmt: skip
    assert f"archcalc import ({imported.method})" in " ".join(text.split())
    # as readable as fx's: the stages that pool (32 and 16 wide) are one block, the others another
    assert "blocks:\n  Stage:\n" in text and "  Stage_2:\n" in text
    assert "- {name: stages.1, type: Stage}" in text and "- {name: stages.3, type: Stage_2}" in text
    assert "      - {name: pool, type: maxpool2d, kernel_size: 2, stride: 2}" in text
    assert text.count("pool, type: maxpool2d") == 1  # Stage_2 (8 wide) does not pool
    assert (
        "- {name: relu6, type: relu6}" in text and "- {name: drop, type: dropout, p: 0.2}" in text
    )


def test_a_residual_module_fx_cannot_trace_adds_its_named_input():
    torch.manual_seed(0)
    imported, text = _proved(ResidualNet(), (3, 8, 8))
    assert imported.method.startswith("torch.export")
    assert "blocks:\n  Residual:\n" in text
    assert "- {name: add, type: add, inputs: [conv2, input]}" in text  # `out += identity`
    assert "- {name: layers.2, type: Residual}" in text
    assert "- {name: reshape, type: reshape, shape: [128]}" in text


@pytest.mark.parametrize("cls, shape, params", CASES, ids=[c[0].__name__ for c in CASES])
def test_the_export_fallback_writes_what_fx_writes(cls, shape, params, monkeypatch):
    """Every module fx traces, imported through torch.export instead: the same spec (names of
    operations may differ: fx's ``getitem`` is export's ``select``), proved by check 7."""
    import verify.importer

    def layers(spec):
        return [(item["type"], {k: v for k, v in item.items() if k not in ("name", "input", "inputs")})
                for item in spec["layers"]], spec.get("blocks")  # fmt: skip

    torch.manual_seed(0)
    module = cls()
    by_fx = import_module(module, shape)

    def refuse(*args, **kwargs):
        raise RuntimeError("refused for the test")

    monkeypatch.setattr(verify.importer._Tracer, "trace", refuse)
    imported, _ = _proved(module, shape)
    assert imported.method.endswith("(RuntimeError: refused for the test)")
    assert layers(imported.spec) == layers(by_fx.spec)
    assert imported.operations == by_fx.operations


def test_data_dependent_control_flow_is_a_clear_error(capsys):
    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(ArchcalcError) as info:
        import_module(Branchy(), (3,))
    message = str(info.value)
    assert re.match(
        r"torch.fx cannot trace Branchy \(TraceError: symbolically traced variables .*\), nor can "
        r"torch.export \(GuardOnDataDependentSymNode: Could not guard on data-dependent .*\); "
        r"data-dependent control flow or an untraceable operation$", message
    ), message  # fmt: skip
    assert "\n" not in message
    assert capsys.readouterr().err == ""  # torch.export's partial graph is not printed


def test_an_operation_without_equivalent_is_named_in_an_export_traced_module():
    class Rolled(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.pad = nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")

        def forward(self, x):
            if x.shape[-1] > 4:
                x = self.conv(x)
            return torch.cat([torch.roll(x, 1, dims=2), self.pad(x)], dim=1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(Rolled(), nn.ReLU())

        def forward(self, x):
            return self.body(x)

    with pytest.raises(ArchcalcError) as info:
        import_module(Net(), (3, 8, 8))
    assert str(info.value) == (
        "cannot import Net: 4 of 5 operations have no spec equivalent: "
        "roll in body.0 (function aten.roll.default): ATen operation aten.roll.default has no "
        "spec equivalent; body.0.pad (module): padding_mode='reflect'; "
        "cat in body.0 (function cat): reads something that is not a tensor; and 1 more; "
        "understood 1 of 5"
    )
    # the same places as torch.fx names them where it can trace
    Rolled.forward = lambda self, x: torch.cat([torch.roll(self.conv(x), 1, dims=2),
                                                self.pad(self.conv(x))], dim=1)  # fmt: skip
    with pytest.raises(ArchcalcError, match=r": roll in body.0 \(function roll\): function "
                       r"torch\S*roll has no spec equivalent; body.0.pad \(module\)"):  # fmt: skip
        import_module(Net(), (3, 8, 8))


def test_import_command_writes_a_spec_that_verify_proves(tmp_path, capsys):
    source = tmp_path / "net.py"
    source.write_text(
        "import torch\nfrom torch import nn\n"
        "def make(width=8):\n"
        "    return nn.Sequential(nn.Conv2d(1, width, 3), nn.ReLU(), nn.Flatten(), "
        "nn.Linear(width * 26 * 26, 10))\n",
        encoding="utf-8",
    )
    out = tmp_path / "net.yaml"
    code = main(["import", f"{source}:make", "--input", "1,28,28", "--kwargs", json.dumps({"width": 4}),
                 "-o", str(out)])  # fmt: skip
    assert code == 0
    assert "4 layers, 27,090 parameters" in capsys.readouterr().err
    text = out.read_text()
    assert "source: {module: " in text and "kwargs: {width: 4}" in text
    code = main(["verify", str(out), "--steps", "0", "--seeds", "1", "--schemes", "recommended"])
    report = capsys.readouterr().out
    assert code == 0, report
    assert "source" in report


def test_import_command_says_when_torch_export_traced(tmp_path, capsys):
    source = tmp_path / "branchy.py"
    source.write_text(
        "from torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv, self.pool = nn.Conv2d(1, 4, 3), nn.MaxPool2d(2)\n"
        "    def forward(self, x):\n"
        "        x = self.conv(x)\n"
        "        return self.pool(x) if x.shape[-1] > 8 else x\n"
        "def make():\n"
        "    return Net()\n",
        encoding="utf-8",
    )
    out = tmp_path / "branchy.yaml"
    assert main(["import", f"{source}:make", "--input", "1,12,12", "-o", str(out)]) == 0
    assert capsys.readouterr().err == (
        f"{out}: 2 layers, 40 parameters, 3,600 MACs (torch.export, at this input shape; torch.fx "
        "could not trace it (TraceError: symbolically traced variables cannot be used as inputs "
        "to control flow), 2 operations)\n"
    )
    assert 'method: "torch.export, at this input shape' in " ".join(out.read_text().split())
    code = main(["verify", str(out), "--steps", "0", "--seeds", "1", "--schemes", "recommended"])
    report = capsys.readouterr().out
    assert code == 0 and "source" in report, report


def test_each_call_of_a_module_is_its_own_block_call():
    text = to_yaml(import_module(CalledTwice(), (3, 8, 8)).spec)
    calls = [line.strip() for line in text.splitlines() if "type: Swish}" in line]
    assert calls == [
        "- {name: act, type: Swish}", "- {name: act_2, type: Swish}",  # the block's (first)
        "- {name: act, type: Swish}", "- {name: act_2, type: Swish}",  # then the network's
        "- {name: act_3, type: Swish}",
    ]  # fmt: skip
    assert text.count("type: SwishConv}") == 2


def test_weights_used_twice_are_refused():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return self.conv(self.conv(x))

    with pytest.raises(ArchcalcError) as info:
        import_module(Shared(), (3, 8, 8))
    assert str(info.value) == (
        "cannot import Shared: module 'conv' (Conv2d, 84 parameters) is used 2 times with the "
        "same weights (at conv, conv_1); a spec gives every layer its own weights, so archcalc "
        "cannot count them as PyTorch does"
    )


def test_import_errors_are_one_line(tmp_path, capsys):
    assert main(["import", "nowhere.module:make", "--input", "3"]) == 1
    assert capsys.readouterr().err == (
        "archcalc: error: cannot import nowhere.module: no module named 'nowhere'\n"
    )
    with pytest.raises(SystemExit):
        main(["import", "x:y", "--input", "3,a"])
    assert "expected sizes like 3,224,224" in capsys.readouterr().err


TORCHVISION = ["resnet18", "mobilenet_v3_small", "shufflenet_v2_x0_5", "squeezenet1_1",
               "efficientnet_b0", "densenet121", "vit_b_32", "convnext_tiny", "regnet_y_400mf"]  # fmt: skip


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_models_import_to_their_published_figures(name):
    from tests.torchvision_models import import_torchvision

    tv = import_torchvision()
    if tv is None:
        pytest.skip("torchvision cannot be imported here")
    torch.manual_seed(0)
    weights = tv.models.get_model_weights(name).DEFAULT
    module = tv.models.get_model(name, weights=None)
    analysis = analyze(to_yaml(import_module(module, (3, 224, 224), name=name).spec))
    assert analysis.totals["params"] == weights.meta["num_params"]
    ops = weights.meta["_ops"]
    digits = len(f"{ops}".replace(".", "").lstrip("0"))
    assert float(f"{analysis.totals['macs'] / 1e9:.{digits}g}") == float(f"{ops:.{digits}g}")
    model = build(analysis)
    checks = source_checks(analysis, model, CPU, module=module)
    assert all(c.passed for c in checks), [(c.name, c.expected, c.measured) for c in checks]


# --------------------------------------------------------------------------- --symbolic


def test_symbolic_input_sizes_answer_for_every_size():
    """ResNetLike ends in an adaptive pool: nothing in it depends on the image size, so the
    spec with H, W symbols gives, at another size, what importing at that size gives."""
    torch.manual_seed(0)
    module = ResNetLike()
    imported = import_module(module, (3, 16, 16), name="r", symbolic="H,W",
                             source={"module": "tests", "kwargs": {}})  # fmt: skip
    spec = imported.spec
    assert spec["symbols"] == {"H": 16, "W": 16} and spec["input"] == [3, "H", "W"]
    assert list(spec)[:4] == ["name", "description", "symbols", "input"]
    assert (
        "input sizes H, W symbolic (the same spec imported at 3x16x16 and 3x32x32)"
        in (spec["description"])
    )
    text = to_yaml(spec)
    for h, w in ((16, 16), (20, 28), (33, 17)):
        here = analyze(to_yaml(import_module(module, (3, h, w), name="r").spec))
        there = analyze(text, H=h, W=w)
        assert there.totals == here.totals and there.output == here.output
    symbolic = analyze(text, symbolic=True)
    assert symbolic.totals["params"] == sum(p.numel() for p in module.parameters())
    assert {str(s) for s in symbolic.totals["macs"].free_symbols} == {"H", "W"}
    analysis = analyze(text)  # the example's sizes are the defaults: check 7 as usual
    checks = source_checks(analysis, build(analysis), CPU, module=module)
    assert all(c.passed for c in checks), [(c.name, c.detail) for c in checks]


def test_symbolic_input_of_a_module_that_takes_one_size_is_refused():
    with pytest.raises(ArchcalcError) as info:
        import_module(LeNet5(), (1, 28, 28), symbolic="H,W")
    assert str(info.value).startswith(
        "--symbolic H,W: the module does not run at 1x32x32 (RuntimeError: mat1 and mat2 "
        "shapes cannot be multiplied"
    )
    assert str(info.value).endswith(
        "it takes only its example's size: import it without --symbolic"
    )


def test_symbolic_input_with_a_size_copied_from_the_input_names_the_item():
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Conv2d(3, 8, 4, stride=4)

        def forward(self, x):
            n, _, h, w = x.shape
            return self.proj(x).reshape(n, 8, (h // 4) * (w // 4))

    with pytest.raises(ArchcalcError, match=(
        r"^--symbolic H,W: layers\[1\] \(reshape\)\.shape\[1\] is 64 at 3x32x32 but 256 at "
        r"3x64x64: it depends on the input size in a way the importer cannot write as a "
        r"formula; import at a fixed size \(without --symbolic\)$"
    )):  # fmt: skip
        import_module(Tokens(), (3, 32, 32), symbolic="H,W")


@pytest.mark.parametrize("names, message", [
    ("H,W,C,D", "--symbolic names up to 3 trailing input dimensions, one name each. "
                "Received: --symbolic H,W,C,D for an input of 3 dimensions"),
    ("H,C_in", "--symbolic: 'C_in' cannot name a symbol"),
    ("H,H", "--symbolic: each name once. Received: H,H"),
    ("H-1,W", "--symbolic: 'H-1' cannot name a symbol"),
])  # fmt: skip
def test_symbolic_names_are_checked_before_anything_is_traced(names, message):
    with pytest.raises(ArchcalcError) as info:
        import_module(ResNetLike(), (3, 16, 16), symbolic=names)
    assert str(info.value).startswith(message)


def test_import_command_writes_symbolic_sizes(tmp_path, capsys):
    module_file = tmp_path / "net.py"
    module_file.write_text(
        "from torch import nn\n"
        "def make(width):\n"
        "    return nn.Sequential(nn.Conv2d(3, width, 3, stride=2), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))\n"
    )
    out = tmp_path / "net.yaml"
    assert main(["import", f"{module_file}:make", "--input", "3,32,40", "--kwargs",
                 '{"width": 4}', "--symbolic", "H,W", "-o", str(out)]) == 0  # fmt: skip
    text = out.read_text()
    assert "symbols: {H: 32, W: 40}\ninput: [3, H, W]\n" in text
    assert main(["analyze", str(out), "--set", "H=64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layers"][0]["output"] == [4, 31, 19]  # floor((64-3)/2) + 1, floor((40-3)/2) + 1
