"""Errors that teach: every problem at once, with the YAML line and the layer's name; hints
where a mistake is typical; no library internals; --layer finds composites and near misses."""

from __future__ import annotations

import pytest

from archcalc import ArchcalcError, analyze, load_spec
from archcalc.cli import main
from tests.conftest import spec

BAD = """name: bad
input: [1, 32, 32]
layers:
  - {name: c1, type: conv2d, out_channels: 6, kernel_size: 5}
  - {name: p1, type: maxpool2d, kernel_size: 2, stride: 0}
  - {name: c2, type: conv2d, out_channels: 16, kernel_size: 5, padding: -1}
  - {type: flatten}
  - {name: fc2, type: linear, out_features: 2^3}
"""


def _error(source, **values) -> ArchcalcError:
    with pytest.raises(ArchcalcError) as info:
        analyze(source, **values)
    return info.value


def test_every_schema_problem_at_once_in_spec_order_with_line_and_name(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    assert str(_error(path)).split("\n") == [
        f"{path}:5: layers[1].stride (p1): expected an integer >= 1 or an expression string. "
        "Received: stride=0",
        f"{path}:6: layers[2].padding (c2): expected an integer >= 0 or an expression string. "
        "Received: padding=-1",
        f"{path}:8: layers[4].out_features (fc2): '^' is not a power in '2^3': write ** (e.g. 2**k). "
        "Received: out_features='2^3'",
    ]


def test_the_cli_prints_one_prefixed_line_per_problem(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    assert main(["analyze", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith(f"archcalc: error: {path}:") for line in err)


TWO_SIZES = """name: sizes
input: [1, 32, 32]
layers:
  - {name: conv1, type: conv2d, in_channels: 3, out_channels: 6, kernel_size: 5}
  - {type: maxpool2d, kernel_size: 2}
  - {name: conv2, type: conv2d, out_channels: 16, kernel_size: 5}
  - {type: flatten}
  - {name: fc1, type: linear, in_features: 256, out_features: 120}
  - {name: fc2, type: linear, in_features: 100, out_features: 84}
  - {name: fc3, type: conv2d, out_channels: 10, kernel_size: 1}
"""


def test_declared_sizes_the_input_contradicts_do_not_hide_later_problems(tmp_path):
    # the output does not depend on a declared in_channels/in_features, so the walk goes on
    path = tmp_path / "sizes.yaml"
    path.write_text(TWO_SIZES)
    assert str(_error(path)).split("\n") == [
        f"{path}:4: layers[0].in_channels (conv1): in_channels=3 but the input has 1 channels "
        "([1, 32, 32])",
        f"{path}:8: layers[4].in_features (fc1): in_features=256 but the input has 1600 features "
        "(16·10·10)",
        f"{path}:9: layers[5].in_features (fc2): in_features=100 but the input has 120 features",
        f"{path}:10: layers[6] (fc3): conv2d needs an input of shape [C, H, W]. Received: input [84]",
    ]
    path.write_text(TWO_SIZES.replace("in_channels: 3", "in_channels: 1"))
    assert len(str(_error(path)).split("\n")) == 3  # one fewer, the rest as before


def test_an_error_inside_a_block_gives_the_line_where_the_item_is_written(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(
        "name: n\ninput: [3, 8, 8]\nblocks:\n  stage:\n    params: [k]\n    layers:\n"
        "      - {name: squeeze, type: conv2d, out_channels: 4, kernel_size: k}\n"
        "layers:\n  - {name: s1, type: stage, k: 3}\n  - {name: s2, type: stage, k: 9}\n"
    )  # fmt: skip
    message = str(_error(path))
    assert message.startswith(f"{path}:7: layers[1].layers[0]") and "(squeeze)" in message
    assert "the window (9) is larger than the padded input (6)" in message


BLOCK_STYLE = """name: blocky
input: [3, 32, 32]
layers:
  - name: conv1
    type: conv2d
    out_channels: 8
    kernel_size: 3
    stride: 0
  - name: fc
    type: linear
    out_features: 10
    bias_typo: true
"""


def test_an_item_written_one_key_per_line_points_at_the_key(tmp_path, capsys):
    # the item starts on line 4 ("- name: conv1"); stride is on line 8, the typo on line 12
    path = tmp_path / "blocky.yaml"
    path.write_text(BLOCK_STYLE)
    assert main(["analyze", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"archcalc: error: {path}:8: layers[0].stride (conv1): ")
    assert err[1].startswith(f"archcalc: error: {path}:12: layers[1].bias_typo (fc): ")
    # an error about the item as a whole stays on the item's line
    fixed = BLOCK_STYLE.replace("stride: 0", "stride: 1").replace("    bias_typo: true\n", "")
    path.write_text(fixed.replace("[3, 32, 32]", "[3, 2, 2]"))  # a 3x3 kernel on a 2x2 input
    assert main(["analyze", str(path)]) == 1
    assert capsys.readouterr().err.startswith(f"archcalc: error: {path}:4: layers[0] (conv1): ")


def test_tabs_in_yaml_are_named():
    message = str(_error("name: t\ninput: [3]\nlayers:\n\t- {type: relu}\n"))
    assert message == ("line 4, column 1: invalid YAML: found character that cannot start any "
                       "token (a tab: YAML indents with spaces)")  # fmt: skip


def test_top_level_fields_get_did_you_mean():
    message = str(_error({"name": "n", "imput": [3], "layers": [{"type": "relu"}]}))
    assert message.startswith(
        "imput: unknown field 'imput' (did you mean 'input'?); expected one of:"
    )
    assert "\n" not in message  # the missing input is the misspelling's consequence, not news


@pytest.mark.parametrize("document, expected", [
    ({"name": 1, "input": [3], "layers": [{"type": "relu"}]}, "name: expected text. Received: name=1"),
    (spec([{"type": "relu", "expect": {"params": {"approx": 1}}}], (3,)),
     "layers[0].expect.params.digits: missing required field 'digits'"),
    ({"name": "n", "input": [3], "symbols": {"1a": 1}, "layers": [{"type": "relu"}]},
     "symbols.1a: invalid name '1a': a name starts with a letter and holds letters, digits and _"),
    ({"name": "n", "input": "abc", "layers": [{"type": "relu"}]},
     "input: expected a list of sizes, channels first ([C], [C, L], [C, H, W] or [C, D, H, W]). "
     "Received: input='abc'"),
    (spec([{"type": "upsample", "mode": "cubic"}], (3, 4)),
     "layers[0].mode: expected one of 'nearest', 'linear', 'bilinear', 'bicubic' or 'trilinear'. "
     "Received: mode='cubic' (did you mean 'bicubic'?)"),
    (spec([{"type": "linear", "out_features": 3, "bias": "x"}], (3,)),
     "layers[0].bias: expected true or false. Received: bias='x'"),
    (spec([{"type": "conv2d", "out_channels": "A", "kernel_size": 3}], symbols={"a": 1}),
     "layers[0].out_channels: undeclared name 'A' in 'A' (did you mean 'a'? names are case-sensitive); "
     "declared: a"),
])  # fmt: skip
def test_messages_in_archcalc_words(document, expected):
    assert str(_error(document)) == expected


def test_a_channels_last_input_gets_a_hint():
    net = analyze(spec([{"type": "conv2d", "out_channels": 6, "kernel_size": 3}], (32, 32, 3)))
    assert [str(w) for w in net.warnings] == [
        "input: the input [32, 32, 3] looks channels-last; archcalc reads [C, H, W], channels "
        "first: did you mean [3, 32, 32]?"
    ]
    assert not analyze(spec([{"type": "relu"}], (3, 32, 32))).warnings


def test_layer_selects_composites_block_calls_and_suggests_near_misses(capsys):
    assert main(["explain", "specs/zoo/resnet18.yaml", "--layer", "layers[5]"]) == 0
    out = capsys.readouterr().out
    assert out.count("\nlayers[5].layers[0]") + out.startswith("layers[5].layers[0]") >= 7
    assert main(["explain", "specs/zoo/resnet18.yaml", "--layer", "layer9"]) == 1
    assert capsys.readouterr().err.strip() == (
        "archcalc: error: specs/zoo/resnet18.yaml: no layer with path or name 'layer9'; "
        "nearest: layers[9], layers[8], layers[7]"
    )
    assert main(["rf", "specs/zoo/alexnet.yaml", "--layer", "nope"]) == 1
    assert "give a path such as 'layers[0]' or a name (conv1, conv2" in capsys.readouterr().err


def test_spec_loaded_from_a_dict_has_no_lines_but_names():
    message = str(
        _error(spec([{"name": "fc", "type": "linear", "in_features": 5, "out_features": 2}], (4,)))
    )
    assert message.startswith("layers[0].in_features (fc): in_features=5")


def test_lines_survive_in_the_loaded_spec(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(
        "name: n\ninput: [4]\nlayers:\n  - {type: relu}\n  -\n    type: linear\n    out_features: 3\n"
    )
    loaded = load_spec(path)
    assert sorted(loaded._lines.values()) == [4, 6]
