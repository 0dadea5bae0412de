"""verify: every shipped spec built in PyTorch, checked, trained; and verify must be able to fail."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="verify needs the [verify] extra")
pytest.importorskip("torchinfo")
pytest.importorskip("sklearn")

from archcalc import analyze  # noqa: E402
from tests.conftest import ROOT, SPECS  # noqa: E402
from verify.build import build  # noqa: E402
from verify.checks import mac_checks, param_checks, shape_checks, torchinfo_checks  # noqa: E402
from verify.initcheck import init_checks  # noqa: E402
from verify.runner import run  # noqa: E402

CPU = torch.device("cpu")
#: Sizes for the heavy ones (U-Net at 572 costs 150 GMACs a sample; 188 is a valid size too).
VALUES = {"zoo/unet.yaml": {"S": 188}}
NUMERIC = [p.name for p in sorted(SPECS.glob("*.yaml")) if not p.name.startswith("quiz_")]
NUMERIC += [f"zoo/{p.name}" for p in sorted(SPECS.glob("zoo/*.yaml"))]


def failures(checks):
    return [(c.name, c.expected, c.measured, c.detail) for c in checks if not c.passed]


@pytest.mark.parametrize("name", NUMERIC)
def test_structure_checks_pass_for_every_shipped_spec(name):
    analysis = analyze(SPECS / name, **VALUES.get(name, {}))
    model = build(analysis)
    checks = (shape_checks(analysis, model, CPU) + param_checks(analysis, model)
              + mac_checks(analysis, model, CPU) + torchinfo_checks(analysis, model, CPU))  # fmt: skip
    assert len(checks) > 3 * len(analysis.rows)
    assert failures(checks) == []


def test_parameter_names_follow_spec_paths():
    model = build(SPECS / "atari_dqn.yaml")
    names = [name for name, _ in model.named_parameters()]
    assert names == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                     "layers.3.weight", "layers.3.bias", "layers.4.weight", "layers.4.bias"]  # fmt: skip
    resnet = build(ROOT / "specs" / "zoo" / "resnet152.yaml")
    row = analyze(ROOT / "specs" / "zoo" / "resnet152.yaml").row(
        "layers[7][2].layers[0].layers[0].body[3]"
    )
    assert row.type == "conv2d"  # repeat iteration 2, block call, residual body
    params = dict(resnet.named_parameters())
    assert params["layers.7.2.layers.0.layers.0.body.3.weight"] is resnet.by_path[row.path].weight
    assert sum(p.numel() for p in resnet.parameters()) == 60192808


INIT_SPECS = [
    ("deep_relu_mlp.yaml", ["recommended", "lecun", "torch_default"], 4),
    ("deep_tanh_mlp.yaml", ["recommended", "kaiming"], 4),
    ("deep_relu_bn.yaml", ["recommended", "torch_default"], 4),
    ("lenet5.yaml", ["recommended", "xavier", "lecun", "torch_default"], 4),
    ("lenet5_32.yaml", ["recommended", "torch_default"], 4),
    ("atari_dqn.yaml", ["recommended", "lecun"], 4),
    ("alexnet_conv1_224.yaml", ["recommended", "kaiming"], 3),
    ("alexnet.yaml", ["recommended"], 2),
]  # fmt: skip
#: Check 5 on every zoo spec (224x224 models: a batch of 8, two seeds, to keep CI in minutes).
INIT_SPECS += [(f"zoo/{p.name}", ["recommended"], 2) for p in sorted(SPECS.glob("zoo/*.yaml"))]
#: What archcalc's init model is known to miss, with why: every other check must pass, and each
#: known miss must still fail (so that fixing one shows here). All are backward predictions.
#: SE: the gradient reaching a squeeze-and-excitation gate sums x·G over the positions; the
#: model takes those terms as independent, but in the last blocks (7x7 maps) they are not, and
#: the measured gradient is 3-20x larger. Inception-v3: the pool branch's 1x1 convolution after
#: a stride-1 3x3 average pool over correlated neighbours (no spatial correlation is modelled).
KNOWN_INIT_MISSES = {
    "zoo/efficientnet_b0.yaml": ("SE gates", ["layers[16]."]),
    "zoo/efficientnet_v2_s.yaml": ("SE gates", ["layers[3", "layers[40]"]),
    "zoo/mobilenet_v3_large.yaml": ("SE gates", ["layers[14].", "layers[15]."]),
    "zoo/mobilenet_v3_small.yaml": ("SE gates", ["layers[1"]),
    "zoo/regnet_y_400mf.yaml": ("SE gates", ["layers[7]["]),
    "zoo/inception_v3.yaml": ("average pool over correlated neighbours",
                              [".branches[3][1]"]),
}  # fmt: skip


@pytest.mark.parametrize("name, schemes, seeds", INIT_SPECS)
def test_init_predictions_match_pytorch(name, schemes, seeds):
    analysis = analyze(SPECS / name, **VALUES.get(name, {}))
    model = build(analysis)
    batch = 8 if analysis.input[-1] >= 150 else 64
    checks, curves = init_checks(analysis, model, schemes, CPU, seeds=seeds, batch=batch)
    assert set(curves) == set(schemes)
    failed = failures(checks)
    reason, places = KNOWN_INIT_MISSES.get(name, ("", []))
    unexpected = [f for f in failed if not any(p in f[0] for p in places)]
    assert unexpected == []
    if places:  # a known miss that passes now: the model improved, update KNOWN_INIT_MISSES
        assert failed, f"{name}: the known init misses ({reason}) all pass now"


def test_lenet5_trains_to_95_percent_on_digits():
    result = run(SPECS / "lenet5.yaml", steps=300, schemes=["recommended"], seeds=2, progress=False)
    assert result.passed, failures(result.checks)
    assert result.training.test_accuracy >= 0.95
    assert result.training.final_loss < result.training.losses[0]


def test_he_2015_thirty_layers_learn_with_2_over_n_and_stall_with_1_over_n():
    result = run(SPECS / "deep_relu_mlp.yaml", steps=400, lr=0.005, schemes=["recommended"], seeds=1,
                 compare=["kaiming", "lecun"], progress=False)  # fmt: skip
    kaiming, lecun = result.compare["kaiming"], result.compare["lecun"]
    # DOMAIN.md: about 95 % with 2/n; measured here 83-97 % over seeds 0-3 (97 % at seed 0)
    assert kaiming.train_accuracy >= 0.8
    assert lecun.train_accuracy <= 0.2 and lecun.final_loss > 2.2  # chance: ln 10 = 2.303
    assert "healthy" in result.predictions["kaiming"]
    assert "vanishing signal" in result.predictions["lecun"]


def test_training_progress_is_plain_lines_when_not_on_a_terminal(capsys):
    from verify.data import load
    from verify.train import train

    model = build(SPECS / "mlp4.yaml")
    data = load("digits", tuple(analyze(SPECS / "mlp4.yaml").input))
    train(model, data, steps=8, batch_size=16, scheme="lecun", progress=True)
    lines = capsys.readouterr().err.splitlines()  # pytest's stderr is no terminal
    assert [line.split(",")[0] for line in lines] == [
        f"training (lecun): step {n}/8" for n in (2, 4, 6, 8)
    ]
    assert all(", loss " in line and "\r" not in line for line in lines)


def test_threads_chosen_for_the_model_and_restored():
    from archcalc.errors import ArchcalcError
    from verify.runner import pick_threads

    lenet, resnet = analyze(SPECS / "lenet5.yaml"), analyze(SPECS / "zoo/resnet18.yaml")
    assert pick_threads(lenet, 64)[0] == 1  # 3·64·0.28 M MACs a step: one thread
    threads, why = pick_threads(resnet, 64)  # 3·64·1.8 G: torch's default
    assert threads == torch.get_num_threads() and why.startswith("torch's default")
    assert pick_threads(lenet, 64, 3) == (3, "as asked (--threads)")
    with pytest.raises(ArchcalcError, match="--threads: expected a positive integer"):
        pick_threads(lenet, 64, 0)
    before = torch.get_num_threads()
    result = run(SPECS / "mlp4.yaml", steps=0, seeds=1, progress=False)
    assert torch.get_num_threads() == before and result.threads == 1
    data = result.to_dict()
    assert data["threads"] == 1 and set(data["seconds"]) == {"checks", "training"}


def test_a_wrong_formula_fails_the_checks(monkeypatch):
    import archcalc.layers.formulas as formulas

    original = formulas.shared_parameters
    monkeypatch.setattr(
        formulas, "shared_parameters", lambda filters, per: original(filters, per) + 1
    )
    result = run(
        SPECS / "atari_dqn.yaml", steps=0, schemes=["recommended"], seeds=1, progress=False
    )
    failed = {c.name for c in result.checks if not c.passed}
    assert {"params:layers[0]", "params:layers[1]", "params:total", "torchinfo:params"} <= failed
    assert not result.passed


def test_a_wrong_output_size_fails_the_shape_check(monkeypatch):
    import archcalc.layers.formulas as formulas

    original = formulas.conv_output_size
    monkeypatch.setattr(
        formulas,
        "conv_output_size",
        lambda n, k, s=1, p=0, d=1, e=None: original(n, k, s, p, d, e) + 1,
    )
    result = run(SPECS / "lenet5.yaml", steps=0, schemes=["recommended"], seeds=1, progress=False)
    bad = next(c for c in result.checks if c.name == "shape:layers[0]")
    assert not bad.passed and bad.expected == [6, 25, 25] and bad.measured == [6, 24, 24]


def test_a_wrong_variance_model_fails_the_init_check(monkeypatch):
    import archcalc.init.activations as activations

    monkeypatch.setattr(activations, "_relu_moments", lambda mu, sigma: (0.0, sigma * sigma, 1.0))
    activations.moments.cache_clear()
    try:
        result = run(
            SPECS / "deep_relu_mlp.yaml", steps=0, schemes=["lecun"], seeds=2, progress=False
        )
    finally:
        activations.moments.cache_clear()
    assert any(c.name.startswith("init:") and not c.passed for c in result.checks)


def test_verify_command_json_and_report(tmp_path, capsys, monkeypatch):
    from archcalc.cli import main

    monkeypatch.chdir(ROOT)
    code = main(["verify", "specs/atari_dqn.yaml", "--steps", "30", "--schemes", "recommended",
                 "--seeds", "1", "--json", "--report", str(tmp_path)])  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert code == (0 if data["passed"] else 1)
    assert {"spec", "device", "checks", "training"} <= set(data)
    kinds = {c["name"].split(":")[0] for c in data["checks"]}
    assert kinds == {
        "shape",
        "params",
        "macs",
        "torchinfo",
        "rf",
        "erf",
        "erf-init",  # the effective field under random init: the DQN's convolutions chain
        "memory",
        "init",
        "training",
    }
    assert set(data["training"]) >= {
        "steps",
        "final_loss",
        "train_accuracy",
        "test_accuracy",
        "seconds",
    }
    assert data["device"] == "cpu"
    written = {p.name for p in tmp_path.iterdir()}
    assert {"report.json", "report.md", "training.png", "init.png"} <= written


def test_verify_without_torch_says_how_to_install(monkeypatch, capsys):
    from archcalc.cli import main

    monkeypatch.chdir(ROOT)
    for name in [m for m in sys.modules if m == "verify" or m.startswith("verify.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch", None)
    assert main(["verify", "specs/lenet5.yaml"]) == 1
    assert "pip install 'archcalc[verify]'" in capsys.readouterr().err


def test_symbolic_and_unflat_specs(monkeypatch, capsys):
    from archcalc import ArchcalcError

    with pytest.raises(ArchcalcError, match="verify needs numbers"):
        run(SPECS / "quiz_conv.yaml", steps=0, progress=False)
    result = run(
        SPECS / "alexnet_conv1_224.yaml", steps=10, schemes=["recommended"], seeds=1, progress=False
    )
    assert result.training is None and "training skipped" in result.notes[0]


def test_user_data_npz_and_folder(tmp_path):
    import numpy as np
    from PIL import Image

    from verify.data import load

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 12, 12)).astype("float32"), np.arange(40) % 4
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = load(str(tmp_path / "d.npz"), (3, 16, 16))
    assert data.x_train.shape == (32, 3, 16, 16) and data.classes == 4
    assert 0.9 < float(data.x_train.max()) <= 1.0 and float(data.x_train.min()) >= 0
    for label in range(2):
        folder = tmp_path / "imgs" / f"class{label}"
        folder.mkdir(parents=True)
        for i in range(5):
            Image.fromarray((rng.random((9, 9)) * 255).astype("uint8")).save(folder / f"{i}.png")
    data = load(str(tmp_path / "imgs"), (81,))
    assert data.x_train.shape == (8, 81) and data.classes == 2
    from archcalc import ArchcalcError

    with pytest.raises(ArchcalcError, match="needs arrays 'x' and 'y'"):
        np.savez(tmp_path / "bad.npz", a=x)
        load(str(tmp_path / "bad.npz"), (64,))
    with pytest.raises(ArchcalcError, match="not channels x a square"):
        load("digits", (50,))


def test_digits_are_scikit_learns_read_without_importing_it():
    import numpy as np
    from sklearn.datasets import load_digits

    from verify.data import digits

    images, labels = digits()
    reference = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float32
    assert np.array_equal(images, reference.images) and np.array_equal(labels, reference.target)
    code = ("import sys; from verify.data import load; load('digits', (1, 8, 8)); "
            "print('sklearn' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout  # fmt: skip
    assert out.strip() == "False"


def test_lenet5_1998_builds_with_a_table_convolution_and_exact_counts():
    from verify.build import RBF, Subsample, TableConv2d

    model = build(SPECS / "zoo" / "lenet5_1998.yaml")
    assert isinstance(model.by_path["layers[2]"], TableConv2d)
    assert isinstance(model.by_path["layers[1]"], Subsample) and isinstance(
        model.by_path["layers[7]"], RBF
    )
    assert sum(p.numel() for p in model.parameters()) == 60000
    assert sum(b.numel() for b in model.buffers()) == 840  # the fixed RBF centres
    result = run(
        SPECS / "zoo" / "lenet5_1998.yaml",
        steps=50,
        schemes=["recommended"],
        seeds=1,
        progress=False,
    )
    assert "RBF output layer" in result.notes[0] and result.training is None
