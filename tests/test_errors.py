"""Invalid specs: each error names the place, what was expected and what was found."""

from __future__ import annotations

import pytest

from archcalc import ArchcalcError, analyze, load_spec
from tests.conftest import spec

CONV = {"type": "conv2d", "out_channels": 4, "kernel_size": 3}

ERRORS = [
    # schema
    (spec([{**CONV, "kernal_size": 3}]), r"^layers\[0\]\.kernal_size: unknown field 'kernal_size' for conv2d \(did you mean 'kernel_size'\?\)"),
    (spec([{"type": "conv2d", "out_channels": 4}]), r"^layers\[0\]\.kernel_size: missing required field 'kernel_size' for conv2d$"),
    (spec([{"type": "conv2"}]), r"^layers\[0\]\.type: unknown layer type 'conv2' \(did you mean 'conv2d'\?\)$"),
    (spec([{"out_channels": 4}]), r"^layers\[0\]: each layer needs a 'type'"),
    (spec([{**CONV, "stride": 0}]), r"^layers\[0\]\.stride: expected an integer >= 1 or an expression string\. Received: stride=0$"),
    (spec([{**CONV, "kernel_size": 0}]), r"^layers\[0\]\.kernel_size: expected an integer >= 1 .*Received: kernel_size=0$"),
    (spec([{**CONV, "dilation": [1, 0]}]), r"^layers\[0\]\.dilation: expected an integer >= 1"),
    (spec([{**CONV, "padding": -1}]), r"^layers\[0\]\.padding: expected an integer >= 0 .*Received: padding=-1$"),
    (spec([{**CONV, "stride": True}]), r"Received: stride=True$"),
    (spec([{**CONV, "activation": "rellu"}]), r"^layers\[0\]\.activation: unknown activation 'rellu' \(did you mean 'relu'\?\); expected one of relu, leaky_relu, .*$"),
    (spec([{"type": "relu", "negative_slope": 0.1}]), r"^layers\[0\]: negative_slope applies to leaky_relu only, not relu$"),
    (spec([{"type": "dropout", "p": 1.5}]), r"^layers\[0\]\.p: expected a probability in \[0, 1\)\. Received: 1\.5$"),
    ({"input": [3], "layers": [{"type": "relu"}]}, r"^name: missing required field 'name'$"),
    (spec([]), r"^layers: expected at least 1 item\(s\)\. Received: layers=\[\]$"),
    (spec([{"type": "residual", "body": [{**CONV, "bogus": 1}]}]), r"^layers\[0\]\.body\[0\]\.bogus: unknown field"),
    (spec([{"type": "concat", "branches": [[{"type": "linear"}]]}]), r"^layers\[0\]\.branches\[0\]\[0\]\.out_features: missing required field"),
    # names and templates
    (spec([{**CONV, "out_channels": "B"}]), r"^layers\[0\]\.out_channels: undeclared name 'B' in 'B'; declared: none$"),
    (spec([{**CONV, "out_channels": "Cc"}], symbols={"C": 1}), r"undeclared name 'Cc' in 'Cc' \(did you mean 'C'\?\); declared: C$"),
    (spec([{"type": "b", "q": 1}], blocks={"b": {"params": ["p"], "layers": [{"type": "relu"}]}}), r"^layers\[0\]\.q: unknown parameter of block 'b'; it takes: p$"),
    (spec([{"type": "b"}], blocks={"b": {"params": ["p"], "layers": [{"type": "relu"}]}}), r"^layers\[0\]: block 'b' needs parameter\(s\) p$"),
    (spec([{"type": "a"}], blocks={"a": {"layers": [{"type": "b"}]}, "b": {"layers": [{"type": "a"}]}}), r"^blocks\.a: recursive block: a -> b -> a$"),
    (spec([{"type": "relu"}], blocks={"relu": {"layers": [{"type": "tanh"}]}}), r"^blocks\.relu: block name 'relu' is a built-in layer type"),
    (spec([{"type": "relu"}], symbols={"min": 1}), r"'min' is reserved"),
    (spec([{"type": "b", "p": 1}], blocks={"b": {"params": ["p"], "layers": [{**CONV, "stride": "q"}]}}), r"^blocks\.b\.layers\[0\]\.stride: undeclared name 'q' in 'q'; declared: p$"),
    # arithmetic
    (spec([{"type": "conv2d", "out_channels": 4, "kernel_size": 40}]), r"^layers\[0\]: output size < 1: the window \(40\) is larger than the padded input \(32\) of \[3, 32, 32\]$"),
    (spec([{**CONV, "in_channels": 4}]), r"^layers\[0\]\.in_channels: in_channels=4 but the input has 3 channels \(\[3, 32, 32\]\)$"),
    (spec([{**CONV, "groups": 2}]), r"^layers\[0\]\.groups: in_channels=3 must be divisible by groups=2$"),
    (spec([{**CONV, "out_channels": 5, "groups": 3}]), r"^layers\[0\]\.groups: out_channels=5 must be divisible by groups=3$"),
    (spec([{**CONV, "padding": "same", "stride": 2}]), r"^layers\[0\]\.padding: padding='same' is not supported for strided convolutions \(as in PyTorch; 'same_upper' gives TensorFlow's SAME for any stride\)\. Received: stride=\[2, 2\]$"),
    (spec([{**CONV, "kernel_size": [3, 3, 3]}]), r"^layers\[0\]\.kernel_size: expected 1 or 2 values for conv2d\. Received: kernel_size=\[3, 3, 3\]$"),
    (spec([{**CONV, "stride": "s - 1"}], symbols={"s": 1}), r"^layers\[0\]\.stride: expected stride >= 1\. Received: stride='s - 1' = 0$"),
    (spec([{"type": "rbf", "out_features": 4}]), r"^layers\[0\]: rbf needs an input of shape \[F\]\. Received: input \[3, 32, 32\]$"),
    (spec([{"type": "flatten"}, {"type": "linear", "out_features": 4, "in_features": 100}]), r"^layers\[1\]\.in_features: in_features=100 but the input has 3072 features \(3·32·32\)$"),
    (spec([CONV], [3, 32]), r"^layers\[0\]: conv2d needs an input of shape \[C, H, W\]\. Received: input \[3, 32\]$"),
    (spec([{"type": "maxpool2d", "kernel_size": 3, "padding": 2}]), r"^layers\[0\]\.padding: padding must be at most half the kernel size \(as in PyTorch\)\. Received: padding=2, kernel_size=3$"),
    (spec([{"type": "conv_transpose2d", "out_channels": 2, "kernel_size": 3, "stride": 2, "output_padding": 2}]), r"output_padding must be smaller than either stride or dilation"),
    (spec([{"type": "residual", "body": [{**CONV, "stride": 2}]}]), r"^layers\[0\]: residual body gives \[4, 15, 15\] but the shortcut gives \[3, 32, 32\]; they must match \(add a projection to the shortcut\)$"),
    (spec([{"type": "concat", "branches": [[CONV], []]}]), r"^layers\[0\]: concat branches must agree in every dimension but channels\. Received: \[4, 30, 30\], \[3, 32, 32\]$"),
    (spec([{**CONV, "connection_table": [[0, 1]] * 4, "groups": 2}], [4, 8, 8]), r"^layers\[0\]\.groups: a connection_table replaces groups; use groups = 1$"),
    (spec([{**CONV, "connection_table": [[0, 1]] * 3}]), r"^layers\[0\]\.connection_table: expected one entry per output map \(4\)\. Received: 3 entries$"),
    (spec([{**CONV, "connection_table": [[0, 1], [2], [3], [1, 1]]}]), r"^layers\[0\]\.connection_table: entry 2 must list distinct input maps in 0\.\.2\. Received: \[3\]$"),
    (spec([{"type": "batchnorm2d", "num_features": 4}]), r"^layers\[0\]\.num_features: num_features=4 but the input has 3 channels \(\[3, 32, 32\]\)$"),
    (spec([{"type": "layernorm", "normalized_shape": [31]}]), r"^layers\[0\]\.normalized_shape: normalized_shape=\[31\] must equal the trailing dimensions of the input \[3, 32, 32\]$"),
    (spec([{"type": "repeat", "times": "n", "layers": [{"type": "relu"}]}], symbols={"n": None}), r"^layers\[0\]\.times: repeat count must be a number, not n; give the symbol a value"),
    (spec([{"type": "repeat", "times": 10**12, "layers": [{"type": "relu"}]}]), r"^layers\[0\]: the network expands to more than 100,000 layers"),
    (spec([{**CONV, "out_channels": "10**20"}]), r"astronomically large"),
]  # fmt: skip


@pytest.mark.parametrize("data, match", ERRORS, ids=[f"e{i}" for i in range(len(ERRORS))])
def test_error_wording(data, match):
    with pytest.raises(ArchcalcError, match=match) as info:
        analyze(data)
    assert "\n" not in str(info.value)


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text("name: n\ninput: [3]\nlayers:\n  - {type: linear, out_features: 0}\n")
    with pytest.raises(ArchcalcError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}:4: layers[0].out_features: expected an integer >= 1")


@pytest.mark.parametrize(
    "text, match",
    [
        (
            "name: x\n  input: [1\n",
            r"line 2, column 8: invalid YAML: mapping values are not allowed",
        ),
        ("name: a\nname: b\n", r"line 2, column 1: duplicate key 'name'"),
        (
            "- 1\n- 2\n",
            r"expected a mapping with name, input and layers at the top level; found a list",
        ),
        ("42", r"found a int"),
        ("", r"found an empty document"),
        ("a: &a [*a]\n", r"document refers to itself \(a recursive YAML alias\)"),
        ("name: !!python/object/apply:os.system ['true']\n", r"could not determine a constructor"),
        ('{"name": "x", "name": "y"}', r"duplicate key 'name'"),
    ],
)
def test_malformed_documents(text, match):
    with pytest.raises(ArchcalcError, match=match):
        load_spec(text)


def test_alias_bomb_is_refused_quickly():
    lines = ["name: bomb", "input: [4]", "a0: &a0 [{type: relu}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 30)]
    lines.append("layers: *a29")
    with pytest.raises(ArchcalcError, match="expands to more than 2,000,000 nodes"):
        load_spec("\n".join(lines))


def test_deep_nesting_is_refused():
    layer = {"type": "relu"}
    for _ in range(3000):
        layer = {"type": "residual", "body": [layer]}
    with pytest.raises(ArchcalcError, match="nested more than 100 levels deep"):
        analyze(spec([layer]))


def test_exponential_blocks_are_refused():
    blocks = {
        f"b{i}": {"layers": [{"type": f"b{i + 1}"}, {"type": f"b{i + 1}"}]} for i in range(40)
    }
    blocks["b40"] = {"layers": [{"type": "relu"}]}
    with pytest.raises(ArchcalcError, match="expands to more than 100,000 layers"):
        analyze(spec([{"type": "b0"}], blocks=blocks))


def test_the_layer_limit_counts_layers_not_the_input():
    # regression: exactly 100,000 layers was refused as "more than 100,000"
    net = analyze(spec([{"type": "repeat", "times": 100_000, "layers": [{"type": "relu"}]}], (4,)))
    assert len(net.rows) == 100_000
    with pytest.raises(ArchcalcError, match="expands to more than 100,000 layers"):
        analyze(spec([{"type": "relu"},
                       {"type": "repeat", "times": 100_000, "layers": [{"type": "relu"}]}], (4,)))  # fmt: skip


def test_warnings_uncovered_rows_and_large_padding():
    a = analyze("specs/alexnet_conv1_224.yaml")
    assert [str(w) for w in a.warnings] == [
        "layers[0]: (224 + 4 - 11)/4 = 54.25: the last row and column of the padded input are never "
        "covered (only padding, no input value is lost)"
    ]
    a = analyze(
        spec([{"type": "conv2d", "out_channels": 2, "kernel_size": 3, "padding": 3}], [1, 8, 8])
    )
    assert [w.message for w in a.warnings] == [
        "padding=3 is more than half the kernel (3): the outermost outputs see mostly padding"
    ]
    a = analyze(spec([{"type": "maxpool1d", "kernel_size": 2, "stride": 3}], [1, 10]))
    assert [w.message for w in a.warnings] == [
        "(10 - 2)/3 = 8/3: the last 2 positions of the padded input are never covered "
        "(2 of them input, not padding)"
    ]
    assert analyze("specs/alexnet.yaml").warnings == []
    a = analyze(spec([{"type": "linear", "out_features": 4}]))  # legal in PyTorch: last dimension
    assert a.output == (3, 32, 4)
    assert [w.message for w in a.warnings] == [
        "linear acts on the last dimension of [3, 32, 32] (as torch.nn.Linear does); to connect "
        "every input, add {type: flatten} before it"
    ]


def test_symbolic_conditions_become_assumptions():
    s = spec([{"type": "conv2d", "out_channels": "i", "kernel_size": "M", "groups": "g"}], ["L", "J", "J"],
             symbols={n: None for n in ("L", "J", "M", "i", "g")})  # fmt: skip
    a = analyze(s)
    assert a.assumptions == [
        ("layers[0]", "L divisible by g"),
        ("layers[0]", "i divisible by g"),
        ("layers[0]", "J >= M"),
    ]
    assert analyze(s, L=4, J=8, M=3, i=6, g=2).assumptions == []
    with pytest.raises(ArchcalcError, match="in_channels=3 must be divisible by groups=2"):
        analyze(s, L=3, g=2)


def test_set_rejects_unknown_and_non_positive_values():
    with pytest.raises(
        ArchcalcError, match=r"cannot set 'X': not a declared symbol \(declared: A\)"
    ):
        analyze("specs/atari_dqn.yaml", X=3)
    with pytest.raises(ArchcalcError, match=r"symbol values are integers >= 0\. Received: A=-1"):
        analyze("specs/atari_dqn.yaml", A=-1)
    # 0 is a legal value (a padding may be 0); the field it lands in checks its own minimum
    with pytest.raises(ArchcalcError, match=r"^specs/atari_dqn.yaml:30: layers\[4\]\.out_features \(output\): expected out_features >= 1\. "
                       r"Received: out_features='A' = 0$"):  # fmt: skip
        analyze("specs/atari_dqn.yaml", A=0)
