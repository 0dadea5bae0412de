"""Property: the graph language's tensor operations agree with PyTorch.

Random chains of shape operations, norms, token-wise linear layers, attention and
broadcasting merges, on random shapes: archcalc and PyTorch (built here straight
from the spec fields, independently of archcalc) accept and reject the same
configurations, and agree on every shape, parameter count and MAC count.
"""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

torch = pytest.importorskip("torch", reason="needs the [verify] extra")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from archcalc import ArchcalcError, analyze  # noqa: E402

OPS = ["reshape", "permute", "transpose", "flatten", "unsqueeze", "narrow", "channel_shuffle",
       "upsample", "pixel_shuffle", "zero_pad", "center_crop", "mean", "group_norm", "linear",
       "attention", "add_pooled", "mul_gate", "concat_self", "matmul_self", "layernorm"]  # fmt: skip


@st.composite
def chains(draw):
    shape = [draw(st.integers(1, 8)) for _ in range(draw(st.integers(1, 3)))]
    ops = []
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(OPS))
        d = draw(st.integers(-3, 3))
        n = draw(st.integers(1, 6))
        ops.append((op, d, n, draw(st.integers(0, 2))))
    return shape, ops


def spec_and_torch(shape, ops):
    """The spec's layers, and the torch function (with its parametered modules) to compare."""
    layers, steps = [], []
    for k, (op, d, n, m) in enumerate(ops):
        name = f"t{k}"
        if op == "reshape":
            layers.append({"type": "reshape", "shape": [-1, n]})
            steps.append(("f", lambda x, n=n: x.reshape(x.shape[0], -1, n)))
        elif op == "permute":
            layers.append({"type": "permute", "dims": [d, 0]})
            steps.append(("f", lambda x, d=d: x.permute(0, _dim(d, x), 1)))
        elif op == "transpose":
            layers.append({"type": "transpose", "dim0": d, "dim1": 0})
            steps.append(("f", lambda x, d=d: x.transpose(_dim(d, x), 1)))
        elif op == "flatten":
            layers.append({"type": "flatten", "start_dim": m, "end_dim": d})
            steps.append(("f", lambda x, m=m, d=d: x.flatten(_dim(m, x), _dim(d, x))))
        elif op == "unsqueeze":
            layers.append({"type": "unsqueeze", "dim": d})
            steps.append(("f", lambda x, d=d: x.unsqueeze(_dim(d, x, 1))))
        elif op == "narrow":
            layers.append({"type": "narrow", "dim": d, "start": m, "length": n})
            steps.append(("f", lambda x, d=d, m=m, n=n: x.narrow(_dim(d, x), m, n)))
        elif op == "channel_shuffle":
            layers.append({"type": "channel_shuffle", "groups": n})
            steps.append(("m", nn.ChannelShuffle(n)))
        elif op == "upsample":
            layers.append({"type": "upsample", "scale_factor": n})
            steps.append(("f", lambda x, n=n: F.interpolate(x, scale_factor=n, mode="nearest")))
        elif op == "pixel_shuffle":
            layers.append({"type": "pixel_shuffle", "upscale_factor": n})
            steps.append(("f", lambda x, n=n: nn.PixelShuffle(n)(_spatial(x, 3))))
        elif op == "zero_pad":
            layers.append({"type": "zero_pad", "padding": m})
            steps.append(("f", lambda x, m=m: F.pad(_spatial(x, 2), (m,) * (2 * (x.ndim - 2)))))
        elif op == "center_crop":
            layers.append({"type": "center_crop", "size": n})
            steps.append(("f", lambda x, n=n: _crop(_spatial(x, 2), n)))
        elif op == "mean":
            layers.append({"type": "mean", "dims": [d], "keepdim": bool(m % 2)})
            steps.append(
                ("f", lambda x, d=d, m=m: _not_scalar(x.mean(_dim(d, x), keepdim=bool(m % 2))))
            )
        elif op == "group_norm":
            layers.append({"type": "group_norm", "num_groups": n})
            steps.append(("g", n))
        elif op == "layernorm":
            layers.append({"type": "layernorm", "normalized_shape": [n]})
            steps.append(("ln", n))
        elif op == "linear":
            layers.append({"type": "linear", "out_features": n})
            steps.append(("linear", n))
        elif op == "attention":
            layers.append({"type": "multihead_attention", "num_heads": n})
            steps.append(("attention", n))
        elif op == "add_pooled":  # x + mean over the last dimension, kept: broadcasting
            layers += [{"type": "identity", "name": name},
                       {"type": "mean", "dims": [-1], "keepdim": True, "name": f"p{k}"},
                       {"type": "add", "inputs": [name, f"p{k}"]}]  # fmt: skip
            steps.append(("f", lambda x: x + x.mean(-1, keepdim=True)))
        elif op == "mul_gate":  # x * sigmoid(x narrowed to one channel): broadcasting on dim 0
            layers += [{"type": "identity", "name": name},
                       {"type": "narrow", "dim": 0, "start": 0, "length": 1},
                       {"type": "sigmoid", "name": f"g{k}"},
                       {"type": "mul", "inputs": [name, f"g{k}"]}]  # fmt: skip
            steps.append(("f", lambda x: x * torch.sigmoid(x.narrow(1, 0, 1))))
        elif op == "concat_self":
            layers += [{"type": "identity", "name": name},
                       {"type": "concat", "inputs": [name, name], "dim": d}]  # fmt: skip
            steps.append(("f", lambda x, d=d: torch.cat([x, x], dim=_dim(d, x))))
        else:  # matmul_self: x @ x^T on the last two dimensions
            layers += [{"type": "identity", "name": name},
                       {"type": "transpose", "dim0": -1, "dim1": -2, "name": f"T{k}"},
                       {"type": "matmul", "inputs": [name, f"T{k}"]}]  # fmt: skip
            steps.append(("f", lambda x: torch.matmul(_spatial(x, 2), x.transpose(-1, -2))))
    return layers, steps


def _dim(d, x, extra=0):
    rank = x.ndim - 1 + extra
    if not -rank <= d < rank:
        raise IndexError(f"dimension {d} out of range for rank {rank}")
    return d % rank + 1


def _not_scalar(x):
    if x.ndim < 2:  # archcalc refuses a per-sample scalar (later layers would read the batch)
        raise ValueError("a scalar per sample")
    return x


def _spatial(x, rank):
    """Per-sample [C, ...] with at least ``rank`` dimensions (PyTorch would otherwise take the
    batch dimension for a channel one)."""
    if x.ndim - 1 < rank:
        raise ValueError(f"needs at least {rank} per-sample dimensions")
    return x


def _crop(x, n):
    out = x
    for axis in range(2, x.ndim):
        size = x.shape[axis]
        if n > size:
            raise ValueError("crop larger than the input")
        out = out.narrow(axis, int(round((size - n) / 2.0)), n)
    return out


def run_torch(shape, steps):
    x = torch.randn(2, *shape)  # batch 2: group norm needs more than one value per group
    params = 0
    for kind, step in steps:
        if kind == "f" or kind == "m":
            x = step(x)
        elif kind == "g":
            if x.ndim < 3:
                raise ValueError("group_norm needs [C, ...] with a spatial dimension here")
            module = nn.GroupNorm(step, x.shape[1])
            params += sum(p.numel() for p in module.parameters())
            x = module(x)
        elif kind == "ln":
            module = nn.LayerNorm(step)
            params += sum(p.numel() for p in module.parameters())
            x = module(x)
        elif kind == "linear":
            module = nn.Linear(x.shape[-1], step)
            params += sum(p.numel() for p in module.parameters())
            x = module(x)
        else:  # attention
            if x.ndim != 3:
                raise ValueError("attention needs tokens [L, E]")
            module = nn.MultiheadAttention(x.shape[-1], step, batch_first=True)
            params += sum(p.numel() for p in module.parameters())
            x = module(x, x, x, need_weights=False)[0]
        if x.numel() == 0:
            raise RuntimeError("empty tensor")
    return tuple(x.shape[1:]), params


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains())
def test_graph_operations_agree_with_torch(chain):
    shape, ops = chain
    layers, steps = spec_and_torch(shape, ops)
    spec = {"name": "random", "input": shape, "layers": layers}
    try:
        analysis = analyze(spec)
    except ArchcalcError as err:
        archcalc_error = err
    else:
        archcalc_error = None
    try:
        torch_shape, params = run_torch(shape, steps)
    except (RuntimeError, ValueError, IndexError, AssertionError) as err:
        torch_error = err
    else:
        torch_error = None
    assert (archcalc_error is None) == (torch_error is None), (
        f"{layers} on {shape}: archcalc: {archcalc_error!s}; torch: {torch_error!s}"
    )
    if archcalc_error is None:
        assert analysis.output == torch_shape, layers
        assert analysis.totals["params"] == params, layers


def test_built_models_count_like_archcalc():
    """verify's model of a graph spec: MACs by FlopCounterMode equal archcalc's, attention
    included (written out with matmuls so that the flop counter sees it)."""
    from verify.build import build

    spec = {"name": "tokens", "input": [6, 8], "layers": [
        {"type": "layernorm", "normalized_shape": [8], "name": "x"},
        {"type": "multihead_attention", "num_heads": 2, "name": "a"},
        {"type": "add", "inputs": ["x", "a"], "name": "y"},
        {"type": "linear", "out_features": 16, "activation": "gelu"},
        {"type": "transpose", "dim0": 0, "dim1": 1, "name": "t"},
        {"type": "matmul", "inputs": ["t", "y"]},
    ]}  # fmt: skip
    analysis = analyze(spec)
    model = build(analysis).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(torch.randn(1, 6, 8))
    assert tuple(out.shape[1:]) == analysis.output == (16, 8)
    assert counter.get_total_flops() // 2 == analysis.totals["macs"]
    assert sum(p.numel() for p in model.parameters()) == analysis.totals["params"]
