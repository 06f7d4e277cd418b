"""The symmetric block-low-rank (BLR) layer of Peters, Haber and Lensink.

``f(Y) = -K^T relu(K Y + b)`` where ``K`` is a 3x3 (2D) or 3x3x3 (3D) convolution from
``n`` state channels to ``r`` channels (the block rank) and ``K^T`` is its adjoint with
the same weights. With ``r < n`` the layer holds ``3**dim * n * r`` weights instead of the
``3**dim * n**2`` of a square symmetric layer, and ``K^T K`` has block rank at most ``r``.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SymmetricBLRLayer", "symmetric_blr", "conv_k", "conv_kt"]

_CONV = {2: F.conv2d, 3: F.conv3d}


def conv_k(y: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``K y (+ b)``: zero-padded convolution with kernel ``weight`` of shape (r, n, k, ...).

    3D inputs go in channels-last layout: oneDNN's weight-gradient kernel is about five
    times faster on it than on the default layout, and the weight gradient dominates a
    training step on CPUs.
    """
    if y.ndim == 5:
        y = y.contiguous(memory_format=torch.channels_last_3d)
    return _CONV[weight.ndim - 2](y, weight, bias, padding=weight.shape[-1] // 2)


def conv_kt(z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``K^T z``, the adjoint of :func:`conv_k` without bias.

    Evaluated as a convolution with the spatially flipped, channel-transposed kernel:
    for stride 1 and zero padding ``k // 2`` this is exactly the adjoint of ``K`` (the
    operator ``conv_transpose`` computes) and several times faster on CPUs.
    """
    adjoint = weight.flip(tuple(range(2, weight.ndim))).transpose(0, 1)
    # Back to the default layout, so that the states stay in one layout throughout.
    return _CONV[weight.ndim - 2](z, adjoint, padding=weight.shape[-1] // 2).contiguous()


def symmetric_blr(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``-K^T relu(K y + b)``, the layer as a function of explicit parameters."""
    return -conv_kt(torch.relu(conv_k(y, weight, bias)), weight)


class SymmetricBLRLayer(nn.Module):
    """Symmetric layer ``f(Y) = -K^T relu(K Y + b)`` with a block-low-rank ``K``.

    Parameters
    ----------
    channels : int
        Number of state channels ``n`` (input and output).
    rank : int
        Block rank ``r``: the number of channels of ``K Y``.
    dim : int
        Number of spatial axes, 2 or 3.
    kernel_size : int
        Odd convolution size; the padding keeps the spatial size.

    Notes
    -----
    Weights are Glorot-uniform and the bias is zero, as in the reference code.
    """

    def __init__(self, channels: int, rank: int, dim: int = 3, kernel_size: int = 3,
                 device=None, dtype=None) -> None:
        super().__init__()
        if dim not in _CONV:
            raise ValueError(f"dim must be 2 or 3, got {dim}")
        if channels < 1 or rank < 1:
            raise ValueError(f"channels and rank must be positive, got {channels} and {rank}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.channels, self.rank, self.dim = channels, rank, dim
        self.kernel_size = kernel_size
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(rank, channels, *([kernel_size] * dim), **factory))
        self.bias = nn.Parameter(torch.empty(rank, **factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight.device.type != "meta":
            nn.init.xavier_uniform_(self.weight)
            nn.init.zeros_(self.bias)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return symmetric_blr(y, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, rank={self.rank}, dim={self.dim}"
