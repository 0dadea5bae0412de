"""The per-layer mean-field maps: borders, channel constants, max pooling, residual streams."""

from __future__ import annotations

import math
import random

import mpmath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archcalc import analyze
from archcalc.init.gaussian import max_moments
from archcalc.init.meanfield import Moments, activation, border_factors, max_pool, pool_window_sizes
from archcalc.init.propagation import propagate
from archcalc.layers.formulas import taps_in_bounds, windows_per_tap


@settings(max_examples=300, deadline=None)
@given(
    positions=st.integers(1, 20), k=st.integers(1, 7), s=st.integers(1, 4),
    p=st.integers(0, 5), d=st.integers(1, 3), extent=st.integers(1, 30),
)  # fmt: skip
def test_windows_per_tap_counts_by_brute_force(positions, k, s, p, d, extent):
    brute = [sum(1 for o in range(positions) if 0 <= o * s + t * d - p < extent) for t in range(k)]
    assert windows_per_tap(positions, k, s, p, d, extent) == brute
    assert taps_in_bounds(positions, k, s, p, d, extent) == sum(brute)


def conv_row(n: int, k: int, stride: int = 1, padding: int = 0):
    net = analyze({"name": "c", "input": [1, n, n], "layers": [
        {"type": "conv2d", "out_channels": 1, "kernel_size": k, "stride": stride, "padding": padding}
    ]})  # fmt: skip
    return net.rows[0]


def test_border_factors_by_hand():
    # 3x3, padding 1 on 7x7: each dimension has 6 + 7 + 6 = 19 of 21 taps inside
    forward, backward, common = border_factors(conv_row(7, 3, padding=1))
    assert forward == pytest.approx((19 / 21) ** 2) and backward == pytest.approx((19 / 21) ** 2)
    assert common == pytest.approx(((36 + 49 + 36) / 49 / 3) ** 2)
    # LeNet-1998's C5: a 5x5 window over a 5x5 map feeds every input to exactly one output
    assert border_factors(conv_row(5, 5)) == (1.0, pytest.approx(1 / 25), 1.0)
    # unpadded windows that tile the input change nothing
    assert border_factors(conv_row(8, 2, stride=2)) == (1.0, 1.0, 1.0)


def test_max_pool_window_sizes_with_padding():
    net = analyze({"name": "p", "input": [1, 112, 112], "layers": [
        {"type": "maxpool2d", "kernel_size": 3, "stride": 2, "padding": 1}
    ]})  # fmt: skip
    # 55 full windows per dimension and one that starts in the padding
    assert pool_window_sizes(net.rows[0]) == {9: 55 * 55, 6: 2 * 55, 4: 1}


def pool_row(k: int):
    return analyze({"name": "p", "input": [1, 4 * k, 4 * k], "layers": [
        {"type": "maxpool2d", "kernel_size": k}
    ]}).rows[0]  # fmt: skip


def test_max_pool_of_gaussians_is_the_order_statistic():
    out, ratio = max_pool(pool_row(3), Moments.iid(0.0, 1.0))
    mean, m2 = max_moments(9)
    assert out.mean == pytest.approx(mean, rel=1e-6) and out.m2 == pytest.approx(m2, rel=1e-6)
    assert ratio == pytest.approx(1 / 9)  # one input in nine gets the gradient, unchanged


def test_max_pool_after_relu_is_exact_and_routes_past_the_kink():
    relu, slope = activation("relu", {}, Moments.iid(0.0, 1.0))
    assert slope == 0.5
    out, ratio = max_pool(pool_row(2), relu)
    # max of relu(z_i) = relu(max z_i): E[relu(M)^2] with M the max of 4 standard normals
    density = lambda z: 4 * mpmath.npdf(z) * mpmath.ncdf(z) ** 3  # noqa: E731
    exact = mpmath.quad(lambda z: z * z * density(z), [0, mpmath.inf])
    assert out.m2 == pytest.approx(float(exact), rel=1e-5)
    # the gradient reaches the window's maximum, which is positive unless all four are not
    assert ratio == pytest.approx((1 - 0.5**4) / 4 / slope, rel=1e-6)


def test_channel_constant_shrinks_max_pooling_gain():
    independent = max_pool(pool_row(2), Moments.iid(0.0, 1.0))[0]
    shared = max_pool(pool_row(2), Moments(0.0, 1.0, 0.75))[0]  # 3/4 constant over the channel
    # c + max(e): the window only spreads the quarter that varies
    assert shared.m2 == pytest.approx(0.75 + 0.25 * max_moments(4)[1], rel=1e-6)
    assert shared.m2 < independent.m2


def test_relu_channel_constant_is_the_squared_mean_without_channel_spread():
    out, _ = activation("relu", {}, Moments.iid(0.0, 2.0))
    assert out.common == pytest.approx(2 / (2 * math.pi))  # (sigma/sqrt(2 pi))^2


def test_batchnorm_relu_gradient_rate_is_derived_from_the_channel_constant():
    # the constant after BN -> ReLU -> linear is E[relu]^2 / E[relu^2] = 1/pi of E[z^2]
    net = propagate(analyze("specs/deep_relu_bn.yaml"))
    rates = [a.backward / b.backward for a, b in zip(net.layers[1:-2], net.layers[2:-1])]
    assert rates == pytest.approx([math.pi / (math.pi - 1)] * len(rates), rel=1e-6)


def test_residual_stream_law_matches_a_simulated_reflected_random_walk():
    # x_{l+1} = relu(x_l + b_l), b ~ N(0, 1), x_0 = relu(N(0, 2)): ResNet's identity stages
    state, _ = activation("relu", {}, Moments.iid(0.0, 2.0))
    rng = random.Random(0)
    xs = [max(rng.gauss(0, math.sqrt(2)), 0.0) for _ in range(40_000)]
    for _ in range(8):
        law = tuple((w, mu, v + 1.0) for w, mu, v in state.law)
        state, _ = activation(
            "relu", {}, Moments(state.mean, state.m2 + 1, state.mean**2, law_source=law)
        )
        xs = [max(x + rng.gauss(0, 1), 0.0) for x in xs]
    mean = sum(xs) / len(xs)
    m2 = sum(x * x for x in xs) / len(xs)
    assert state.mean == pytest.approx(mean, rel=0.02)
    assert state.m2 == pytest.approx(m2, rel=0.03)


@pytest.mark.parametrize("kind, slope", [("relu", None), ("leaky_relu", 0.2), ("leaky_relu", None),
                                         ("identity", None)])  # fmt: skip
@pytest.mark.parametrize("sc2, se2", [(0.3, 0.7), (0.01, 2.0), (1.5, 0.2), (1.0, 1e-9)])
def test_shared_constant_closed_form_equals_the_quadrature(kind, slope, sc2, se2):
    # zero mean takes the arc-cosine kernel; a mean of 1e-300 still takes the quadrature
    from archcalc.init import meanfield as mf

    closed = mf._common_after(kind, slope, None, (), mf.Moments(0.0, sc2 + se2, sc2), 0.0, 0.0)
    quadrature = mf._common_after(kind, slope, None, (), mf.Moments(1e-300, sc2 + se2, sc2), 0.0,
                                  0.0)  # fmt: skip
    assert closed == pytest.approx(quadrature, rel=1e-12)
