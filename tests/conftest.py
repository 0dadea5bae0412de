"""Shared fixtures: golden files (regenerate with ``pytest --update-golden``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

# The suite's properties draw the same examples on every run ("ci", the default), so a red run
# on a clean clone can be reproduced and is about the change, not the draw; hunting for new
# counterexamples is a separate, deliberate run: `pytest --hypothesis-profile=explore
# --hypothesis-seed=N` (fresh random draws; benchmarks/fuzz.py hunts wider still).
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden", action="store_true", help="rewrite tests/golden/ from current output"
    )


@pytest.fixture
def golden(request):
    """``golden(name, text)``: compare text with tests/golden/name (or rewrite it)."""
    update = request.config.getoption("--update-golden")

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if update or not path.exists():
            if not update:
                pytest.fail(f"missing golden file {path}; run pytest --update-golden")
            path.write_text(text, encoding="utf-8")
            return
        assert text == path.read_text(encoding="utf-8"), f"output differs from {path}"

    return check


def spec(layers, input_shape=(3, 32, 32), **extra):
    """A spec dict with the given layers."""
    return {"name": "t", "input": list(input_shape), "layers": list(layers), **extra}
