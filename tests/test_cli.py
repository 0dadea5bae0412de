"""The command line: golden output, exit codes, and no tracebacks on bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from archcalc.cli import main
from tests.conftest import ROOT, SPECS

SHIPPED = sorted(p.name for p in SPECS.glob("*.yaml"))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", ["analyze", "explain"])
@pytest.mark.parametrize("name", SHIPPED)
def test_golden_output(command, name, capsys, golden, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, _ = run(capsys, command, f"specs/{name}")
    assert code == 0
    golden(f"{name}.{command}.txt", out)


def test_markdown_golden(capsys, golden, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, _ = run(capsys, "analyze", "specs/lenet5.yaml", "--format", "markdown")
    assert code == 0
    golden("lenet5.yaml.analyze.md", out)


def test_a_long_symbolic_total_is_printed_under_the_table_only(tmp_path, capsys):
    # eight stages at halving sizes: each total is a sum of eight products of sizes, far
    # wider than any row; it would pad every line of the table to its width
    layers = "".join("  - {type: conv2d, out_channels: 8, kernel_size: 3, stride: 2}\n"
                     for _ in range(8))  # fmt: skip
    path = tmp_path / "stages.yaml"
    path.write_text(f"name: stages\nsymbols: {{H: 512}}\ninput: [3, H, H]\nlayers:\n{layers}")
    code, out, _ = run(capsys, "analyze", str(path), "--symbolic")
    assert code == 0
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Path"))
    rows = [line for line in lines[header + 2 :] if line.startswith("layers[")]
    total = next(line for line in lines if line.startswith("Total "))
    assert total.split()[-4:] == ["(below)", "(below)", "4,312", "(below)"]  # params: a number
    assert max(len(line) for line in lines[: lines.index(total) + 2]) == len(lines[header + 1])
    assert len(lines[header + 1]) <= max(len(line) for line in [lines[header], *rows]) + 2
    summary: dict[str, str] = {}  # a total wider than the table goes on under itself
    for line in lines[lines.index(total) + 2 :]:
        if line.startswith("Total ") and ": " in line:
            key, value = line.split(": ", 1)
            summary[key] = value
        elif line.startswith(" ") and summary:
            summary[key] += " " + line.strip()
        else:
            break
        assert len(line) <= max(len(lines[header + 1]), 80)  # no wider than the table
    assert summary.keys() == {"Total params", "Total neurons", "Total connections", "Total MACs"}
    # the sizes are named above the table (h1 = floor(H/2 - 1/2) + 1, ...), used in full
    assert summary["Total neurons"] == " + ".join(f"8*h{i}**2" for i in range(1, 9))


def test_symbolic_sizes_are_named_once_above_the_table(capsys, monkeypatch):
    """The text names each rounded size (a textbook's j1 = floor((J + 2P - M)/s) + 1) and
    writes the cells with the names; the JSON keeps the formulas in full."""
    monkeypatch.chdir(ROOT)
    code, out, _ = run(capsys, "analyze", "specs/quiz_conv.yaml")
    assert code == 0
    assert "where j1 = floor((J + 2*P - M)/s) + 1, k1 = floor((K + 2*P - N)/s) + 1" in out
    assert "Total MACs: L*M*N*i*j1*k1   (FLOPs" in out
    code, out, _ = run(capsys, "analyze", "specs/quiz_conv.yaml", "--json")
    data = json.loads(out)
    assert (
        data["totals"]["macs"]
        == "L*M*N*i*(floor((J + 2*P - M)/s) + 1)*(floor((K + 2*P - N)/s) + 1)"
    )
    assert "j1" not in out


@pytest.mark.parametrize("name", SHIPPED)
def test_json_shape_and_column_sums(name, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, _ = run(capsys, "analyze", f"specs/{name}", "--json")
    data = json.loads(out)
    assert code == 0
    assert set(data) >= {"name", "input", "output", "layers", "totals", "warnings"}
    assert set(data["totals"]) == {"params", "neurons", "connections", "macs", "flops"}
    for layer in data["layers"]:
        assert set(layer) == {"path", "name", "type", "input", "output", "weights_per_neuron",
                              "neurons", "connections", "params", "macs"}  # fmt: skip
    if all(isinstance(v, int) for v in data["totals"].values()):
        for key in ("params", "neurons", "connections", "macs"):  # the table's invariant
            assert sum(layer[key] or 0 for layer in data["layers"]) == data["totals"][key]
        assert data["totals"]["flops"] == 2 * data["totals"]["macs"]


def test_dqn_explain_prints_all_twenty_numbers(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    _, out, _ = run(capsys, "explain", "specs/atari_dqn.yaml")
    for number in ["257", "20×20×16", "6,400", "1,644,800", "4,112",
                   "9×9×32", "2,592", "666,144", "8,224",
                   "2,593", "663,808", "4,626", "= 18"]:  # fmt: skip
        assert number in out, number
    assert "width              = 1 + (K + 2P - N)/s = 1 + (84 + 0 - 8)/4 = 20" in out


def test_explain_shows_the_floor(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    _, out, _ = run(capsys, "explain", "specs/alexnet_conv1_224.yaml", "--layer", "conv1")
    assert (
        "width              = 1 + (K + 2P - N)/s = 1 + (224 + 4 - 11)/4 = 55 (floor of 55.25)"
        in out
    )


def test_explain_numbers_evaluate_to_the_values(capsys, monkeypatch):
    """Every 'formula = numbers = value' line: the numbers really give the value."""
    import math
    import re

    monkeypatch.chdir(ROOT)
    for name in ("alexnet.yaml", "lenet5.yaml", "atari_dqn.yaml", "alexnet_conv1_224.yaml",
                 "zoo/vit_b_16.yaml", "zoo/convnext_tiny.yaml"):  # fmt: skip
        _, out, _ = run(capsys, "explain", f"specs/{name}")
        if name == "zoo/vit_b_16.yaml":
            assert ("parameters         = 2 × normalised elements = 2 × 768 = 1,536 (a weight and "
                    "a bias per element of the last dimension)") in out  # fmt: skip
            assert "[197, 768] (no parameters, no MACs: nothing is weighted)" in out
        checked = 0
        for line in out.splitlines():
            parts = [p.strip() for p in line.split("=")[1:]]
            if len(parts) < 3 or "×" in parts[-1].split(" (")[0] and "·" not in parts[1]:
                continue
            numbers, value = parts[-2], parts[-1]
            rounding = re.search(r"\((floor|ceil) of", value)
            value = value.split(" (")[0].replace(",", "")
            if not value.isdigit() or not re.fullmatch(r"[\d ,+\-×·()/]+", numbers):
                continue
            python = numbers.replace(",", "").replace("×", "*").replace("·", "*")
            computed = eval(python, {"__builtins__": {}})  # our own output, digits only
            if rounding:
                computed = getattr(math, rounding.group(1))(computed)
            assert computed == int(value), line
            checked += 1
        assert checked >= 5, name


def test_set_and_symbolic(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, _ = run(capsys, "analyze", "specs/atari_dqn.yaml", "--set", "A=4", "--json")
    assert code == 0 and json.loads(out)["output"] == [4]
    code, out, _ = run(capsys, "analyze", "specs/atari_dqn.yaml", "--symbolic", "--json")
    assert json.loads(out)["totals"]["params"] == "257*A + 676144"


def test_check_reports_mismatches(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (SPECS / "atari_dqn.yaml").read_text().replace("connections: 666144", "connections: 666000")
    )
    code, out, _ = run(capsys, "check", str(SPECS / "lenet5.yaml"), str(bad))
    assert code == 1
    assert f"{bad}: layers[1] connections: expected 666000, computed 666144" in out.splitlines()
    assert "1 of 2 specs ok" in out


def test_check_all_shipped_specs(capsys):
    code, out, _ = run(capsys, "check", *(str(SPECS / n) for n in SHIPPED))
    assert code == 0, out
    assert f"{len(SHIPPED)} of {len(SHIPPED)} specs ok" in out


def test_schema_is_json_schema(capsys):
    code, out, _ = run(capsys, "schema")
    schema = json.loads(out)
    assert code == 0 and schema["title"] == "Spec"
    assert {"name", "input", "layers"} <= set(schema["required"])
    assert (
        "Conv" in schema["$defs"] and schema["$defs"]["Conv"]["properties"]["stride"]["description"]
    )


@pytest.mark.parametrize(
    "argv, code, stderr",
    [
        (["analyze", "specs/atari_dqn.yaml", "--set", "A"], 2, "expected NAME=VALUE"),
        (["analyze", "specs/atari_dqn.yaml", "--set", "A=x"], 2, "expected an integer value"),
        (
            ["analyze", "specs/atari_dqn.yaml", "--set", "Z=3"],
            2,
            "--set Z: not a symbol of specs/atari_dqn.yaml (declared: A)",
        ),
        (
            ["analyze", "specs/nope.yaml"],
            1,
            "archcalc: error: specs/nope.yaml: cannot read file: No such file or directory",
        ),
        (
            ["explain", "specs/atari_dqn.yaml", "--layer", "fc9"],
            1,
            "no layer with path or name 'fc9'",
        ),
        (["memory", "specs/lenet5.yaml", "--batch", "0"], 2, "expected a positive integer"),
        (["memory", "specs/lenet5.yaml", "--batch", "-3"], 2, "expected a positive integer"),
        (["memory", "specs/lenet5.yaml", "--batch", "1.5"], 2, "expected a positive integer"),
        (["frobnicate"], 2, "invalid choice"),
        ([], 2, "required"),
    ],
)
def test_exit_codes(argv, code, stderr, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    try:
        result = main(argv)
    except SystemExit as exit_:  # argparse usage errors
        result = exit_.code
    _, err = capsys.readouterr()
    assert result == code
    assert stderr in err


HOSTILE = {
    "code.yaml": "name: t\ninput: [4]\nlayers: [{type: linear, out_features: \"__import__('os').system('touch PWNED')\"}]\n",
    "pyobj.yaml": "name: !!python/object/apply:os.system ['touch PWNED']\ninput: [4]\nlayers: [{type: relu}]\n",
    "trillion.yaml": "name: t\ninput: [4]\nlayers: [{type: repeat, times: 1000000000000, layers: [{type: relu}]}]\n",
    "huge.yaml": "name: t\ninput: [4]\nlayers: [{type: linear, out_features: '9**64'}]\n",
    "binary.yaml": "\udcff\udcfe garbage",
    "list.yaml": "- 1\n",
    "unknown.yaml": "name: t\ninput: [4]\nlayers: [{type: linear, out_features: 3, colour: red}]\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_one_line_exit_1_no_traceback(name, tmp_path):
    path = tmp_path / name
    path.write_bytes(HOSTILE[name].encode("utf-8", "surrogateescape"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "archcalc.cli", "analyze", str(path)],
        capture_output=True, text=True, timeout=10, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert re.match(rf"archcalc: error: {re.escape(str(path))}(:\d+)?: ", proc.stderr)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "PWNED").exists()
