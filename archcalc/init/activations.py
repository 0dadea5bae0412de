"""Activation functions for initialisation: gains, moments and recommendations.

For a pre-activation ``x ~ N(mu, sigma²)``, :func:`moments` gives ``E[φ(x)]``,
``E[φ(x)²]`` (what the next layer's weights multiply) and ``E[φ'(x)²]`` (what
gradients are multiplied by on the way back): closed forms for the
piecewise-linear ones, quadrature (:mod:`archcalc.init.gaussian`) for the rest.

>>> moments("relu", 0.0, 4.0)          # ReLU halves the second moment
(0.7978845608028654, 2.0, 0.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Callable

from archcalc.init.gaussian import cdf, density, expect

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


@dataclass(frozen=True)
class Activation:
    """What initialisation needs to know about one activation function."""

    name: str
    phi: Callable[[float], float]
    dphi: Callable[[float], float]
    kink: float | tuple[float, ...] | None  # where phi or phi' is not smooth
    g0: float  # course's forward gain: E[x_out²] ≈ G0·Var[pre] (linearised at 0)
    g1: float  # course's backward gain: E[φ'²] ≈ G1 (linearised at 0)
    torch_gain: float | None  # torch.nn.init.calculate_gain, None where torch has none
    torch_name: str | None  # the nonlinearity argument torch knows it by
    recommended: str  # "kaiming", "xavier" or "lecun"


def _relu(x: float) -> float:
    return x if x > 0 else 0.0


def _elu(x: float, alpha: float = 1.0) -> float:
    return x if x > 0 else alpha * math.expm1(x)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _softplus(x: float, beta: float, threshold: float) -> float:
    return x if beta * x > threshold else math.log1p(math.exp(beta * x)) / beta


def _mish(x: float) -> float:
    return x * math.tanh(_softplus(x, 1.0, 20.0))


def _mish_slope(x: float) -> float:
    t = math.tanh(_softplus(x, 1.0, 20.0))
    return t + x * (1 - t * t) * _sigmoid(x)


def _clamp(x: float, low: float, high: float) -> float:
    return low if x < low else high if x > high else x


def extra_params(h: dict) -> tuple:
    """The parameters beyond negative_slope/alpha that an activation row carries."""
    kind = h.get("type")
    if kind == "softplus":
        return (h.get("beta"), h.get("threshold"))
    if kind == "hardtanh":
        return (h.get("min_val"), h.get("max_val"))
    return ()


def for_row(kind: str, h: dict) -> Activation:
    """The :class:`Activation` of an activation row or node (its parameters from ``h``)."""
    if kind == "prelu":  # one slope per channel at init, all equal to ``init``
        return get("leaky_relu", h.get("init", 0.25))
    return get(kind, h.get("negative_slope"), h.get("alpha"), extra_params(h))


@cache
def get(name: str, negative_slope: float | None = None, alpha: float | None = None,
        extra: tuple = ()) -> Activation:  # fmt: skip
    """The :class:`Activation` for a spec's activation type (``None`` = identity)."""
    if name == "softplus":
        beta = 1.0 if not extra or extra[0] is None else extra[0]
        threshold = 20.0 if len(extra) < 2 or extra[1] is None else extra[1]
        return Activation(
            "softplus", lambda x: _softplus(x, beta, threshold),
            lambda x: 1.0 if beta * x > threshold else _sigmoid(beta * x), None, 0.25, 0.25,
            None, None, "kaiming",
        )  # fmt: skip
    if name == "hardtanh":
        low = -1.0 if not extra or extra[0] is None else extra[0]
        high = 1.0 if len(extra) < 2 or extra[1] is None else extra[1]
        return Activation(
            "hardtanh", lambda x: _clamp(x, low, high), lambda x: float(low < x < high),
            (low, high), 1, 1, None, None, "xavier",
        )  # fmt: skip
    a = 0.01 if negative_slope is None else negative_slope
    elu_alpha = 1.0 if alpha is None else alpha
    s, sa = SELU_SCALE, SELU_ALPHA
    table = {
        "identity": Activation("identity", lambda x: x, lambda x: 1.0, None, 1, 1, 1.0, "linear", "xavier"),
        "relu": Activation("relu", _relu, lambda x: float(x > 0), 0.0, 0.5, 0.5, math.sqrt(2), "relu", "kaiming"),
        "leaky_relu": Activation(
            "leaky_relu", lambda x: x if x > 0 else a * x, lambda x: 1.0 if x > 0 else a, 0.0,
            (1 + a * a) / 2, (1 + a * a) / 2, math.sqrt(2 / (1 + a * a)), "leaky_relu", "kaiming",
        ),
        "tanh": Activation("tanh", math.tanh, lambda x: 1 - math.tanh(x) ** 2, None, 1, 1, 5 / 3, "tanh", "xavier"),
        "sigmoid": Activation(
            "sigmoid", _sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x)), None, 1 / 16, 1 / 16,
            1.0, "sigmoid", "xavier",
        ),
        "gelu": Activation(
            "gelu", lambda x: x * cdf(x), lambda x: cdf(x) + x * density(x), None, 0.25, 0.25,
            None, None, "kaiming",
        ),
        "elu": Activation(
            "elu", lambda x: _elu(x, elu_alpha), lambda x: 1.0 if x > 0 else elu_alpha * math.exp(x),
            0.0, 1, 1, None, None, "kaiming",
        ),
        "selu": Activation(
            "selu", lambda x: s * _elu(x, sa), lambda x: s if x > 0 else s * sa * math.exp(x), 0.0,
            s * s * (1 + sa * sa) / 2, s * s * (1 + sa * sa) / 2, 0.75, "selu", "lecun",
        ),
        # softmax couples its inputs; archcalc does not model it and passes moments through.
        "softmax": Activation("softmax", lambda x: x, lambda x: 1.0, None, 1, 1, None, None, "xavier"),
        "log_softmax": Activation("log_softmax", lambda x: x, lambda x: 1.0, None, 1, 1, None, None,
                                  "xavier"),
        "relu6": Activation("relu6", lambda x: _clamp(x, 0.0, 6.0), lambda x: float(0 < x < 6),
                            (0.0, 6.0), 0.5, 0.5, None, None, "kaiming"),
        "hardswish": Activation(
            "hardswish", lambda x: x * _clamp(x + 3, 0.0, 6.0) / 6,
            lambda x: 0.0 if x < -3 else 1.0 if x > 3 else (2 * x + 3) / 6, (-3.0, 3.0),
            0.25, 0.25, None, None, "kaiming",
        ),
        "hardsigmoid": Activation(
            "hardsigmoid", lambda x: _clamp(x + 3, 0.0, 6.0) / 6, lambda x: float(-3 < x < 3) / 6,
            (-3.0, 3.0), 1 / 36, 1 / 36, None, None, "xavier",
        ),
        "silu": Activation(
            "silu", lambda x: x * _sigmoid(x),
            lambda x: _sigmoid(x) * (1 + x * (1 - _sigmoid(x))), None, 0.25, 0.25, None, None,
            "kaiming",
        ),
        "mish": Activation("mish", _mish, _mish_slope, None, math.tanh(math.log(2)) ** 2,
                           math.tanh(math.log(2)) ** 2, None, None, "kaiming"),
    }  # fmt: skip
    return table[name]


def _relu_moments(mu: float, sigma: float) -> tuple[float, float, float]:
    """Closed forms for ReLU of N(mu, sigma²): E[φ], E[φ²], E[φ'²] with t = mu/sigma."""
    if sigma == 0:
        return _relu(mu), _relu(mu) ** 2, float(mu > 0)
    t = mu / sigma
    first = mu * cdf(t) + sigma * density(t)
    second = (mu * mu + sigma * sigma) * cdf(t) + mu * sigma * density(t)
    return first, second, cdf(t)


@lru_cache(maxsize=4096)
def moments(
    name: str,
    mu: float,
    var: float,
    negative_slope: float | None = None,
    alpha: float | None = None,
    extra: tuple = (),
) -> tuple[float, float, float]:
    """``E[φ(x)]``, ``E[φ(x)²]``, ``E[φ'(x)²]`` for x ~ N(mu, var)."""
    sigma = math.sqrt(max(var, 0.0))
    if name in ("identity", "softmax", "log_softmax"):
        return mu, mu * mu + var, 1.0
    if name == "relu":
        return _relu_moments(mu, sigma)
    if name == "leaky_relu":
        a = 0.01 if negative_slope is None else negative_slope
        p1, p2, pd = _relu_moments(mu, sigma)  # positive part
        n1, n2, nd = _relu_moments(-mu, sigma)  # relu(-x): the negative part, mirrored
        return p1 - a * n1, p2 + a * a * n2, pd + a * a * nd
    act = get(name, negative_slope, alpha, extra)
    first = expect(act.phi, mu, sigma, act.kink)
    second = expect(lambda x: act.phi(x) ** 2, mu, sigma, act.kink)
    slope = expect(lambda x: act.dphi(x) ** 2, mu, sigma, act.kink)
    return first, second, slope


@lru_cache(maxsize=1024)
def value_slope_moment(
    name: str,
    mu: float,
    var: float,
    negative_slope: float | None = None,
    alpha: float | None = None,
    extra: tuple = (),
) -> float:
    """``E[φ(x)²·φ'(x)²]`` for x ~ N(mu, var): a gradient proportional to the activation's own
    output (an RBF layer's) meets its derivative at the same point."""
    act = get(name, negative_slope, alpha, extra)
    return expect(lambda x: (act.phi(x) * act.dphi(x)) ** 2, mu, math.sqrt(max(var, 0.0)), act.kink)
