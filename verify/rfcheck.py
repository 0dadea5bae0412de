"""Check 8: receptive fields measured as the input-gradient support of one unit, and the
effective field (the gradient's total, mean and variance) where it is linear.

The spec's model is built in double precision with every weight 1 and every bias 0;
activations, normalisations and dropout become the identity and max pooling average
pooling (same window), so that a unit's gradient with respect to the input is the
number of paths from each input position to it: positive exactly on the positions
it sees. For the central unit of each layer whose field is a window (not the whole
input, not after upsampling) the first and last positions with a non-zero gradient
must be archcalc's ``-P + u·S`` and ``-P + u·S + r - 1``, clipped to the input.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from typing import Any

import torch
from torch import nn

from archcalc.quantities.analysis import Analysis
from archcalc.quantities.effective import IDENTITY_TYPES, effective_fields, reads_padding
from archcalc.quantities.receptive import receptive_fields
from verify.build import SpecModel
from verify.checks import Check

#: Modules that pass the signal through unchanged for this check.
_IDENTITY = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish,
             nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Softplus, nn.Tanh, nn.Sigmoid,
             nn.Dropout, nn.Dropout2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
             nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
             nn.LocalResponseNorm, nn.PReLU)  # fmt: skip


def _linearised(model: SpecModel) -> SpecModel:
    with torch.no_grad():
        for path, module in list(model.node_modules.items()):
            if isinstance(module, _IDENTITY):
                model.replace(path, nn.Identity())
            elif isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
                if module.dilation not in (1, (1,), (1, 1), (1, 1, 1)):
                    continue  # average pooling has no dilation: leave it (its rows are skipped)
                dims = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}[type(module)]
                pool = getattr(nn, f"AvgPool{dims}d")(module.kernel_size, module.stride,
                                                      module.padding, module.ceil_mode)  # fmt: skip
                model.replace(path, pool)
        for p in model.parameters():
            p.fill_(1.0)
        for name, b in model.named_parameters():
            if name.endswith("bias"):
                b.zero_()
    return model.double().eval()


def rf_checks(analysis: Analysis, limit: int = 40) -> list[Check]:
    """Check 8 for up to ``limit`` layers (spread over the network), each against PyTorch."""
    rf = receptive_fields(analysis.graph)
    erf = effective_fields(analysis.graph)
    model = _linearised(SpecModel(analysis))
    rows = []
    for row in analysis.rows:
        fields = rf.spatial(row.node)
        dims = len(analysis.input) - 1
        if (len(fields) != dims or row.node in rf.notes or rf.upsampled[row.node] or any(
                not isinstance(v, int) for f in fields for v in f)):  # fmt: skip
            continue  # whole input, upsampled, symbolic or not every input dimension
        if any(isinstance(v, Fraction) for f in fields for v in f):
            continue
        full = rf.fields[row.node]
        if len(row.output) != dims + 1 or full[0] is not None:
            continue  # not laid out as [C, ...] (channels-last between permutes)
        module = model.node_modules[row.path]
        if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
            continue
        rows.append((row, fields))
    if len(rows) > limit:
        step = len(rows) / limit
        rows = [rows[int(i * step)] for i in range(limit)]
    outputs: dict[str, torch.Tensor] = {}
    handles = [model.node_modules[row.path].register_forward_hook(
        lambda m, a, out, p=row.path: outputs.__setitem__(p, out)) for row, _ in rows]  # fmt: skip
    x = torch.ones(1, *[int(v) for v in analysis.input], dtype=torch.float64, requires_grad=True)
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    checks = []
    sizes = [int(v) for v in analysis.input[1:]]
    for row, fields in rows:
        out = outputs[row.path]
        centre = [n // 2 for n in out.shape[2:]]
        unit = out[(0, slice(None), *centre)].sum()
        (grad,) = torch.autograd.grad(unit, x, retain_graph=True)
        support = grad[0].abs().sum(0)
        measured, predicted = [], []
        for axis, ((r, S, P), u, n) in enumerate(zip(fields, centre, sizes)):
            others = tuple(i for i in range(len(sizes)) if i != axis)
            line = support.sum(others) if others else support
            hit = torch.nonzero(line > 0).flatten().tolist()
            measured.append([hit[0], hit[-1]] if hit else None)
            start = -P + u * S
            predicted.append([max(start, 0), min(start + r - 1, n - 1)])
        checks.append(Check(
            f"rf:{row.path}", measured == predicted, predicted, measured,
            "first and last input position seen by the central unit, per dimension (field "
            + ", ".join(f"{r}/{S}/{P}" for r, S, P in fields) + " size/stride/padding)",
        ))  # fmt: skip
        moments = erf.of(row.node)
        if moments is not None and not reads_padding(analysis.graph, row.node, tuple(centre)):
            checks.append(_erf_check(row, moments, centre, grad[0].sum(0)))
    return checks


def _erf_check(row, moments, centre: list[int], paths: torch.Tensor) -> Check:
    """The path counts' total, and per axis their mean and variance, against archcalc's."""
    mass = float(paths.sum())
    measured: list = [mass]
    predicted: list = [float(moments.mass)]
    for axis in range(paths.ndim):
        measured += list(_moments(paths, axis))
        predicted += [float(centre[axis] * moments.jump[axis] + moments.mean[axis]),
                      float(moments.variance[axis])]  # fmt: skip
    close = all(abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b)) for a, b in zip(predicted, measured))
    return Check(f"erf:{row.path}", close, predicted, measured,
                 "effective field of the central unit: paths' total, then per dimension their "
                 "mean position and variance (relative 1e-9)")  # fmt: skip


# --------------------------------------------------------------------- under random init

#: What a chain may hold for its random-init effective field to be the path distribution's.
_CHAIN = {"conv1d", "conv2d", "conv3d", "avgpool1d", "avgpool2d", "avgpool3d"}
#: Norms whose statistics mix positions (the linearised model takes them as the identity,
#: but with real statistics every input position moves every output).
_STATISTICS = {"group_norm", "instance_norm1d", "instance_norm2d", "instance_norm3d",
               "local_response_norm"}  # fmt: skip
#: Sampled initialisations (in batches, for the estimate's standard error), and the networks
#: small enough to sample them in verify (MACs of one forward pass).
INIT_SAMPLES, _BATCHES, INIT_MAX_MACS = 64, 8, 10_000_000


def _chain_to(graph: Any, node: int) -> bool:
    """Whether the node is reached from the input by a chain of convolutions, average
    pools, element-wise activations and norms (no merge, no max pool, no product)."""
    i = node
    while i != 0:
        n = graph.nodes[i]
        if (
            len(n.inputs) != 1
            or n.type in _STATISTICS
            or (n.type not in _CHAIN and n.type not in IDENTITY_TYPES)
        ):
            return False
        i = n.inputs[0]
    return True


def erf_init_check(analysis: Analysis, samples: int = INIT_SAMPLES) -> list[Check]:
    """The effective field under random initialisation (Luo et al. 2016), against PyTorch.

    archcalc's init model takes weights as independent and zero-mean, and a ReLU-like
    gate as independent of the weights. Then the expected squared gradient of a unit with
    respect to input position i, E[(dy/dx_i)²], is a sum over the paths to i of the
    product of the weights' variances (the cross terms of two different paths have a
    factor E[w]·E[w'] = 0): in a chain every path has the same product, so E[g²] is the
    path count, the all-ones model's gradient, times a constant. Its width per axis is
    therefore the effective field's variance, n(k²-1)/12 for n stride-1 layers of k taps,
    whatever the scheme's scale. Measured: the mean of g² over ``samples`` initialisations
    (the recommended scheme; random normal inputs) for the central unit of the deepest layer
    of such a chain; passes within four standard errors (from batches) plus 2 %.
    """
    macs = analysis.totals["macs"]
    if not isinstance(macs, int) or macs > INIT_MAX_MACS:
        return []  # too large to sample in verify (or symbolic)
    graph = analysis.graph
    erf = effective_fields(graph)
    row = None
    for candidate in reversed(analysis.rows):
        moments = erf.of(candidate.node)
        unit = tuple(n // 2 for n in candidate.output[1:])
        if (moments is not None and len(candidate.output) == len(analysis.input) >= 2
                and all(isinstance(n, int) for n in candidate.output)
                and _chain_to(graph, candidate.node)
                and not reads_padding(graph, candidate.node, unit)):  # fmt: skip
            row = candidate
            break
    if row is None:
        return []
    from archcalc.init.propagation import propagate
    from verify.initcheck import apply_scheme

    chain, i = set(), row.node
    while i != 0:  # only the chain's layers are drawn again: nothing else moves the unit
        chain.add(graph.nodes[i].path)
        i = graph.nodes[i].inputs[0]
    variances = {p.row.path: p.weight_variance for p in propagate(analysis, "recommended").layers
                 if p.row.path in chain}  # fmt: skip

    model = SpecModel(analysis).double().eval()
    captured: dict[str, torch.Tensor] = {}

    def stop(module: Any, args: Any, out: torch.Tensor) -> None:
        captured["y"] = out
        raise _Reached  # the layers above it play no part in its gradient

    handle = model.node_modules[row.path].register_forward_hook(stop)
    squares = []
    state = torch.random.get_rng_state()
    try:
        for seed in range(samples):
            torch.manual_seed(seed)
            apply_scheme(model, analysis, "recommended", variances)
            x = torch.randn(1, *analysis.input, dtype=torch.float64, requires_grad=True)
            with contextlib.suppress(_Reached):
                model(x)
            y = captured["y"]
            (grad,) = torch.autograd.grad(y[(0, 0, *[n // 2 for n in y.shape[2:]])], x)
            squares.append((grad[0] ** 2).sum(0))
    finally:
        handle.remove()
        torch.random.set_rng_state(state)
    stacked = torch.stack(squares)
    moments = erf.of(row.node)
    predicted, measured, slack = [], [], []
    for axis in range(stacked.ndim - 1):
        whole = _moments(stacked.mean(0), axis)[1]
        parts = torch.tensor([_moments(stacked[b::_BATCHES].mean(0), axis)[1]
                              for b in range(_BATCHES)])  # fmt: skip
        error = float(parts.std() / _BATCHES**0.5)
        expected = float(moments.variance[axis])
        predicted.append(expected)
        measured.append(whole)
        slack.append(4 * error + 0.02 * expected)
    passed = all(abs(p - m) <= s for p, m, s in zip(predicted, measured, slack))
    predicted, measured = [round(v, 4) for v in predicted], [round(v, 4) for v in measured]
    return [Check(f"erf-init:{row.path}", passed, predicted, measured,
                  f"variance per dimension of E[g²] of the central unit over {samples} random "
                  "initialisations (recommended scheme) = the effective field's; within 4 "
                  "standard errors + 2 %")]  # fmt: skip


class _Reached(Exception):
    """The forward pass has computed the unit the check looks at."""


def _moments(weights: torch.Tensor, axis: int) -> tuple[float, float]:
    """Mean and variance of the position along ``axis``, weighted by ``weights``."""
    others = tuple(i for i in range(weights.ndim) if i != axis)
    line = weights.sum(others) if others else weights
    position = torch.arange(line.numel(), dtype=line.dtype)
    mean = (position * line).sum() / line.sum()
    return float(mean), float(((position - mean) ** 2 * line).sum() / line.sum())
