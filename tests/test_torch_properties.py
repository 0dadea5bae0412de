"""Property: archcalc and PyTorch agree on random layer stacks, and on what is invalid.

The torch side is built here straight from the spec fields, independently of
archcalc's own resolution (verify.build uses archcalc's resolved values).
"""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, example, given, settings

torch = pytest.importorskip("torch", reason="needs the [verify] extra")

from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from archcalc import ArchcalcError, analyze  # noqa: E402


@st.composite
def stacks(draw):
    channels = draw(st.integers(1, 6))
    size = draw(st.integers(1, 20))
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv2d", "conv2d", "maxpool2d", "avgpool2d", "batchnorm2d",
                                     "conv_transpose2d", "conv1x"]))  # fmt: skip
        if kind in ("conv2d", "conv_transpose2d", "conv1x"):
            layer = {
                "type": "conv2d" if kind == "conv1x" else kind,
                "out_channels": draw(st.integers(1, 6)),
                "kernel_size": draw(st.integers(1, 6)),
                "stride": draw(st.integers(1, 3)),
                "padding": draw(st.one_of(st.integers(0, 3), st.just("same"))) if kind != "conv_transpose2d"
                else draw(st.integers(0, 3)),
                "dilation": draw(st.integers(1, 2)),
                "groups": draw(st.sampled_from([1, 1, 2, 3])),
                "bias": draw(st.booleans()),
            }  # fmt: skip
            if kind == "conv_transpose2d":
                layer["output_padding"] = draw(st.integers(0, 2))
        elif kind.endswith("pool2d"):
            layer = {"type": kind, "kernel_size": draw(st.integers(1, 5)),
                     "stride": draw(st.integers(1, 3)), "padding": draw(st.integers(0, 3)),
                     "ceil_mode": draw(st.booleans())}  # fmt: skip
            if kind == "maxpool2d":
                layer["dilation"] = draw(st.integers(1, 2))
        else:
            layer = {"type": kind}
            if draw(st.booleans()):
                layer["num_features"] = draw(st.integers(1, 6))
        layers.append(layer)
    if draw(st.booleans()):
        layers += [{"type": "flatten"}, {"type": "linear", "out_features": draw(st.integers(1, 5))}]
    return {"name": "random", "input": [channels, size, size], "layers": layers}


def torch_layers(spec: dict) -> list[nn.Module]:
    """Modules from the raw fields, channel counts taken from a real forward pass."""
    x = torch.zeros(1, *spec["input"])
    modules = []
    for layer in spec["layers"]:
        kind, f = layer["type"], {k: v for k, v in layer.items() if k != "type"}
        if kind == "conv2d":
            module = nn.Conv2d(x.shape[1], f.pop("out_channels"), **f)
        elif kind == "conv_transpose2d":
            module = nn.ConvTranspose2d(x.shape[1], f.pop("out_channels"), **f)
        elif kind == "maxpool2d":
            module = nn.MaxPool2d(**f)
        elif kind == "avgpool2d":
            module = nn.AvgPool2d(**f)
        elif kind == "batchnorm2d":
            module = nn.BatchNorm2d(f.get("num_features", x.shape[1]))
        elif kind == "flatten":
            module = nn.Flatten()
        else:
            module = nn.Linear(x.shape[1], f["out_features"])
        x = module.eval()(x)
        if x.numel() == 0:
            raise RuntimeError("empty output")
        modules.append(module)
    return modules


@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks())
@example(
    {
        "name": "ceil",
        "input": [1, 1, 1],  # a window hanging off the padded input
        "layers": [
            {"type": "avgpool2d", "kernel_size": 4, "stride": 2, "padding": 1, "ceil_mode": True}
        ],
    }
)
def test_archcalc_and_torch_agree(spec):
    try:
        analysis = analyze(spec)
    except ArchcalcError as err:
        archcalc_error = err
    else:
        archcalc_error = None
    try:
        modules = torch_layers(spec)
    except (RuntimeError, ValueError) as err:
        torch_error = err
    else:
        torch_error = None
    assert (archcalc_error is None) == (torch_error is None), (
        f"archcalc: {archcalc_error!s}; torch: {torch_error!s}"
    )
    if archcalc_error is not None:
        return
    leaves = [row for row in analysis.rows if not row.path.endswith(".activation")]
    x = torch.zeros(1, *spec["input"])
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        for row, module in zip(leaves, modules):
            x = module.eval()(x)
            assert tuple(x.shape[1:]) == row.output, row.path
            assert sum(p.numel() for p in module.parameters()) == row.params, row.path
    assert counter.get_total_flops() // 2 == analysis.totals["macs"]
