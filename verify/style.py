"""Style transfer in PyTorch, checked against ``archcalc style``.

With a randomly initialised network (this checks sizes and formulas, not
art): the feature map of every chosen layer must be N_l x M_l, its Gram
matrix N_l x N_l, and the style term computed with archcalc's normaliser
1/(4 N_l² M_l²) must equal the one computed from the tensors' own sizes. Then
a few Adam steps on the image pixels, network frozen, must lower E_total.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from archcalc.quantities.analysis import Analysis
from archcalc.questions.style import StyleLayer
from verify.build import build


def _features(model, layers: list[StyleLayer], x: torch.Tensor) -> dict[str, torch.Tensor]:
    found: dict[str, torch.Tensor] = {}
    handles = []
    for layer in layers:
        module = model.by_path[layer.row.path]

        def hook(mod, args, out, key=layer.name):
            found[key] = out[0].reshape(out.shape[1], -1)  # F^l: N_l x M_l (batch 1)

        handles.append(module.register_forward_hook(hook))
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return found


def run(
    analysis: Analysis, layers: list[StyleLayer], steps: int = 20, seed: int = 0
) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = build(analysis).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)  # the network stays fixed; only pixels move
    shape = (1, *model.input_shape)
    content_image, style_image = torch.rand(shape), torch.rand(shape)
    with torch.no_grad():
        targets_content = _features(model, layers, content_image)
        targets_style = {k: v @ v.T for k, v in _features(model, layers, style_image).items()}
    checks = []
    image = torch.rand(shape, requires_grad=True)
    features = _features(model, layers, image)
    for layer in layers:
        f = features[layer.name]
        n, m = f.shape
        checks.append(_check(f"style:{layer.name}:N_l", int(layer.filters), n))
        checks.append(_check(f"style:{layer.name}:M_l", int(layer.positions), m))
        if layer.role == "style":
            gram = f @ f.T
            checks.append(_check(f"style:{layer.name}:gram", [int(layer.gram) // int(layer.filters)] * 2,
                                 list(gram.shape)))  # fmt: skip
            squared = ((gram - targets_style[layer.name]) ** 2).sum().item()
            ours = float(layer.normaliser) * squared
            torch_side = squared / (4 * n * n * m * m)
            checks.append({"name": f"style:{layer.name}:E_l", "passed": math.isclose(ours, torch_side, rel_tol=1e-9),
                           "expected": ours, "measured": torch_side,
                           "detail": "1/(4 N_l² M_l²)·Σ(G−A)² with archcalc's normaliser vs the tensors' sizes"})  # fmt: skip
        else:
            checks.append(
                _check(f"style:{layer.name}:content_terms", int(layer.content_terms), f.numel())
            )
    optimiser = torch.optim.Adam([image], lr=0.01)
    styles = [layer for layer in layers if layer.role == "style"]
    losses = []
    for _ in range(steps + 1):
        feats = _features(model, layers, image)
        content = sum(0.5 * ((feats[l.name] - targets_content[l.name]) ** 2).sum()
                      for l in layers if l.role == "content")  # noqa: E741  # fmt: skip
        style = sum(float(l.normaliser) / len(styles) * ((feats[l.name] @ feats[l.name].T
                    - targets_style[l.name]) ** 2).sum() for l in styles)  # noqa: E741  # fmt: skip
        total = 1e-3 * content + 1e3 * style  # alpha/beta as in Gatys et al.'s 1e-3 ratio
        losses.append(total.item())
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
    checks.append({"name": "style:optimisation", "passed": losses[-1] < losses[0], "expected": f"below {losses[0]:.4g}",
                   "measured": losses[-1], "detail": f"{steps} Adam steps on the pixels, network frozen"})  # fmt: skip
    return {"checks": checks, "losses": losses}


def _check(name: str, expected: Any, measured: Any) -> dict[str, Any]:
    return {
        "name": name,
        "passed": expected == measured,
        "expected": expected,
        "measured": measured,
        "detail": "",
    }


def render(result: dict[str, Any]) -> str:
    lines = ["", "verified in PyTorch (random weights):"]
    for check in result["checks"]:
        mark = "ok  " if check["passed"] else "FAIL"
        lines.append(
            f"{mark} {check['name']:<32} expected {check['expected']!s:<24} measured {check['measured']!s}"
        )
    losses = result["losses"]
    if losses:
        lines.append(f"E_total: {losses[0]:.4g} -> {losses[-1]:.4g} over {len(losses) - 1} steps")
    failed = sum(not c["passed"] for c in result["checks"])
    lines.append(f"{len(result['checks']) - failed} passed, {failed} failed")
    return "\n".join(lines) + "\n"
