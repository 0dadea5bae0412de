"""Check 5: apply an init scheme in PyTorch and measure what archcalc init predicted.

For each seed: initialise every weighted layer with the scheme's Var[w]
(biases zero; batch/layer norm at gamma = 1, beta = 0), feed a batch of
N(0, 1) inputs in training mode, record each weighted layer's pre-activation
second moment (forward hook) and, after back-propagating a N(0, 1) gradient
from the output, the gradient's second moment at each weighted layer's input
(full backward hook). Seeds are combined by their geometric mean.

Tolerance, in log space: a finite-width network fluctuates around the
mean-field prediction, and the spread of log-variance grows with the sum of
1/width over the layers passed (Hanin & Nica 2018). With ``S`` that sum
(channels for a convolution, units for a linear layer) over the layers
before this one (forward) or after it (backward):

    |log(measured / predicted)| <= log(1.25) + 2.5·S + 3·sqrt(5·S / seeds)

i.e. 25 % where nothing accumulates, widening with depth/width, and tighter
with more seeds.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from archcalc.init.propagation import propagate
from archcalc.init.recommend import recommend
from archcalc.quantities.analysis import Analysis
from verify import modules
from verify.checks import Check

BASE_TOLERANCE = math.log(1.25)


def tolerance(width_sum: float, seeds: int) -> float:
    """Allowed |log(measured/predicted)| (see the module docstring)."""
    return BASE_TOLERANCE + 2.5 * width_sum + 3 * math.sqrt(5 * width_sum / seeds)


def apply_scheme(
    model: nn.Module, analysis: Analysis, scheme: str, variances: dict[str, float]
) -> None:
    """Initialise every weighted layer with its Var[w]; biases zero; norms at identity."""
    recs = {rec.row.path: rec for rec in recommend(analysis)}
    with torch.no_grad():
        for path, variance in variances.items():
            module = model.by_path[path]
            uniform = (scheme == "xavier") or (
                scheme == "recommended" and recs[path].scheme == "xavier"
            )
            weights = [p for name, p in module.named_parameters() if name.startswith("weight")]
            if scheme == "torch_default":
                module.reset_parameters()  # kaiming_uniform_(a=sqrt(5)) from PyTorch itself
            elif uniform:
                bound = math.sqrt(3 * variance)
                for weight in weights:
                    weight.uniform_(-bound, bound)
            else:
                for weight in weights:
                    weight.normal_(0.0, math.sqrt(variance))
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm,
                                   nn.GroupNorm, nn.PReLU, modules.Learned)):  # fmt: skip
                module.reset_parameters()  # at their defaults, re-drawn with this seed
            elif isinstance(module, nn.MultiheadAttention):  # PyTorch's own init, as modelled
                module.out_proj.reset_parameters()
                module._reset_parameters()


def measure(model: nn.Module, analysis: Analysis, scheme: str, variances: dict[str, float],
            seed: int, batch: int, device: torch.device) -> tuple[dict[str, float], dict[str, float]]:  # fmt: skip
    """One seed: second moments of pre-activations and of input gradients per weighted layer."""
    torch.manual_seed(seed)
    apply_scheme(model, analysis, scheme, variances)
    forward: dict[str, float] = {}
    backward: dict[str, float] = {}
    handles = []
    for path in variances:
        module = model.by_path[path]

        def fwd(mod, args, out, path=path):
            forward[path] = float(out.detach().double().pow(2).mean())

        def bwd(mod, grad_input, grad_output, path=path):
            backward[path] = float(grad_input[0].detach().double().pow(2).mean())

        handles += [module.register_forward_hook(fwd), module.register_full_backward_hook(bwd)]
    try:
        model.train()
        x = torch.randn(batch, *model.input_shape, device=device, requires_grad=True)
        out = model(x)
        outs = out if isinstance(out, tuple) else (out,)
        torch.autograd.backward(outs, [torch.randn_like(o) for o in outs])
    finally:
        for handle in handles:
            handle.remove()
    return forward, backward


def init_checks(analysis: Analysis, model: nn.Module, schemes: list[str], device: torch.device,
                seeds: int = 4, batch: int = 64) -> tuple[list[Check], dict[str, Any]]:  # fmt: skip
    """5. Measured against predicted variances for each scheme; also the data for plots."""
    checks: list[Check] = []
    curves: dict[str, Any] = {}
    # archcalc does not model softmax: measure the gradient before a trailing one
    nodes = analysis.graph.nodes
    trailing = [nodes[i].path for i in analysis.graph.outputs
                if nodes[i].type in ("softmax", "log_softmax")]  # fmt: skip
    saved = {path: model.replace(path, nn.Identity()) for path in trailing}
    try:
        for scheme in schemes:
            prediction = propagate(analysis, scheme)
            variances = {p.row.path: p.weight_variance for p in prediction.layers}
            logs_f: dict[str, list[float]] = {path: [] for path in variances}
            logs_b: dict[str, list[float]] = {path: [] for path in variances}
            for seed in range(seeds):
                forward, backward = measure(model, analysis, scheme, variances, seed, batch, device)
                for path in variances:
                    logs_f[path].append(math.log(max(forward[path], 1e-300)))
                    logs_b[path].append(math.log(max(backward[path], 1e-300)))
            widths = [float(p.row.output[0]) for p in prediction.layers]
            rows = []
            for i, layer in enumerate(prediction.layers):
                path = layer.row.path
                for direction, predicted, logs, width_sum in (
                    ("forward", layer.forward, logs_f[path], sum(1 / w for w in widths[:i])),
                    ("backward", layer.backward, logs_b[path], sum(1 / w for w in widths[i + 1 :])),
                ):
                    measured = math.exp(sum(logs) / len(logs))
                    if predicted > 0 and measured > 0:
                        error = abs(math.log(measured / predicted))
                    else:  # a gradient that cannot flow (a branch scaled by zero) is 0 in both
                        error = 0.0 if predicted == 0 and measured <= 1e-290 else math.inf
                    allowed = tolerance(width_sum, seeds)
                    checks.append(Check(
                        f"init:{path}", error <= allowed, predicted, measured,
                        f"{scheme} {direction}: |log(measured/predicted)| = {error:.3f} "
                        f"(allowed {allowed:.3f}, {seeds} seeds)",
                    ))  # fmt: skip
                rows.append({"path": path, "depth": layer.depth, "forward_predicted": layer.forward,
                             "forward_measured": math.exp(sum(logs_f[path]) / seeds),
                             "backward_predicted": layer.backward,
                             "backward_measured": math.exp(sum(logs_b[path]) / seeds)})  # fmt: skip
            curves[scheme] = rows
    finally:
        for path, module in saved.items():
            model.replace(path, module)
    return checks, curves
