"""Named sizes in symbolic tables (archcalc.render.legend): exact, unambiguous, text only."""

from __future__ import annotations

import pytest
import yaml

from archcalc import analyze
from archcalc.cli import main
from archcalc.language import expr
from archcalc.quantities.memory import training_memory
from archcalc.render.legend import abbreviated, size_names
from archcalc.render.memory import memory_table
from archcalc.render.tables import table
from tests.conftest import SPECS


def free(name: str) -> dict:
    data = yaml.safe_load((SPECS / "zoo" / name).read_text())
    data["input"], data["symbols"] = [data["input"][0], "H", "W"], {"H": None, "W": None}
    data.pop("expect", None)
    return data


@pytest.mark.parametrize("name", ["resnet18.yaml", "googlenet.yaml", "vit_b_16.yaml",
                                  "inception_v3.yaml"])  # fmt: skip
def test_named_cells_equal_the_formulas(name):
    """Every cell printed with names, read back with the names bound to their sizes, is the
    formula's value, at several input sizes (the names replace a rounding by name - number)."""
    net = analyze(free(name), symbolic=True)
    names = size_names(net)
    assert names, "the zoo network's sizes are roundings: some are named"
    with abbreviated(net):
        cells = [(expr.to_text(v), v) for row in net.rows
                 for v in (*row.output, row.neurons, row.connections, row.macs)
                 if v is not None and expr.is_symbolic(v)]  # fmt: skip
        totals = [(expr.to_text(net.totals[k]), net.totals[k]) for k in ("neurons", "macs")]
    assert any(name in text for text, _ in cells for name, _ in names)
    for h, w in ((224, 224), (299, 231), (511, 384)):
        env = {"H": h, "W": w}
        env.update({n: int(size.subs({expr.symbol("H"): h, expr.symbol("W"): w}))
                    for n, size in names})  # fmt: skip
        for text, value in [*cells, *totals]:
            exact = int(value.subs({expr.symbol("H"): h, expr.symbol("W"): w}))
            assert expr.evaluate_text(text, env) == exact, text


def test_a_name_never_shadows_a_declared_symbol():
    spec = {"name": "n", "symbols": {"H": None, "h1": 3}, "input": [1, "H"],
            "layers": [{"type": "maxpool1d", "kernel_size": 2},
                       {"type": "conv1d", "out_channels": "h1", "kernel_size": 1},
                       {"type": "maxpool1d", "kernel_size": 3}]}  # fmt: skip
    net = analyze(spec, symbolic=True, h1=3)
    assert [(n, expr.to_text(s)) for n, s in size_names(net)] == [
        ("h2", "floor(H/2)"), ("h3", "floor(H/6)")]  # fmt: skip
    assert "where h2 = floor(H/2), h3 = floor(H/6)" in table(net)


def test_a_symbolic_batch_is_never_a_size_name(capsys, tmp_path):
    """A batch named h1 made '256*h1**2*w1' of ResNet-18's first output: now the sizes count
    on past it, each stage keeping one number; a batch named like a spec symbol is refused."""
    net = analyze(free("resnet18.yaml"), symbolic=True)
    text = memory_table(training_memory(net, batch="h1"))
    assert "where h2 = floor(H/2 - 1/2) + 1, w2 = floor(W/2 - 1/2) + 1, h3 = " in text
    assert "256*h1*h2*w2" in text and "h1**2" not in text
    path = tmp_path / "r18.yaml"
    path.write_text(yaml.safe_dump(free("resnet18.yaml"), sort_keys=False))
    assert main(["analyze", str(path), "--memory", "w3"]) == 0
    out = capsys.readouterr().out
    assert "where h4 = floor(H/2 - 1/2) + 1, w4 = " in out and "12*H*W*w3" in out
    assert main(["memory", str(path), "--batch", "H"]) == 1
    assert capsys.readouterr().err == (
        f"archcalc: error: {path}: batch: expected a name of its own, not one of the spec's "
        "symbols (H, W). Received: batch=H\n")  # fmt: skip


def test_a_size_from_several_input_symbols_is_an_n():
    spec = {"name": "n", "symbols": {"A": None, "B": None}, "input": [1, "A + B"],
            "layers": [{"type": "maxpool1d", "kernel_size": 2}]}  # fmt: skip
    net = analyze(spec, symbolic=True)
    assert [n for n, _ in size_names(net)] == ["n1"]


def test_numeric_analyses_and_plain_sizes_name_nothing():
    assert size_names(analyze(SPECS / "lenet5.yaml")) == []
    # H - 2 is no rounding: shown as it is
    spec = {"name": "n", "symbols": {"H": None}, "input": [1, "H", "H"],
            "layers": [{"type": "conv2d", "out_channels": 2, "kernel_size": 3}]}  # fmt: skip
    net = analyze(spec, symbolic=True)
    assert size_names(net) == [] and "where" not in table(net)
    assert "[2, H - 2, H - 2]" in table(net)


def test_the_names_apply_inside_the_tables_only():
    net = analyze(free("resnet18.yaml"), symbolic=True)
    first = net.rows[0].output[1]
    text = memory_table(training_memory(net, batch="B"))
    assert "256*B*h1*w1" in text and "where h1 = floor(H/2 - 1/2) + 1, w1 = " in text
    assert expr.to_text(first) == "floor(H/2 - 1/2) + 1"  # after the table: in full again
    with abbreviated(net), abbreviated(net) as inner:  # nested: still defined in full
        assert inner.definitions[0] == "h1 = floor(H/2 - 1/2) + 1"
        assert expr.to_text(first) == "h1"


def test_the_legend_wraps_at_the_width():
    net = analyze(free("resnet18.yaml"), symbolic=True)
    with abbreviated(net) as legend:
        lines = legend.lines(60)
    assert lines[0].startswith("where h1 = ") and all(len(line) <= 60 for line in lines)
    assert all(line.startswith("     ") for line in lines[1:])
    assert ", ".join(line.strip().removeprefix("where ") for line in lines).replace(",,", ",") == \
        ", ".join(legend.definitions)  # fmt: skip


def test_symbolic_init_table_names_sizes_and_prints_factors_shortly():
    from archcalc.render.tables import init_table

    text = init_table(analyze(free("resnet18.yaml"), symbolic=True), "recommended")
    assert "where h1 = floor(H/2 - 1/2) + 1" in text
    assert "1.00000000000000" not in text  # a float factor as 1, as Var[w] is printed
    row = next(line for line in text.splitlines() if line.startswith("layers[0] "))
    assert row.split()[-1] == "1"


def test_symbolic_memory_totals_wrap_at_the_table_width():
    """The symbolic peak is a sum and a max of a dozen terms: printed under itself, at the
    table's width, with the same terms as in one line."""
    net = analyze(free("resnet18.yaml"), symbolic=True)
    memory = training_memory(net, batch="B")
    lines = memory_table(memory).splitlines()
    width = len(lines[0])
    assert all(len(line) <= width for line in lines if not line.startswith("warning"))
    start = next(i for i, line in enumerate(lines) if line.startswith("Training peak"))
    peak = [lines[start]] + [line for line in lines[start + 1 :] if line.startswith(" " * 40)]
    assert len(peak) > 1
    with abbreviated(net, avoid=["B"]):
        assert " ".join(line[40:] for line in peak) == expr.to_text(memory.peak_bytes)
