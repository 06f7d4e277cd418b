"""The symmetric block-low-rank (BLR) layer of Peters, Haber and Lensink.

``f(Y) = -K^T relu(K Y + b)`` where ``K`` is a 3x3 (2D) or 3x3x3 (3D) convolution from
``n`` state channels to ``r`` channels (the block rank) and ``K^T`` is its adjoint with
the same weights. With ``r < n`` the layer holds ``3**dim * n * r`` weights instead of the
``3**dim * n**2`` of a square symmetric layer, and ``K^T K`` has block rank at most ``r``.

The layer has its own backward pass (:func:`symmetric_blr_vjp`): both the memory-efficient
network and plain autograd use it, so the two differ only in what they keep in memory.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .haar import is_channels_last_3d, uses_onednn

__all__ = ["SymmetricBLRLayer", "symmetric_blr", "symmetric_blr_parts", "symmetric_blr_vjp", "conv_k", "conv_kt"]

_CONV = {2: F.conv2d, 3: F.conv3d}


def state_layout(x: torch.Tensor) -> torch.memory_format:
    """The memory layout the network keeps states like ``x`` in.

    3D states go channels-last where oneDNN convolves them: its convolutions read and
    write that layout, and the Haar transforms are cheapest in it, so no layer has to
    reorder a state. Everything else stays in PyTorch's default layout.
    """
    return torch.channels_last_3d if x.ndim == 5 and uses_onednn(x) else torch.contiguous_format


def _layout_of(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last_3d if is_channels_last_3d(x) else torch.contiguous_format


def _convolve(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Stride-1 convolution with zero padding ``k // 2`` (the size is kept)."""
    dim = weight.ndim - 2
    padding = weight.shape[-1] // 2
    if uses_onednn(x) and not torch.is_grad_enabled():
        # Channels-last spares oneDNN a reorder of every 3D input and output (2x at 8 channels).
        layout = torch.channels_last_3d if dim == 3 else torch.contiguous_format
        return torch.ops.aten.mkldnn_convolution(x.contiguous(memory_format=layout),
                                                 weight.contiguous(memory_format=layout), bias,
                                                 [padding] * dim, [1] * dim, [1] * dim, 1)
    return _CONV[dim](x, weight, bias, padding=padding)


def _adjoint_kernel(weight: torch.Tensor) -> torch.Tensor:
    # For stride 1 and zero padding k // 2, convolving with the spatially flipped,
    # channel-transposed kernel is exactly the adjoint of K (what conv_transpose computes),
    # and several times faster on CPUs.
    return weight.flip(tuple(range(2, weight.ndim))).transpose(0, 1)


def _weight_gradient(inputs: torch.Tensor, seeds: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``d<seeds, K inputs>/dK``, summed over the batch axis."""
    dim = weight.ndim - 2
    padding = weight.shape[-1] // 2
    if dim == 3:
        inputs = inputs.contiguous(memory_format=torch.channels_last_3d)
        seeds = seeds.contiguous(memory_format=torch.channels_last_3d)
    return torch.ops.aten.convolution_backward(
        seeds, inputs, weight, None, [1] * dim, [padding] * dim, [1] * dim, False, [0] * dim, 1,
        [False, True, False])[1]


def conv_k(y: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``K y (+ b)``: zero-padded convolution with kernel ``weight`` of shape (r, n, k, ...)."""
    return _convolve(y, weight, bias)


def conv_kt(z: torch.Tensor, weight: torch.Tensor, like: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``K^T z``, the adjoint of :func:`conv_k` without bias, in the memory layout of
    ``like`` (a state; default: PyTorch's default layout)."""
    layout = _layout_of(like) if like is not None else torch.contiguous_format
    return _convolve(z, _adjoint_kernel(weight)).contiguous(memory_format=layout)


def symmetric_blr_parts(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(relu(K y + b), f(y))`` without autograd: the activation is what the VJP reuses."""
    active = torch.relu_(conv_k(y, weight, bias))
    return active, conv_kt(active, weight, like=y).neg_()


def symmetric_blr_vjp(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, seed: torch.Tensor,
                      active: Optional[torch.Tensor] = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of ``<seed, f(y)>`` with respect to ``y``, the kernel and the bias.

    ``active = relu(K y + b)`` is recomputed unless given. With ``g = seed`` and
    ``a = active``: ``<g, f> = -<K g, a>``, so the seed of ``K y + b`` is
    ``s = -(K g) * [a > 0]``, ``dy = K^T s``, ``db = sum(s)`` and the kernel collects
    ``dK(<s, K y>) - dK(<a, K g>)``. Both kernel terms go through one batch-of-two
    weight-gradient call, which PyTorch also sends to its fast kernels.
    """
    with torch.no_grad():
        if active is None:
            active = torch.relu_(conv_k(y, weight, bias))
        pre = conv_k(seed, weight).neg_()
        pre.mul_(active > 0)
        grad_y = conv_kt(pre, weight, like=y)
        grad_bias = pre.sum(dim=tuple(d for d in range(pre.ndim) if d != 1))
        grad_weight = _weight_gradient(torch.cat([y, seed]), torch.cat([pre, active.neg()]), weight)
    return grad_y, grad_weight, grad_bias


class _SymmetricBLRFunction(torch.autograd.Function):
    """``f(y)`` for autograd: keeps ``y`` and ``relu(K y + b)`` (plain, per-layer memory)."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        active, f = symmetric_blr_parts(y, weight, bias)
        ctx.save_for_backward(y, weight, bias, active)
        return f

    @staticmethod
    def backward(ctx, seed: torch.Tensor):
        y, weight, bias, active = ctx.saved_tensors
        seed = seed.contiguous(memory_format=_layout_of(y))
        grad_y, grad_weight, grad_bias = symmetric_blr_vjp(y, weight, bias, seed, active)
        return grad_y, grad_weight, grad_bias


def symmetric_blr(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``-K^T relu(K y + b)``, the layer as a function of explicit parameters."""
    if torch.is_grad_enabled() and (y.requires_grad or weight.requires_grad or bias.requires_grad):
        return _SymmetricBLRFunction.apply(y, weight, bias)
    return symmetric_blr_parts(y, weight, bias)[1]


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
