"""verify's check 10 (verify/toolcheck.py): each installed peer tool against archcalc's
prediction; tools that are absent are skipped (the tests too)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

import torch  # noqa: E402

from archcalc.quantities.analysis import analyze  # noqa: E402
from tests.conftest import ROOT  # noqa: E402
from verify.build import build  # noqa: E402
from verify.toolcheck import PEERS, installed, measure, tool_checks, torch_restored  # noqa: E402

SPECS = [ROOT / "tests/data/conventions/activations.yaml", ROOT / "specs/lenet5.yaml"]


def test_torch_restored_puts_back_patched_functions():
    relu, matmul, tensor_add = torch.nn.functional.relu, torch.matmul, torch.Tensor.add
    with pytest.raises(RuntimeError), torch_restored():
        torch.nn.functional.relu = lambda x: x
        torch.matmul = None
        torch.Tensor.add = None
        raise RuntimeError("a tool failed")
    assert torch.nn.functional.relu is relu and torch.matmul is matmul
    assert torch.Tensor.add is tensor_add


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_checks_pass_for_every_installed_tool(path):
    if not any(installed(tool) for tool in PEERS):
        pytest.skip("no peer tool installed: check 10 does not run")
    analysis = analyze(path)
    torch.manual_seed(0)
    model = build(analysis)
    checks, notes = tool_checks(analysis, model)
    assert checks and all(check.passed for check in checks), [c for c in checks if not c.passed]
    assert {c.name for c in checks} == {f"conventions:{t}" for t in
                                        ("torchinfo", *PEERS, "ptflops-aten", "calflops-flops")
                                        if installed(t)}  # fmt: skip
    absent = [t for t in ("fvcore", "ptflops", "thop", "calflops", "torchscan") if not installed(t)]
    assert bool(notes) == bool(absent)


def test_no_peer_tool_no_check(monkeypatch):
    import verify.toolcheck as toolcheck

    monkeypatch.setattr(toolcheck, "installed", lambda tool: None)
    analysis = analyze(SPECS[1])
    assert tool_checks(analysis, build(analysis)) == ([], [])


def test_calflops_failure_leaves_torch_as_it_was():
    pytest.importorskip("calflops")
    analysis = analyze({"name": "n", "input": [3, 4, 4], "layers": [{"type": "relu"}]})
    relu, conv = torch.nn.functional.relu, torch.nn.functional.conv2d
    assert measure("calflops", build(analysis)) == ("error", "StopIteration")
    assert torch.nn.functional.relu is relu and torch.nn.functional.conv2d is conv
    # and the next tool counts as it should
    (check,) = [c for c in tool_checks(analyze(SPECS[1]), build(SPECS[1]))[0]
                if c.name == "conventions:calflops"]  # fmt: skip
    assert check.passed


def test_thop_runs_on_a_copy():
    pytest.importorskip("thop")
    analysis = analyze(SPECS[1])
    model = build(analysis)
    before = set(model.state_dict())
    assert isinstance(measure("thop", model), int)
    assert set(model.state_dict()) == before  # no total_ops / total_params buffers left
