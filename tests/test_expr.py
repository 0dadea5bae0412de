"""The safe expression language: whitelist, arithmetic, limits, printing."""

from __future__ import annotations

import pytest

from archcalc.errors import ArchcalcError
from archcalc.language import expr

J, P, M, s = (expr.symbol(n) for n in "JPMs")


@pytest.mark.parametrize(
    "text, env, value",
    [
        ("1 + 2*3", {}, 7),
        ("2**10", {}, 1024),
        ("-(3 - 5)", {}, 2),
        ("+4", {}, 4),
        ("7 // 2", {}, 3),
        ("-7 // 2", {}, -4),
        ("7 % 4", {}, 3),
        ("8 / 2", {}, 4),
        ("floor(7/2) + ceil(7/2)", {}, 7),
        ("min(3, A, 9) + max(1, 2)", {"A": 5}, 5),
        ("(J + 2*P - M)//s + 1", {"J": 224, "P": 2, "M": 11, "s": 4}, 55),
        ("ceil((J - M)/s)", {"J": 10, "M": 3, "s": 2}, 4),
        ("A*B - 1", {"A": 4, "B": 8}, 31),
        ("(" * 150 + "1" + ")" * 150, {}, 1),  # parentheses make no tree nodes: valid
    ],
)
def test_numeric_evaluation(text, env, value):
    result = expr.evaluate_text(text, env)
    assert result == value and type(result) is int


@pytest.mark.parametrize(
    "text, env, match",
    [
        (
            "__import__('os').system('true')",
            {},
            "only min, max, floor, ceil and make_divisible may be called",
        ),
        ("open('x')", {}, "only min, max, floor, ceil and make_divisible may be called"),
        ("(lambda: 1)()", {}, "only min, max, floor, ceil and make_divisible may be called"),
        ("x.__class__", {"x": 1}, "unsupported syntax .*an attribute"),
        ("[1, 2]", {}, "unsupported syntax .*a list"),
        ("1 if 1 else 2", {}, "unsupported syntax .*a conditional"),
        ("1.5", {}, "only integers may appear"),
        ("'a'", {}, "only integers may appear"),
        ("True", {}, "only integers may appear"),
        ("__x", {}, "names may not start with '_'"),
        ("min", {}, "min is a function"),
        ("floor(1, 2)", {}, r"floor\(\) takes 1 argument"),
        ("max()", {}, r"max\(\) takes at least 1 argument"),
        ("max(a=1)", {}, "only min, max, floor, ceil and make_divisible may be called"),
        ("1 +", {}, "cannot parse expression"),
        ("", {}, "Received: an empty string"),
        ("A + 1", {}, "unknown name 'A'"),
        ("7/2", {}, r"'7/2' is 7/2, not an integer; use // or floor\(\)"),
        ("1/0", {}, "division by zero"),
        ("5 % 0", {}, "division by zero"),
        ("2**100", {}, "exponent .* must be between 0 and 64"),
        ("2**-1", {}, "exponent .* must be between 0 and 64"),
        ("J**J", {"J": J}, "exponent .* must be a constant integer"),
        ("10**20", {}, "astronomically large"),
        ("99999999*99999999*99999999", {}, "astronomically large"),
        ("1" * 600, {}, "expression is too long"),
        ("-" * 200 + "1", {}, "nested too deeply"),
    ],
)
def test_rejected_expressions(text, env, match):
    with pytest.raises(ArchcalcError, match=match):
        expr.evaluate_text(text, env)


@pytest.mark.parametrize("name", ["N", "S", "E", "I", "O", "Q", "beta", "gamma", "pi"])
def test_sympy_builtin_names_are_plain_symbols(name):
    value = expr.evaluate_text(f"{name} + 1", {name: expr.symbol(name)})
    assert expr.to_text(value) == f"{name} + 1"
    assert value.subs(expr.symbol(name), 4) == 5


def test_symbolic_results_keep_floor_and_read_naturally():
    value = expr.evaluate_text("(J + 2*P - M)//s + 1", {"J": J, "P": P, "M": M, "s": s})
    assert expr.to_text(value) == "floor((J + 2*P - M)/s) + 1"
    assert value.subs({J: 224, P: 2, M: 11, s: 4}) == 55
    assert expr.evaluate_text("J//1", {"J": J}) == J  # floor of an integer disappears


def test_printed_expressions_parse_back():
    env = {n: expr.symbol(n) for n in "JKMs"}
    for text in ["ceil(J/s)", "min(J, K) % 3", "max(J, 2*K) - M", "floor(J/2) + 1"]:
        value = expr.evaluate_text(text, env)
        again = expr.evaluate_text(expr.to_text(value), env)
        assert expr.equal(value, again) is True


def test_conditions_and_equality():
    assert expr.at_least(J, 1) is True
    assert expr.at_least(J - M, 0) is None
    assert expr.at_least(-J, 0) is False
    assert expr.equal(J + J, 2 * J) is True
    assert expr.equal(J + 1, J) is False
    assert expr.equal(J, M) is None
    assert expr.condition_text(J + 2 * P - M) == "J + 2*P >= M"


def test_numeric_path_does_not_import_sympy():
    import os
    import subprocess
    import sys

    code = (
        "import sys, archcalc\n"
        "a = archcalc.analyze('specs/alexnet.yaml')\n"
        "from archcalc.render import tables as render\n"
        "from archcalc.questions import explain\n"
        "render.table(a); explain.explain(a)\n"
        "print('sympy' in sys.modules)"
    )
    from tests.conftest import ROOT

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert out.stdout.strip() == "False"
