"""torch.nn modules for the layer types torch.nn lacks as modules, or whose arguments differ.

Each takes the archcalc layer's resolved hyperparameters; shapes are per sample
in archcalc, so a dimension ``d`` here is ``d + 1`` in PyTorch (the batch).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Add(nn.Module):
    """Element-wise sum of the inputs (broadcasting)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Mul(nn.Module):
    """Element-wise product of the inputs (broadcasting, e.g. a [C,1,1] gate)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Concat(nn.Module):
    """torch.cat along a per-sample dimension; a learned tensor (batch 1) is expanded."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        batch = max(x.shape[0] for x in xs)
        return torch.cat([x.expand(batch, *x.shape[1:]) for x in xs], dim=self.dim + 1)


class MatMul(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


class Learned(nn.Module):
    """A learned tensor of a given shape (a class token, a position embedding, a layer scale),
    returned with a batch dimension of 1 (broadcast by the merges that read it)."""

    def __init__(self, shape: tuple[int, ...], init: float = 0.0, std: float = 0.0):
        super().__init__()
        self.init, self.std = init, std
        self.weight = nn.Parameter(torch.empty(*shape))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.fill_(self.init)
            if self.std:
                self.weight.add_(torch.randn_like(self.weight) * self.std)

    def forward(self) -> torch.Tensor:
        # without autograd, no view of a parameter (a view that "requires grad" but has no
        # grad_fn trips torch's module tracker, which FlopCounterMode uses)
        weight = self.weight if torch.is_grad_enabled() else self.weight.detach()
        return weight.unsqueeze(0)


class Reshape(nn.Module):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Permute(nn.Module):
    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = (0, *(d + 1 for d in dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)


class Transpose(nn.Module):
    def __init__(self, dim0: int, dim1: int):
        super().__init__()
        self.dim0, self.dim1 = dim0 + 1, dim1 + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(self.dim0, self.dim1)


class Unsqueeze(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(self.dim)


class Narrow(nn.Module):
    def __init__(self, dim: int, start: int, length: int):
        super().__init__()
        self.dim, self.start, self.length = dim + 1, start, length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.narrow(self.dim, self.start, self.length)


class Pad(nn.Module):
    """Zero padding, ``(before, after)`` per spatial dimension in archcalc's order."""

    def __init__(self, before: tuple[int, ...], after: tuple[int, ...]):
        super().__init__()
        self.pads = tuple(p for b, a in zip(reversed(before), reversed(after)) for p in (b, a))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads)


class CenterCrop(nn.Module):
    """torchvision's center_crop offsets: ``int(round((n - size) / 2))`` per dimension."""

    def __init__(self, offsets: tuple[int, ...], size: tuple[int, ...]):
        super().__init__()
        self.offsets, self.size = offsets, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for d, (start, length) in enumerate(zip(self.offsets, self.size)):
            x = x.narrow(d + 2, start, length)
        return x


class Mean(nn.Module):
    def __init__(self, dims: tuple[int, ...], keepdim: bool):
        super().__init__()
        self.dims, self.keepdim = tuple(d + 1 for d in dims), keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(self.dims, keepdim=self.keepdim)


class SelfAttention(nn.MultiheadAttention):
    """nn.MultiheadAttention as self-attention on [L, E] tokens (batch first), its output only.

    The parameters are nn.MultiheadAttention's (so its weights load as they are); the
    forward pass is written out with matmuls, the same function as PyTorch's, because
    PyTorch's fused inference path is invisible to torch.utils.flop_counter.
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool, dropout: float):
        super().__init__(embed_dim, num_heads, dropout=dropout, bias=bias, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n, length, width = x.shape
        heads = self.num_heads
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(n, length, heads, width // heads).transpose(1, 2) for t in (q, k, v))
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(width // heads)
        weights = F.dropout(scores.softmax(dim=-1), self.dropout, self.training)
        out = torch.matmul(weights, v).transpose(1, 2).reshape(n, length, width)
        return self.out_proj(out)


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth: drop whole samples ('row') or the batch in training."""

    def __init__(self, p: float, mode: str):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        shape = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        keep = 1.0 - self.p
        noise = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * noise.div_(keep)


class PaddedConv(nn.Module):
    """A convolution that zero-pads ``before``/``after`` each spatial dimension itself
    (asymmetric or SAME padding, which torch.nn's convolutions cannot say)."""

    def __init__(self, conv: nn.Module, before: tuple[int, ...], after: tuple[int, ...]):
        super().__init__()
        self.conv = conv
        self.before, self.after = tuple(before), tuple(after)
        self.pads = tuple(p for b, a in zip(reversed(before), reversed(after)) for p in (b, a))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pads))

    def code(self) -> str:
        return f"PaddedConv(nn.{_first_line(self.conv)}, {self.before}, {self.after})"


def _first_line(module: nn.Module) -> str:
    return repr(module).splitlines()[0]


#: Constructor code of the modules above, for `archcalc export` (which copies their source).
CODE = {
    Concat: lambda m: f"Concat({m.dim})",
    Learned: lambda m: f"Learned({tuple(m.weight.shape)}, init={m.init}, std={m.std})",
    Reshape: lambda m: f"Reshape({m.shape})",
    Permute: lambda m: f"Permute({tuple(d - 1 for d in m.dims[1:])})",
    Transpose: lambda m: f"Transpose({m.dim0 - 1}, {m.dim1 - 1})",
    Unsqueeze: lambda m: f"Unsqueeze({m.dim - 1})",
    Narrow: lambda m: f"Narrow({m.dim - 1}, {m.start}, {m.length})",
    Pad: lambda m: f"Pad({_unpairs(m.pads)[0]}, {_unpairs(m.pads)[1]})",
    CenterCrop: lambda m: f"CenterCrop({m.offsets}, {m.size})",
    Mean: lambda m: f"Mean({tuple(d - 1 for d in m.dims)}, {m.keepdim})",
    SelfAttention: lambda m: (
        f"SelfAttention({m.embed_dim}, {m.num_heads}, bias="
        f"{m.in_proj_bias is not None}, dropout={m.dropout})"
    ),
    StochasticDepth: lambda m: f"StochasticDepth({m.p}, {m.mode!r})",
    PaddedConv: lambda m: m.code(),
}


def _unpairs(pads: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    pairs = [(pads[i], pads[i + 1]) for i in range(0, len(pads), 2)][::-1]
    return tuple(b for b, _ in pairs), tuple(a for _, a in pairs)
