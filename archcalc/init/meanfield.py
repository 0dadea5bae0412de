"""Mean-field maps of single layers: the statistics that variance propagation carries.

A tensor is summarised by :class:`Moments`: its mean, its second moment
``E[x²]``, and ``common``, the second moment of the part that is the same for
every sample and every position of a channel (for a linear layer's units: the
same for every sample). Zero-mean weights turn inputs with non-zero channel
means (every ReLU output has one) into pre-activations ``z = c + e``: ``c`` a
random constant per output channel with ``E[c²] = n·Var[w]·common``, ``e`` the
rest. Element-wise activations see only the marginal of ``z``, but three
layers see the split:

- batch norm removes ``c``, so its gradient is divided by ``E[e²]`` alone. For
  batch-normalised ReLU networks ``E[c²] = E[z²]/π`` and the gradient grows by
  ``1/(1 - 1/π) = π/(π-1)`` per layer: Yang et al. 2019's batch-norm gradient
  explosion, derived here rather than assumed;
- max pooling takes the maximum of ``e`` over a window, shifted by ``c``;
- average pooling averages ``e`` and keeps ``c``.

Max pooling right after an increasing activation is taken exactly: the tensor
remembers its :class:`Source` ``φ(z)``, and ``max φ(z_i) = φ(c + max e_i)``
with the maximum's order-statistics density. The gradient a window routes
back meets ``φ'`` at the window's maximum, not at a random element, which for
ReLU means it is almost never stopped (``P(max > 0)`` instead of ``1/2``).

>>> x = Moments.iid(0.0, 1.0)                 # unit Gaussian input
>>> relu = activation("relu", {}, x)[0]
>>> round(relu.m2, 12), round(relu.common * 2 * math.pi, 12)   # E[x²] = 1/2, c² = mean² = 1/(2π)
(0.5, 1.0)
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from archcalc.init import activations
from archcalc.init.gaussian import cdf, density, expect, hermite_rule, legendre_rule
from archcalc.language.expr import product
from archcalc.layers.formulas import adaptive_window_counts, window_counts, windows_per_tap

#: Increasing activations: max pooling commutes with them.
INCREASING = frozenset({"relu", "leaky_relu", "elu", "selu", "tanh", "sigmoid", "identity",
                        "relu6", "hardsigmoid", "hardtanh", "softplus"})  # fmt: skip
_TINY = 1e-12
_OUTER_NODES = 32  # Hermite nodes over the channel constant c (smooth integrands)
_LAW_NODES = 24  # Hermite nodes per mixture component when a law is mapped through φ
_LAW_ATOMS = 64  # grid atoms a mapped law is stored on


@dataclass(frozen=True)
class Source:
    """A tensor that is ``scale·φ(z)`` element-wise, z Gaussian with the given moments."""

    activation: str
    negative_slope: float | None
    alpha: float | None
    extra: tuple
    z: Moments
    scale: float
    #: ``E[φ'²]`` that the gradient meets at the activation along this path: the plain
    #: slope, or after max pooling the slope at each window's maximum.
    slope: float


#: The law of a tensor's elements as a mixture of Gaussians: (weight, mean, variance).
Law = tuple[tuple[float, float, float], ...]


class Deferred:
    """A law computed on first use and then kept: most activations' image laws are never
    read (only a following activation or a residual stream reads one), and mapping a law
    through φ is the costliest step of a propagation."""

    __slots__ = ("make", "value")

    def __init__(self, make):
        self.make, self.value = make, None

    def __call__(self) -> Law:
        if self.value is None:
            self.value, self.make = self.make(), None
        return self.value


@dataclass(frozen=True)
class Moments:
    """Mean, second moment and channel-constant second moment of a tensor's elements."""

    mean: float
    m2: float
    common: float  # E[c²], c the per-channel constant; mean² <= common <= m2
    source: Source | None = None
    #: The elements' law where it is not Gaussian and matters: a residual stream
    #: ``x = φ(x_prev + body)`` (None: Gaussian with these moments). May be a
    #: :class:`Deferred` law, computed only if something reads :attr:`law`.
    law_source: Law | Deferred | None = None
    #: A concatenation's channel groups, (channels, moments) each: batch norm divides
    #: each channel's gradient by that channel's own spread, not by the average one.
    groups: tuple[tuple[float, Moments], ...] | None = None

    @property
    def law(self) -> Law | None:
        """The elements' law (see :attr:`law_source`), computed on first use."""
        source = self.law_source
        return source() if isinstance(source, Deferred) else source

    @classmethod
    def iid(cls, mean: float, m2: float) -> Moments:
        """Elements with no channel constant beyond the global mean."""
        return cls(mean, m2, mean * mean)

    @property
    def var(self) -> float:
        """Variance over everything (samples, positions and channels)."""
        return max(self.m2 - self.mean * self.mean, 0.0)

    @property
    def spread(self) -> float:
        """Variance within a channel: what batch norm divides by, ``E[e²]``."""
        return max(self.m2 - self.common, 0.0)

    @property
    def channel_spread(self) -> float:
        """Variance of the channel constants across channels, ``Var[c]``."""
        return max(self.common - self.mean * self.mean, 0.0)

    def weighted(self, factor: float, common_factor: float) -> Moments:
        """After zero-mean weights: ``E[z²] = factor·E[x²]``, ``E[c²] = common_factor·E[c_x²]``."""
        return Moments(0.0, factor * self.m2, min(common_factor * self.common, factor * self.m2))


#: Second moments are kept inside [TINY, HUGE] (or exactly 0): beyond, a signal has exploded
#: or vanished for any practical purpose, floats lose their meaning (inf - inf = nan) and
#: subnormal arithmetic is ten times slower.
HUGE, TINY = 1e300, 1e-300


def saturate(m: Moments) -> Moments:
    """``m`` with its second moment held in [TINY, HUGE] (below TINY: exactly zero).

    >>> saturate(Moments.iid(0.0, float("inf"))).m2, saturate(Moments.iid(0.0, 1e-310)).m2
    (1e+300, 0.0)
    """
    m2 = m.m2
    if TINY <= m2 <= HUGE or m2 == 0.0:
        return m
    if m2 < TINY:
        return Moments(0.0, 0.0, 0.0)
    if m2 != m2 or math.isinf(m2):  # nan or inf: nothing but "enormous" is known
        return Moments(0.0, HUGE, 0.0)
    scale = HUGE / m2
    return Moments(m.mean * math.sqrt(scale), HUGE, min(m.common * scale, HUGE))


def saturate_grad(g: Grad) -> Grad:
    """A gradient variance held in [TINY, HUGE] like :func:`saturate` (nan counts as huge)."""
    if isinstance(g, tuple):
        return tuple(saturate_grad(x) for x in g)
    if TINY <= g <= HUGE or g == 0.0:
        return g
    return 0.0 if g < TINY else HUGE


def border_factors(row: Any) -> tuple[float, float, float]:
    """Corrections of a convolution's fans for zero padding: forward, backward, common.

    Forward: taps inside the input per output, over the full window
    (``Π_d Σ_t n_t / (n_out·k)``, ``n_t`` the windows in which tap t lands on input,
    :func:`windows_per_tap`). Backward: windows covering each input, over the
    ``k/s`` of an unpadded map (``Π_d Σ_t n_t / (n_in·k/s)``). Common: a channel
    constant meets tap t's weight in ``n_t`` of the ``n_out`` positions, so the part
    that stays constant over positions is ``Π_d Σ_t (n_t/n_out)² / k``; what padding
    makes vary from border to centre joins the within-channel spread.
    All three are 1 for a convolution without padding whose windows tile the input.
    """
    h = row.hyper
    if not row.type.startswith("conv") or "kernel_size" not in h:
        return 1.0, 1.0, 1.0
    transposed = row.type.startswith("conv_transpose")
    forward = backward = common = 1.0
    dims = zip(row.input[1:], row.output[1:], h["kernel_size"], h["stride"], h["padding"],
               h["dilation"])  # fmt: skip
    for i, o, k, s, p, d in dims:
        if transposed:  # input position i, tap t feeds output i·s + t·d - p
            counts = windows_per_tap(i, k, s, p, d, o)
            forward *= sum(counts) / (o * k / s)
            backward *= sum(counts) / (i * k)
            common *= sum(counts) / (o * k / s)
        else:
            counts = windows_per_tap(o, k, s, p, d, i)
            forward *= sum(counts) / (o * k)
            backward *= sum(counts) / (i * k / s)
            common *= sum((n / o) ** 2 for n in counts) / k
    return forward, backward, common


def activation(kind: str, h: dict[str, Any], state: Moments) -> tuple[Moments, float]:
    """``φ(z)`` for ``z = c + e``: the new moments and ``E[φ'(z)²]``."""
    ns, alpha, extra = h.get("negative_slope"), h.get("alpha"), activations.extra_params(h)
    if kind == "softmax":
        return replace(state, source=None), 1.0
    law = state.law or ((1.0, state.mean, state.var),)
    mean = m2 = slope = 0.0
    for weight, mu, var in law:  # exact for a mixture: the components' moments, weighted
        first, second, third = activations.moments(kind, mu, var, ns, alpha, extra)
        mean, m2, slope = mean + weight * first, m2 + weight * second, slope + weight * third
    common = _common_after(kind, ns, alpha, extra, state, mean, m2)
    increasing = kind in INCREASING and (kind != "leaky_relu" or (ns is None or ns >= 0))
    source = Source(kind, ns, alpha, extra, state, 1.0, slope) if increasing else None
    act = activations.get(kind, ns, alpha, extra)
    image = Deferred(lambda: _image_law(act, law, mean, m2))
    return Moments(mean, m2, min(max(common, mean * mean), m2), source, image), slope


def add_gaussian(law: Law | None, mean: float, var: float) -> Law | None:
    """The law of ``x + b`` for b ~ N(mean, var) independent of x (None stays unknown)."""
    if law is None:
        return None
    return tuple((w, mu + mean, v + var) for w, mu, v in law)


def _image_law(act: activations.Activation, law: Law, mean: float, m2: float) -> Law:
    """The law of ``φ(u)``, u a Gaussian mixture, as atoms on a grid of :data:`_LAW_ATOMS`.

    Each component's image is sampled at Hermite nodes, the points are shared
    between neighbouring grid atoms (keeping mass and mean), and the atoms are
    then moved affinely to the exact mean and second moment.
    """
    nodes, weights = hermite_rule(_LAW_NODES)
    points = []
    for w, mu, v in law:
        if v > 0:
            sd = math.sqrt(v)
            points += [(w * h, act.phi(mu + sd * x)) for x, h in zip(nodes, weights)]
        else:  # an atom maps to an atom
            points.append((w, act.phi(mu)))
    lo, hi = min(p for _, p in points), max(p for _, p in points)
    var = max(m2 - mean * mean, 0.0)
    if hi - lo <= _TINY * (1 + abs(hi)) or var <= _TINY * max(m2, _TINY):
        return ((1.0, mean, 0.0),)
    step = (hi - lo) / (_LAW_ATOMS - 1)
    mass = [0.0] * _LAW_ATOMS
    for w, p in points:
        t = (p - lo) / step
        j = min(int(t), _LAW_ATOMS - 2)
        mass[j] += w * (j + 1 - t)
        mass[j + 1] += w * (t - j)
    atoms = [(m, lo + j * step) for j, m in enumerate(mass) if m > 1e-15]
    total = sum(m for m, _ in atoms)
    mu_a = sum(m * a for m, a in atoms) / total
    var_a = sum(m * (a - mu_a) ** 2 for m, a in atoms) / total
    scale = math.sqrt(var / var_a) if var_a > 0 else 1.0
    return tuple((m / total, mean + (a - mu_a) * scale, 0.0) for m, a in atoms)


def _common_after(kind: str, ns: float | None, alpha: float | None, extra: tuple, z: Moments,
                  mean: float, m2: float) -> float:  # fmt: skip
    """``E_c[(E_e φ(c + e))²]``: the channel-constant part after the activation."""
    sc2, se2 = z.channel_spread, z.spread
    if sc2 <= _TINY * max(z.m2, _TINY):
        return mean * mean  # every channel has the same constant: the global mean
    if se2 <= _TINY * z.m2:
        return m2  # nothing varies within a channel
    if kind in ("relu", "leaky_relu", "identity") and z.mean == 0.0:
        return _shared_relu(kind, ns, sc2, se2)
    if kind in ("relu", "leaky_relu", "identity"):

        def inner(c: float) -> float:  # closed form of E_e φ(c + e)
            return activations.moments(kind, c, se2, ns, alpha, extra)[0] ** 2

        return expect(inner, z.mean, math.sqrt(sc2), kink=0.0)
    # E[φ(u)φ(v)] with u, v sharing c: a two-dimensional Gauss-Hermite product rule.
    act = activations.get(kind, ns, alpha, extra)
    s = math.sqrt(z.var)
    rho = sc2 / z.var
    other = math.sqrt(max(1 - rho * rho, 0.0))
    nodes, weights = hermite_rule(_OUTER_NODES)
    total = 0.0
    for x, wx in zip(nodes, weights):
        u = act.phi(z.mean + s * x)
        total += (
            wx
            * u
            * sum(wy * act.phi(z.mean + s * (rho * x + other * y)) for y, wy in zip(nodes, weights))
        )
    return total


def _shared_relu(kind: str, ns: float | None, sc2: float, se2: float) -> float:
    """``E[φ(u)φ(v)]`` for u = c + e, v = c + e' (zero mean, shared c): the arc-cosine kernel
    (Cho & Saul 2009), exact and a thousand times cheaper than the quadrature over c.

    With ``s² = Var[c] + Var[e]`` and ``ρ = Var[c]/s²``, ReLU gives
    ``K = s²/(2π)·(√(1-ρ²) + ρ(π - arccos ρ))``; leaky ReLU, ``(1-a)·relu + a·x``, gives
    ``(1-a)²K + a·ρ·s²`` (``E[relu(u)·v] = ρs²/2`` by symmetry); the identity ``ρ·s²``.

    >>> round(_shared_relu("relu", None, 1.0, 0.0), 12)   # ρ = 1: E[relu(c)²] = 1/2
    0.5
    >>> round(_shared_relu("relu", None, 0.0, 1.0) * 2 * math.pi, 12)   # ρ = 0: E[relu]² = 1/(2π)
    1.0
    """
    s2 = sc2 + se2
    rho = min(sc2 / s2, 1.0)
    if kind == "identity":
        return sc2
    kernel = (
        s2 / (2 * math.pi) * (math.sqrt(max(1 - rho * rho, 0.0)) + rho * (math.pi - math.acos(rho)))
    )
    if kind == "relu":
        return kernel
    a = 0.01 if ns is None else ns
    return (1 - a) ** 2 * kernel + a * rho * s2


def pool_window_sizes(row: Any) -> Counter[int]:
    """How many output elements of a pooling layer have windows of each size.

    Padding and ceil_mode shorten border windows (max pooling pads with -inf);
    adaptive pooling uses PyTorch's windows ``[floor(o·n/out), ceil((o+1)·n/out))``.
    Counted in closed form per dimension, so the cost does not grow with the
    tensor's size.
    """
    h = row.hyper
    sizes: Counter[int] = Counter({1: 1})
    for d, (n_in, n_out) in enumerate(zip(row.input[1:], row.output[1:])):
        if row.type.startswith("adaptive"):
            counts = adaptive_window_counts(n_in, n_out)
        else:
            k, s, p, dil = h["kernel_size"][d], h["stride"][d], h["padding"][d], h["dilation"][d]
            counts = window_counts(n_in, n_out, k, s, p, dil)
        merged: Counter[int] = Counter()
        for a, na in sizes.items():
            for b, nb in counts.items():
                merged[a * b] += na * nb
        sizes = merged
    return sizes


@cache
def _max_nodes(window: int) -> tuple[tuple[float, float], ...]:
    """Nodes and weights for ``E[f(M)]``, M the maximum of ``window`` standard normals."""
    if window == 1:
        return tuple(zip(*hermite_rule(_OUTER_NODES)))
    xs, ws = legendre_rule(8)
    out = []
    for a in [x / 2 for x in range(-16, 16)]:  # panels of width 1/2 over [-8, 8]
        for x, w in zip(xs, ws):
            m = a + 0.25 + 0.25 * x
            weight = 0.25 * w * window * density(m) * cdf(m) ** (window - 1)
            if weight > 1e-15:
                out.append((m, weight))
    return tuple(out)


def max_pool(row: Any, state: Moments) -> tuple[Moments, float]:
    """Max pooling: the new moments and the backward factor (routing and ``φ'`` at the maxima).

    With a known increasing source ``φ(z)``, ``z = c + e``: ``E[φ(c + σ_e M)^k]`` over
    the channel constant and the window maximum M of standard normals, exactly.
    Otherwise the input itself is taken as Gaussian with its moments.
    """
    src = state.source
    if src is None:
        src = Source("identity", None, None, (), state, 1.0, 1.0)
    act = activations.get(src.activation, src.negative_slope, src.alpha, src.extra)
    z = src.z
    sizes = pool_window_sizes(row)
    total = sum(sizes.values())
    se = math.sqrt(z.spread)
    sc = math.sqrt(z.channel_spread)
    outer = [(z.mean, 1.0)] if sc == 0 else [
        (z.mean + sc * x, w) for x, w in zip(*hermite_rule(_OUTER_NODES))
    ]  # fmt: skip
    mean = m2 = common = slope = 0.0
    for c, wc in outer:
        channel_mean = 0.0
        for window, count in sizes.items():
            share = wc * count / total
            for m, wm in _max_nodes(window):
                v = c + se * m
                y, dy = act.phi(v), act.dphi(v)
                channel_mean += count / total * wm * y
                m2 += share * wm * y * y
                slope += share * wm * dy * dy
        mean += wc * channel_mean
        common += wc * channel_mean * channel_mean
    # The maxima as a Gaussian (Clark 1961) for a second max pool further on.
    mu_m = sum(count / total * sum(w * m for m, w in _max_nodes(n)) for n, count in sizes.items())
    m2_m = sum(count / total * sum(w * m * m for m, w in _max_nodes(n))
               for n, count in sizes.items())  # fmt: skip
    shifted = z.mean + se * mu_m
    z_max = Moments(shifted, sc * sc + shifted * shifted + se * se * max(m2_m - mu_m**2, 0.0),
                    sc * sc + shifted * shifted)  # fmt: skip
    k = src.scale
    out = Moments(k * mean, k * k * m2, min(k * k * common, k * k * m2),
                  replace(src, z=z_max, slope=slope))  # fmt: skip
    ratio = float(product(row.output[1:])) / float(product(row.input[1:]))
    return out, ratio * slope / src.slope if src.slope > 0 else ratio


#: A gradient's variance: one number, or one per channel group of the tensor it belongs to.
Grad = float | tuple[float, ...]


def grad_mean(g: Grad, state: Moments | None) -> float:
    """The channel-weighted mean of a per-group gradient (a number stays as it is)."""
    if isinstance(g, float | int):
        return float(g)
    groups = state.groups if state is not None and state.groups else ()
    if len(groups) != len(g):
        return sum(g) / len(g)
    total = sum(c for c, _ in groups)
    return sum(c * gi for (c, _), gi in zip(groups, g)) / total


def grad_add(a: Grad, b: Grad) -> Grad:
    """Sum of two gradients' variances of the same tensor (independent contributions)."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return tuple(x + y for x, y in zip(a, b))
    if isinstance(a, tuple):
        return tuple(x + b for x in a)
    if isinstance(b, tuple):
        return tuple(a + y for y in b)
    return a + b


def stream_slopes(
    act: activations.Activation, law_in: Law, body: Moments, law_out: Law,
    profile: list[float] | None,
) -> list[float]:  # fmt: skip
    """``E_b[φ'(a+b)²·p(φ(a+b))]`` for each atom a of a residual stream's input law.

    ``b`` is the body's output (Gaussian), ``p`` the output gradient's profile
    ``E[G² | x]/E[G²]`` over the atoms of ``law_out`` (linearly interpolated; None: flat).
    """
    positions = [mu for _, mu, _ in law_out]

    def given(x: float) -> float:
        if profile is None:
            return 1.0
        j = bisect.bisect_left(positions, x)
        if j <= 0 or j >= len(positions):
            return profile[0] if j <= 0 else profile[-1]
        x0, x1 = positions[j - 1], positions[j]
        t = (x - x0) / (x1 - x0) if x1 > x0 else 0.0
        return profile[j - 1] * (1 - t) + profile[j] * t

    nodes, weights = hermite_rule(_LAW_NODES)
    slopes = []
    for _, a, v in law_in:
        mu, sd = a + body.mean, math.sqrt(v + body.var)
        points = [(h, mu + sd * x) for x, h in zip(nodes, weights)]
        slopes.append(sum(h * act.dphi(u) ** 2 * given(act.phi(u)) for h, u in points))
    return slopes
