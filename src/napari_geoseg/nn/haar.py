"""Orthonormal Haar wavelet transforms that trade resolution for channels.

Channel order (subband-major, as in InvertibleNetworks.jl): the coarsened tensor has
``2**dim * C`` channels and channel ``s * C + c`` holds subband ``s`` of input channel
``c``. The subband index ``s`` has one bit per spatial axis, the first spatial axis being
the most significant bit; a bit is 0 for the low-pass (sum) filter and 1 for the
high-pass (difference) filter. Subband 0 is therefore the all-low-pass band: the first
``C`` channels are the input at half resolution, scaled by ``2**(dim/2)``.

Both transforms are orthonormal, so ``haar_refine`` is at once the inverse and the
adjoint of ``haar_coarsen`` and neither changes the Euclidean norm of a tensor.

A 3D tensor in the channels-last layout (``torch.channels_last_3d``, the layout the
network keeps its states in on CPUs) is transformed by one contraction with the 8 x 8
Haar matrix (without autograd and up to 32 channels: by one stride-2 convolution) and
comes back channels-last: the subbands of a voxel's channels sit next
to each other in memory there, so no strided shuffles are needed
(``benchmarks/state_layout.py`` times a training step both ways).
"""

from __future__ import annotations

import math

import torch

__all__ = ["haar_coarsen", "haar_refine"]

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


def is_channels_last_3d(x: torch.Tensor) -> bool:
    """True for a 5D tensor laid out channels-last and not also in the default layout."""
    # A tensor with one channel or unit sizes is both layouts: the generic path is as good.
    return x.ndim == 5 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d)


def _haar_matrix_3d(x: torch.Tensor) -> torch.Tensor:
    """The 3D Haar butterflies as one (2, 2, 2, 2, 2, 2) tensor: [subband bits, sample bits]."""
    pair = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=x.dtype, device=x.device) * _INV_SQRT2
    return torch.einsum("ip,jq,kr->ijkpqr", pair, pair, pair)


# Up to this many channels, a channels-last 3D transform without autograd is one oneDNN
# convolution (stride 2, the Haar kernel block-diagonal over channels): several times
# faster than the contraction, whose reorders move the whole tensor twice. The dense
# kernel costs 8 * C multiply-adds per voxel, so wide states keep the contraction.
_CONV_MAX_CHANNELS = 32
_KERNELS: dict = {}


def uses_onednn(x: torch.Tensor) -> bool:
    """Whether ``x`` is computed on by oneDNN: a float32 CPU tensor with oneDNN enabled."""
    # PyTorch sends a batch-1 convolution with few channels to its slow im2col kernel
    # (its heuristic wants N * C * D * H > 20480); oneDNN is 10-15x faster on exactly the
    # few-channel, large-volume convolutions of the network's fine levels.
    return (x.device.type == "cpu" and x.dtype == torch.float32
            and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)


def _conv_ready(x: torch.Tensor, channels: int) -> bool:
    return channels <= _CONV_MAX_CHANNELS and not torch.is_grad_enabled() and uses_onednn(x)


def _haar_kernel(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(8 C, C, 2, 2, 2): output channel ``s * C + c`` is subband ``s`` of channel ``c``."""
    key = (channels, x.dtype, x.device)
    if key not in _KERNELS:
        bands = _haar_matrix_3d(x).reshape(8, 2, 2, 2)
        kernel = torch.zeros(8, channels, channels, 2, 2, 2, dtype=x.dtype, device=x.device)
        index = torch.arange(channels, device=x.device)
        kernel[:, index, index] = bands[:, None]
        _KERNELS[key] = kernel.reshape(8 * channels, channels, 2, 2, 2).contiguous(
            memory_format=torch.channels_last_3d)
    return _KERNELS[key]


def _spatial_dim(x: torch.Tensor, dim: int | None) -> int:
    if dim is None:
        dim = x.ndim - 2
    if dim not in (2, 3) or x.ndim != dim + 2:
        raise ValueError(
            f"expected a tensor of shape (N, C, *spatial) with {dim} spatial axes "
            f"(dim must be 2 or 3), got shape {tuple(x.shape)}"
        )
    return dim


def _butterfly(y: torch.Tensor, axis: int) -> torch.Tensor:
    """Replace the pair (a, b) on a length-2 ``axis`` by ((a + b), (a - b)) / sqrt(2)."""
    a, b = y.unbind(axis)
    return torch.stack(((a + b) * _INV_SQRT2, (a - b) * _INV_SQRT2), dim=axis)


def haar_coarsen(x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Orthonormal one-level Haar transform: (N, C, *S) -> (N, 2**dim * C, *S/2).

    Parameters
    ----------
    x : torch.Tensor
        Tensor of shape ``(N, C, *spatial)`` whose spatial sizes are even.
    dim : int, optional
        Number of spatial axes (2 or 3). Defaults to ``x.ndim - 2``.

    Returns
    -------
    torch.Tensor
        Shape ``(N, 2**dim * C, *(s // 2 for s in spatial))``, channels in the
        subband-major order described in the module docstring.
    """
    dim = _spatial_dim(x, dim)
    n, c, *sizes = x.shape
    if any(s % 2 for s in sizes):
        raise ValueError(f"haar_coarsen needs even spatial sizes, got {tuple(sizes)}")
    if dim == 3 and is_channels_last_3d(x):
        if _conv_ready(x, c):
            return torch.ops.aten.mkldnn_convolution(x, _haar_kernel(x, c), None, [0] * 3, [2] * 3, [1] * 3,
                                                     1).contiguous(memory_format=torch.channels_last_3d)
        a, b, d = (s // 2 for s in sizes)
        # (N, A, 2, B, 2, D, 2, C) is a view of the channels-last memory.
        pairs = x.permute(0, 2, 3, 4, 1).reshape(n, a, 2, b, 2, d, 2, c)
        bands = torch.einsum("napbqdrc,ijkpqr->nabdijkc", pairs, _haar_matrix_3d(x))
        return bands.reshape(n, a, b, d, 8 * c).permute(0, 4, 1, 2, 3)
    # (N, C, S1/2, 2, S2/2, 2, ...): each trailing pair holds the two samples of a block.
    split = [n, c]
    for s in sizes:
        split += [s // 2, 2]
    y = x.reshape(split)
    pair_axes = [3 + 2 * k for k in range(dim)]
    for axis in pair_axes:
        y = _butterfly(y, axis)
    # Bring the subband bits in front of the channel axis: (N, 2, 2, [2,] C, S1/2, ...).
    order = [0, *pair_axes, 1, *[2 + 2 * k for k in range(dim)]]
    y = y.permute(order)
    return y.reshape(n, (2**dim) * c, *(s // 2 for s in sizes))


def haar_refine(x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Inverse (and adjoint) of :func:`haar_coarsen`: (N, 2**dim * C, *S) -> (N, C, *2S).

    Parameters
    ----------
    x : torch.Tensor
        Tensor of shape ``(N, 2**dim * C, *spatial)``.
    dim : int, optional
        Number of spatial axes (2 or 3). Defaults to ``x.ndim - 2``.

    Returns
    -------
    torch.Tensor
        Shape ``(N, C, *(2 * s for s in spatial))``.
    """
    dim = _spatial_dim(x, dim)
    n, channels, *sizes = x.shape
    bands = 2**dim
    if channels % bands:
        raise ValueError(
            f"haar_refine needs a channel count divisible by {bands} in {dim}D, got {channels}"
        )
    c = channels // bands
    if dim == 3 and is_channels_last_3d(x):
        if _conv_ready(x, c):
            # The transposed convolution with the same kernel is the adjoint, hence the inverse.
            return torch.nn.functional.conv_transpose3d(x, _haar_kernel(x, c), stride=2).contiguous(
                memory_format=torch.channels_last_3d)
        a, b, d = sizes
        split = x.permute(0, 2, 3, 4, 1).reshape(n, a, b, d, 2, 2, 2, c)
        # The Haar matrix is symmetric and orthogonal: its own inverse.
        pairs = torch.einsum("nabdijkc,ijkpqr->napbqdrc", split, _haar_matrix_3d(x))
        return pairs.reshape(n, 2 * a, 2 * b, 2 * d, c).permute(0, 4, 1, 2, 3)
    y = x.reshape(n, *([2] * dim), c, *sizes)
    # Back to (N, C, S1, 2, S2, 2, ...): spatial axis k is followed by its subband bit.
    order = [0, dim + 1]
    for k in range(dim):
        order += [dim + 2 + k, 1 + k]
    y = y.permute(order)
    # The 2x2 butterfly is symmetric and orthogonal, hence its own inverse.
    for k in range(dim):
        y = _butterfly(y, 3 + 2 * k)
    return y.reshape(n, c, *(2 * s for s in sizes))
