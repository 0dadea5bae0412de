"""`archcalc check` in CI and scripts: JSON, JUnit XML, --strict, standard input, colour."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from xml.etree import ElementTree

import pytest

from archcalc.cli import main
from archcalc.cli.checking import Paint
from tests.conftest import ROOT

GOOD = "name: g\ninput: [4]\nlayers:\n  - {type: linear, out_features: 2, expect: {params: 10}}\n"
WARNS = (
    "name: w\ninput: [32, 32, 3]\nlayers:\n  - {type: conv2d, out_channels: 2, kernel_size: 3}\n"
)
BAD = "name: b\ninput: [4]\nlayers:\n  - {type: linear, out_features: 0}\n  - {type: relu, p: 1}\n"
WRONG = "name: x\ninput: [4]\nlayers:\n  - {type: linear, out_features: 2, expect: {params: 11}}\n"


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, text in (("good", GOOD), ("warns", WARNS), ("bad", BAD), ("wrong", WRONG)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        paths[name] = str(path)
    return paths


def test_json_report(files, capsys):
    code = main(["check", "--json", files["good"], files["bad"], files["wrong"], files["warns"]])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["passed"] is False
    good, bad, wrong, warns = data["specs"]
    assert good == {"file": files["good"], "passed": True, "errors": [], "failed_expectations": [],
                    "warnings": [], "layers": 1, "expected_values_checked": 1}  # fmt: skip
    assert bad["errors"] == [
        f"{files['bad']}:4: layers[0].out_features: expected an integer >= 1 or an expression "
        "string. Received: out_features=0",
        f"{files['bad']}:5: layers[1].p: unknown field 'p' for relu; expected one of: name, "
        "expect, input, when, negative_slope, alpha, beta, threshold, min_val, max_val, dim",
    ]
    assert wrong["failed_expectations"] == ["layers[0] params: expected 11, computed 10"]
    assert warns["passed"] is True and len(warns["warnings"]) == 1


def test_strict_fails_on_warnings(files, capsys):
    assert main(["check", files["warns"]]) == 0
    assert main(["check", "--strict", files["warns"]]) == 1
    out = capsys.readouterr().out
    assert out.count("looks channels-last") == 2 and out.count(": ok (") == 1


def test_junit_xml(files, tmp_path, capsys):
    report = tmp_path / "check.xml"
    assert (
        main(["check", "-q", "--junit", str(report), files["good"], files["bad"], files["warns"]])
        == 1
    )
    suite = ElementTree.parse(report).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("3", "1")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert cases[files["good"]].find("failure") is None
    failure = cases[files["bad"]].find("failure")
    assert failure.get("type") == "invalid spec" and len(failure.text.splitlines()) == 2
    assert "channels-last" in cases[files["warns"]].find("system-out").text


def test_standard_input():
    proc = subprocess.run([sys.executable, "-m", "archcalc.cli", "check", "-"], input=GOOD,
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == "<stdin>: ok (1 layer, 1 expected value holds)\n"
    proc = subprocess.run([sys.executable, "-m", "archcalc.cli", "check", "-"], input=BAD,
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 1 and proc.stdout.startswith("<stdin>:4: layers[0].out_features")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_on_a_terminal_only_and_never_with_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert Paint(_Terminal()).red("x") == "\033[31mx\033[0m"
    assert Paint(io.StringIO()).red("x") == "x"
    monkeypatch.setenv("NO_COLOR", "1")
    assert Paint(_Terminal()).red("x") == "x"


def test_pre_commit_hook_definition():
    import yaml

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "archcalc-check" and hook["entry"].startswith("archcalc check")
    assert hook["language"] == "python"
