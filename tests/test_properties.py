"""Property tests: symbolic equals numeric, and only ArchcalcError ever escapes."""

from __future__ import annotations

import contextlib

import hypothesis.strategies as st
from hypothesis import HealthCheck, example, given, settings

from archcalc import ArchcalcError, analyze, load_spec
from archcalc.quantities.analysis import ROW_KEYS

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def field(draw, symbols: dict, low: int, high: int):
    """An int, or (sometimes) a fresh symbol whose default value is that int."""
    value = draw(st.integers(low, high))
    if value >= 1 and draw(st.booleans()):
        name = f"v{len(symbols)}"
        symbols[name] = value
        return name
    return value


@st.composite
def image_stack(draw):
    """A random conv/pool/BN stack over a (partly symbolic) image, ending in linear layers."""
    symbols: dict[str, int] = {}
    shape = [draw(field(symbols, 1, 6)), draw(field(symbols, 1, 24)), draw(field(symbols, 1, 24))]
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv2d", "maxpool2d", "avgpool2d", "batchnorm2d", "relu",
                                     "conv_transpose2d", "dropout"]))  # fmt: skip
        layer: dict = {"type": kind}
        if kind in ("conv2d", "conv_transpose2d"):
            groups = draw(st.sampled_from([1, 1, 2]))
            layer.update(
                out_channels=groups * draw(st.integers(1, 4)),
                kernel_size=draw(field(symbols, 1, 5)),
                stride=draw(field(symbols, 1, 3)),
                padding=draw(field(symbols, 0, 2)),
                dilation=draw(st.integers(1, 2)),
                groups=groups,
                bias=draw(st.booleans()),
            )
            if kind == "conv_transpose2d":
                layer["output_padding"] = draw(st.integers(0, 1))
        elif kind.endswith("pool2d"):
            k = draw(st.integers(1, 4))
            layer.update(kernel_size=k, stride=draw(field(symbols, 1, 3)),
                         padding=draw(st.integers(0, k // 2)), ceil_mode=draw(st.booleans()))  # fmt: skip
        layers.append(layer)
    layers.append({"type": "flatten"})
    layers.append(
        {"type": "linear", "out_features": draw(field(symbols, 1, 10)), "activation": "relu"}
    )
    return {"name": "random", "symbols": symbols, "input": shape, "layers": layers}


def _substituted(value, values):
    if value is None or isinstance(value, int):
        return value
    from sympy import Symbol

    result = value.subs({Symbol(k, integer=True, positive=True): v for k, v in values.items()})
    return int(result)


@SETTINGS
@given(image_stack())
def test_symbolic_results_equal_numeric_after_substitution(data):
    try:
        numeric = analyze(data)
    except ArchcalcError:
        return  # an invalid configuration; the next property covers those
    symbolic = analyze(data, symbolic=True)
    values = data["symbols"]
    assert len(symbolic.rows) == len(numeric.rows)
    for sym_row, num_row in zip(symbolic.rows, numeric.rows):
        assert tuple(_substituted(v, values) for v in sym_row.output) == num_row.output
        for key in ROW_KEYS:
            assert _substituted(getattr(sym_row, key), values) == getattr(num_row, key), key
    for key, value in symbolic.totals.items():
        assert _substituted(value, values) == numeric.totals[key]


@SETTINGS
@given(image_stack(), st.data())
def test_random_specs_analyse_or_fail_cleanly(data, draw):
    # Perturb one field to something possibly invalid: only ArchcalcError may come out.
    layer = draw.draw(st.sampled_from(data["layers"]))
    key = draw.draw(st.sampled_from(sorted(layer)))
    layer[key] = draw.draw(st.one_of(st.integers(-3, 50), st.text(max_size=12), st.none(),
                                     st.lists(st.integers(-1, 5), max_size=4), st.booleans()))  # fmt: skip
    try:
        result = analyze(data)
    except ArchcalcError as err:
        assert "\n" not in str(err) and str(err)
    else:
        assert result.totals["params"] >= 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "input", "layers", "type", "body", "blocks", "symbols", "params",
                         "out_channels", "kernel_size", "times", "branches", "expect", "x"]),
        children, max_size=5),
    max_leaves=25,
)  # fmt: skip


@SETTINGS
@given(json_values)
@example({"name": None, "type": "\n"})  # the spec's own "type" once broke the message in two
@example({"name": "x", "input": [3], "layers": [{"type": "\n", "x": 1}]})
def test_arbitrary_documents_never_escape_as_other_errors(document):
    try:
        load_spec(
            document
            if isinstance(document, dict)
            else {"name": "x", "input": [3], "layers": document}
        )
        analyze(document) if isinstance(document, dict) else None
    except ArchcalcError as err:
        # one line per problem: the error's own, then each of the others it carries
        lines = str(err).split("\n")
        assert len(lines) == 1 + len(err.others) and all(line.strip() for line in lines)
        for internal in ("function-", "[key]", "BinOp", "Input should", "pydantic", "Traceback"):
            assert internal not in str(err)  # no library internals in messages


@SETTINGS
@given(st.text(max_size=80))
def test_arbitrary_yaml_text_never_escapes(text):
    with contextlib.suppress(ArchcalcError):
        analyze(text)
