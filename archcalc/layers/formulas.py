"""Every formula of archcalc, written once, generic over ints and sympy values.

Notation (the course's): input n (J or K), kernel k (M or N), stride s,
padding p (P), dilation d, groups g. ``floor`` stays symbolic when a symbol
is involved.
"""

from __future__ import annotations

import math
from collections import Counter

from archcalc.language.expr import Value, ceil_div, exact_div, floor_div, product


def conv_output_size(
    n: Value, k: Value, s: Value = 1, p: Value = 0, d: Value = 1, p_end: Value | None = None
) -> Value:
    """Output size of a convolution: ``floor((n + 2p - d(k-1) - 1)/s) + 1``.

    With d = 1 this is the textbook ``1 + (n + 2p - k)/s``. With different
    padding before and after (``p``, ``p_end``), ``2p`` is their sum.

    >>> conv_output_size(224, 11, s=4, p=2)   # AlexNet conv1, lecture version
    55
    >>> conv_output_size(224, 7, s=2, p=2, p_end=3)   # TF SAME: ceil(224/2)
    112
    """
    both = 2 * p if p_end is None else p + p_end
    # the constant part first: one symbolic addition where n is a symbol and the rest ints
    return floor_div(n + (both - d * (k - 1) - 1), s) + 1


def uncovered_input(
    n: Value, k: Value, s: Value = 1, p: Value = 0, d: Value = 1, p_end: Value | None = None
) -> Value:
    """Rows of the padded input after the last window: ``(n + 2p - d(k-1) - 1) mod s``.

    >>> uncovered_input(224, 11, s=4, p=2)
    1
    """
    both = 2 * p if p_end is None else p + p_end
    return (n + both - d * (k - 1) - 1) % s


def same_padding(n: Value, k: Value, s: Value = 1, d: Value = 1, lower: bool = False) -> tuple:
    """TensorFlow/Keras/ONNX SAME padding ``(before, after)``: output ``ceil(n/s)``, total
    padding ``max((ceil(n/s) - 1)·s + d(k-1) + 1 - n, 0)``, the odd pixel after (SAME_UPPER)
    or before (SAME_LOWER).

    >>> same_padding(224, 7, 2), same_padding(224, 7, 2, lower=True), same_padding(5, 1, 2)
    ((2, 3), (3, 2), (0, 0))
    """
    out = ceil_div(n, s)
    total = (out - 1) * s + d * (k - 1) + 1 - n
    if isinstance(total, int):
        total = max(total, 0)
    else:
        import sympy

        total = sympy.Max(total, 0)
    small = floor_div(total, 2)
    return (total - small, small) if lower else (small, total - small)


def pool_output_size(
    n: Value,
    k: Value,
    s: Value,
    p: Value = 0,
    d: Value = 1,
    ceil_mode: bool = False,
    p_end: Value | None = None,
) -> Value:
    """Output size of a pooling layer: ``floor((n + 2p - d(k-1) - 1)/s) + 1``.

    With ``ceil_mode`` the division rounds up, but (as in PyTorch) a last
    window that would start in the right padding is dropped.

    >>> pool_output_size(55, 3, 2)   # AlexNet pool1
    27
    >>> pool_output_size(6, 3, 2, ceil_mode=True), pool_output_size(5, 2, 2, p=1, ceil_mode=True)
    (3, 3)
    """
    span = n + (2 * p if p_end is None else p + p_end) - d * (k - 1) - 1
    if not ceil_mode:
        return floor_div(span, s) + 1
    out = ceil_div(span, s) + 1
    last_start, limit = (out - 1) * s, n + p  # the last window must start inside input/left pad
    if isinstance(out, int) and isinstance(limit, int):
        return out - 1 if last_start >= limit else out
    # With the sizes but n numbers, no condition is needed (sympy may take minutes to weigh
    # a chain of them: four such pools in a row did not finish). The result is the lesser of
    # ceil(span/s) + 1 and the windows that start before the right padding,
    # floor((n + p - 1)/s) + 1 (one dropped window always suffices where p_end <= d(k-1) + 1,
    # as PyTorch's rule p <= k/2 ensures); and which is the lesser does not depend on n:
    # ceil(span/s) = floor((span + s - 1)/s), and (span + s - 1) - (n + p - 1) is
    # s + p_end - d(k-1) - 1 (GoogLeNet's pools: at most 0, never dropped).
    after = p if p_end is None else p_end
    if all(isinstance(v, int) for v in (s, p, after, d, k)) and after <= (reach := d * (k - 1) + 1):
        return out if s + after <= reach else floor_div(n + p - 1, s) + 1
    import sympy

    return out - sympy.Piecewise((1, sympy.Ge(last_start, limit)), (0, True))


def conv_transpose_output_size(
    n: Value, k: Value, s: Value = 1, p: Value = 0, output_padding: Value = 0, d: Value = 1
) -> Value:
    """Output size of a transposed convolution: ``(n-1)s - 2p + d(k-1) + output_padding + 1``.

    >>> conv_transpose_output_size(7, 4, s=2, p=1)
    14
    """
    return (n - 1) * s - 2 * p + d * (k - 1) + output_padding + 1


def conv_fan_in(in_channels: Value, groups: Value, kernel: tuple) -> Value:
    """Inputs seen by one output unit: ``(C_in/g)·k_1·k_2···``.

    >>> conv_fan_in(48 * 2, 2, (5, 5))   # AlexNet conv2: 48 maps per group
    1200
    """
    return exact_div(in_channels, groups) * product(kernel)


def conv_fan_out(out_channels: Value, groups: Value, kernel: tuple) -> Value:
    """Outputs one input unit feeds: ``(C_out/g)·k_1·k_2···`` (PyTorch ignores g here)."""
    return conv_fan_in(out_channels, groups, kernel)


def weights_per_neuron(fan_in: Value, bias: bool) -> Value:
    """Weights of one neuron: ``fan_in + 1`` with a bias, else ``fan_in``.

    >>> weights_per_neuron(1 * 5 * 5, True)   # LeNet conv1
    26
    """
    return fan_in + 1 if bias else fan_in


def connections(neurons: Value, per_neuron: Value) -> Value:
    """Connections: ``neurons × weights per neuron`` (the bias counts as one).

    >>> connections(4704, 26)
    122304
    """
    return neurons * per_neuron


def shared_parameters(filters: Value, per_neuron: Value) -> Value:
    """Independent parameters with weight sharing: ``filters × weights per neuron``.

    >>> shared_parameters(96, 364)
    34944
    """
    return filters * per_neuron


def macs(neurons: Value, fan_in: Value) -> Value:
    """Multiply-accumulates, bias excluded: ``neurons × fan_in``."""
    return neurons * fan_in


def flops(mac_count: Value) -> Value:
    """Floating-point operations: ``2 × MACs``."""
    return 2 * mac_count


def conv_transpose_parameters(
    in_channels: Value, out_channels: Value, groups: Value, kernel: tuple, bias: bool
) -> Value:
    """Parameters of a transposed convolution: ``C_in·(C_out/g)·Πk + C_out·[bias]``.

    >>> conv_transpose_parameters(64, 32, 1, (4, 4), True)
    32800
    """
    weights = in_channels * conv_fan_in(out_channels, groups, kernel)
    return weights + out_channels if bias else weights


def normalization_parameters(features: Value, affine: bool) -> Value:
    """Learnable parameters of BN or LayerNorm: ``2 × features`` (gamma, beta) when affine.

    >>> normalization_parameters(64, True)
    128
    """
    return 2 * features if affine else 0


def attention_parameters(embed_dim: Value, bias: bool) -> Value:
    """Parameters of multi-head self-attention: ``4E² + 4E`` (in-projection 3E×E + 3E,
    out-projection E×E + E), ``4E²`` without biases.

    >>> attention_parameters(768, True)   # one ViT-B/16 encoder layer's attention
    2362368
    """
    weights = 4 * embed_dim * embed_dim
    return weights + 4 * embed_dim if bias else weights


def attention_macs(tokens: Value, embed_dim: Value) -> Value:
    """MACs of self-attention over L tokens: ``4·L·E²`` for the four projections plus
    ``2·L²·E`` for the scores QKᵀ and the weighted sum of V (softmax: 0).

    >>> attention_macs(197, 768)   # ViT-B/16
    524391936
    """
    return 4 * tokens * embed_dim * embed_dim + 2 * tokens * tokens * embed_dim


def matmul_macs(out: tuple, inner: Value) -> Value:
    """MACs of a matrix product: every output element sums ``inner`` products, ``Π out · k``.

    >>> matmul_macs((12, 197, 197), 64)
    29805312
    """
    return product(out) * inner


def crop_offset(n: Value, size: Value) -> Value | None:
    """Where a centre crop of ``size`` starts in ``n``: torchvision's
    ``int(round((n - size) / 2))``, rounding half to even (None when symbolic).

    >>> crop_offset(136, 104), crop_offset(5, 2), crop_offset(7, 2)   # U-Net's first skip: 16
    (16, 2, 2)
    """
    if not (isinstance(n, int) and isinstance(size, int)):
        return None
    half, odd = divmod(n - size, 2)
    return half + (odd and half % 2)


def table_taps(table: tuple, kernel: tuple) -> Value:
    """Weights of a convolution with a connection table: ``Σ_j |S_j|·Πk`` (no bias).

    >>> table_taps(((0, 1, 2), (1, 2, 3, 4)), (5, 5))
    175
    """
    return sum(len(maps) for maps in table) * product(kernel)


def table_parameters(table: tuple, kernel: tuple, bias: bool) -> Value:
    """Parameters with a connection table: ``Σ_j (|S_j|·Πk + 1)`` (LeNet-5's C3: 1,516)."""
    return table_taps(table, kernel) + (len(table) if bias else 0)


def subsample_parameters(maps: Value) -> Value:
    """LeNet-5's subsampling: a coefficient and a bias per map, ``2 × maps``.

    >>> subsample_parameters(6)
    12
    """
    return 2 * maps


def taps_in_bounds(positions: int, k: int, s: int, p: int, d: int, extent: int) -> int:
    """Window taps that land on real input: ``#{(o, t) : 0 <= o·s + t·d - p < extent}``.

    ``o`` runs over the ``positions`` windows along one dimension, ``t`` over the
    ``k`` taps of each. Without padding it is ``positions·k``; zero padding makes
    border windows shorter. Variance propagation divides it by the output count
    (average taps per output) or by the input count (average windows per input),
    so that borders are counted exactly rather than as full windows.

    >>> taps_in_bounds(7, 3, 1, 1, 1, 7)    # 3x3 conv, padding 1, on a 7-wide map
    19
    >>> taps_in_bounds(55, 11, 4, 0, 1, 227)  # AlexNet conv1: no padding, every tap counts
    605
    """
    return sum(windows_per_tap(positions, k, s, p, d, extent))


def windows_per_tap(positions: int, k: int, s: int, p: int, d: int, extent: int) -> list[int]:
    """For each tap t, the windows o in which it lands on input: ``0 <= o·s + t·d - p < extent``.

    >>> windows_per_tap(7, 3, 1, 1, 1, 7)   # the outer taps fall off one border each
    [6, 7, 6]
    """
    counts = []
    for t in range(k):
        offset = t * d - p  # input index of tap t in window o: o·s + offset
        first = -(offset // s) if offset < 0 else 0  # ceil(-offset/s): first window inside
        last = min(positions - 1, (extent - 1 - offset) // s)
        counts.append(max(0, last - first + 1))
    return counts


def window_counts(n: int, positions: int, k: int, s: int, p: int, d: int) -> Counter[int]:
    """Windows of each size (taps on real input) among ``positions`` pooling windows.

    Window o starts at ``o·s - p``; its taps are ``o·s - p + t·d``, t < k. Windows
    wholly inside the input have k taps; only the border ones, at most about
    ``(p + d(k-1))/s + 2`` of them, are counted one by one.

    >>> sorted(window_counts(10**15, 10**15 // 2, 2, 2, 0, 1).items())
    [(2, 500000000000000)]
    >>> sorted(window_counts(5, 3, 2, 2, 1, 1).items())   # padding 1: both ends are short
    [(1, 1), (2, 2)]
    """
    first = -(-p // s)  # ceil(p/s): the first window starting inside the input
    last = (n - 1 + p - d * (k - 1)) // s  # the last window ending inside it
    first, last = max(first, 0), min(last, positions - 1)
    counts: Counter[int] = Counter()
    if first <= last:
        counts[k] = last - first + 1
        border = [*range(0, first), *range(last + 1, positions)]
    else:
        border = range(positions)
    for o in border:
        start = o * s - p
        low = max(0, -(start // d)) if start < 0 else 0  # ceil(-start/d)
        high = min(k - 1, (n - 1 - start) // d)
        counts[max(0, high - low + 1)] += 1
    return counts


def adaptive_window_counts(n: int, out: int) -> Counter[int]:
    """Window sizes of adaptive pooling from n to ``out``, in closed form.

    Window o is ``[floor(o·n/out), ceil((o+1)·n/out))``; its size is ``a = ceil(n/out)``
    or ``a + 1``, and the sizes sum to ``n + out - gcd(n, out)``.

    >>> sorted(adaptive_window_counts(5, 3).items()), sorted(adaptive_window_counts(3, 5).items())
    ([(2, 2), (3, 1)], [(1, 3), (2, 2)])
    """
    a = -(-n // out)
    longer = n + out - math.gcd(n, out) - a * out
    return Counter({size: count for size, count in ((a, out - longer), (a + 1, longer)) if count})
