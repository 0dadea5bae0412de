"""Gaussian expectations ``E[f(mu + sigma z)]``, z ~ N(0, 1), in pure Python.

Smooth integrands at moderate scale (sigma <= 1) use Gauss-Hermite quadrature
with an *even* number of nodes. A Hermite rule converges slowly across a jump
(an odd rule even puts a node exactly on it) and loses accuracy when the
integrand varies on a scale much finer than sigma (tanh' at large variance),
so kinked integrands (ELU/SELU derivatives jump at 0) and large sigmas use a
composite Gauss-Legendre rule whose panels break at the kink, on the
Gaussian's scale and on the activation's unit scale. Piecewise-linear
activations have closed forms (:mod:`archcalc.init.activations`), which the tests
hold these rules against, together with high-precision mpmath values.

>>> round(expect(lambda x: x * x, 0.0, 1.0), 12)
1.0
>>> round(expect(lambda x: max(x, 0.0) ** 2, 0.0, 1.0, kink=0.0), 12)
0.5
"""

from __future__ import annotations

import math
from functools import cache, lru_cache
from typing import Callable

HERMITE_NODES = 120  # even: no node at 0
LEGENDRE_NODES = 24  # per panel
TAIL = 12.0  # |z| beyond 12 carries less than 1e-32 of the Gaussian mass


@cache
def hermite_rule(n: int = HERMITE_NODES) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Nodes and weights for ``E[f(z)] ≈ Σ w_i f(x_i)``, z ~ N(0, 1) (weights sum to 1).

    Newton's method on the orthonormal Hermite recurrence (Golub-Welsch-free),
    physicists' nodes scaled by sqrt(2).
    """
    nodes: list[float] = [0.0] * n
    weights: list[float] = [0.0] * n
    pim4 = math.pi**-0.25
    m = (n + 1) // 2
    z = 0.0
    for i in range(m):
        # Standard initial guesses for the largest roots, then from the previous ones.
        if i == 0:
            z = math.sqrt(2 * n + 1) - 1.85575 * (2 * n + 1) ** (-0.16667)
        elif i == 1:
            z -= 1.14 * n**0.426 / z
        elif i == 2:
            z = 1.86 * z - 0.86 * nodes[0]
        elif i == 3:
            z = 1.91 * z - 0.91 * nodes[1]
        else:
            z = 2.0 * z - nodes[i - 2]
        for _ in range(100):
            p1, p2 = pim4, 0.0
            for j in range(1, n + 1):
                p3, p2 = p2, p1
                p1 = z * math.sqrt(2.0 / j) * p2 - math.sqrt((j - 1) / j) * p3
            pp = math.sqrt(2.0 * n) * p2
            z1, z = z, z - p1 / pp
            if abs(z - z1) <= 1e-15:
                break
        nodes[i], nodes[n - 1 - i] = z, -z
        weights[i] = weights[n - 1 - i] = 2.0 / (pp * pp)
    scale = 1 / math.sqrt(math.pi)
    return tuple(x * math.sqrt(2) for x in nodes), tuple(w * scale for w in weights)


@cache
def legendre_rule(n: int = LEGENDRE_NODES) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Gauss-Legendre nodes and weights on [-1, 1]."""
    nodes: list[float] = [0.0] * n
    weights: list[float] = [0.0] * n
    for i in range((n + 1) // 2):
        z = math.cos(math.pi * (i + 0.75) / (n + 0.5))
        for _ in range(100):
            p1, p2 = 1.0, 0.0
            for j in range(1, n + 1):
                p3, p2 = p2, p1
                p1 = ((2 * j - 1) * z * p2 - (j - 1) * p3) / j
            pp = n * (z * p1 - p2) / (z * z - 1)
            z1, z = z, z - p1 / pp
            if abs(z - z1) <= 1e-15:
                break
        nodes[i], nodes[n - 1 - i] = -z, z
        weights[i] = weights[n - 1 - i] = 2 / ((1 - z * z) * pp * pp)
    return tuple(nodes), tuple(weights)


def density(z: float) -> float:
    """Standard normal density φ(z)."""
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def cdf(z: float) -> float:
    """Standard normal distribution function Φ(z)."""
    return 0.5 * math.erfc(-z / math.sqrt(2))


def _legendre(g: Callable[[float], float], a: float, b: float) -> float:
    """∫_a^b g(x) dx on one panel."""
    if b <= a:
        return 0.0
    nodes, weights = legendre_rule()
    half, mid = (b - a) / 2, (a + b) / 2
    return half * sum(w * g(mid + half * x) for x, w in zip(nodes, weights))


_GAUSS_STEPS = (-12, -9, -7, -5.5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5.5, 7, 9, 12)
_UNIT_STEPS = (-16, -8, -4, -2, -1, -0.5, 0, 0.5, 1, 2, 4, 8, 16)


def expect(
    f: Callable[[float], float],
    mu: float,
    sigma: float,
    kink: float | tuple[float, ...] | None = None,
) -> float:
    """``E[f(mu + sigma z)]`` for z ~ N(0, 1).

    ``kink``: where f (as a function of its own argument) is not smooth (one
    point, or several: ReLU6 bends at 0 and 6, hardswish at -3 and 3).
    """
    if sigma == 0:
        return f(mu)
    kinks = () if kink is None else (kink,) if isinstance(kink, (int, float)) else kink
    if not kinks and sigma <= 1:
        nodes, weights = hermite_rule()
        return sum(w * f(mu + sigma * x) for x, w in zip(nodes, weights))
    lo, hi = mu - TAIL * sigma, mu + TAIL * sigma
    cuts = {mu + sigma * t for t in _GAUSS_STEPS} | {t for t in _UNIT_STEPS if lo < t < hi}
    cuts |= {k for k in kinks if lo < k < hi}
    edges = sorted(cuts)

    def g(x: float) -> float:
        return density((x - mu) / sigma) / sigma * f(x)

    return sum(_legendre(g, a, b) for a, b in zip(edges, edges[1:]))


@lru_cache(maxsize=256)
def max_moments(window: int) -> tuple[float, float]:
    """E[M] and E[M²] for M the maximum of ``window`` independent N(0, 1) variables.

    The density of M is ``window·φ(z)·Φ(z)^(window-1)``.

    >>> round(max_moments(2)[0], 12) == round(1 / math.sqrt(math.pi), 12)
    True
    """
    if window == 1:
        return 0.0, 1.0

    def moment(power: int) -> float:
        edges = _GAUSS_STEPS
        return sum(
            _legendre(lambda z: window * z**power * density(z) * cdf(z) ** (window - 1), a, b)
            for a, b in zip(edges, edges[1:])
        )

    return moment(1), moment(2)
