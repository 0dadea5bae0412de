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

from fractions import Fraction

import torch
from torch import nn

from archcalc.quantities.analysis import Analysis
from archcalc.quantities.effective import effective_fields, reads_padding
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
        others = tuple(i for i in range(paths.ndim) if i != axis)
        line = paths.sum(others) if others else paths
        position = torch.arange(line.numel(), dtype=line.dtype)
        mean = float((position * line).sum() / line.sum())
        variance = float(((position - mean) ** 2 * line).sum() / line.sum())
        measured += [mean, variance]
        predicted += [float(centre[axis] * moments.jump[axis] + moments.mean[axis]),
                      float(moments.variance[axis])]  # fmt: skip
    close = all(abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b)) for a, b in zip(predicted, measured))
    return Check(f"erf:{row.path}", close, predicted, measured,
                 "effective field of the central unit: paths' total, then per dimension their "
                 "mean position and variance (relative 1e-9)")  # fmt: skip
