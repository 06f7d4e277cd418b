"""A HyperbolicNet between a learned lifting of the input and a learned classification head.

``scores = head([Y, X])`` with ``Y`` the last state of ``HyperbolicNet(lift(X))``. The
lifting (a 1 x 1 convolution) maps any number of input channels (image channels,
position, a mask, a cube's bands) onto the network's width, so the network no longer
has to carry the classes in its first channels, and the head (another 1 x 1
convolution) reads the last state together with the input itself: a voxel's own value
reaches the classifier however deep the network is, which is what a per-voxel
classifier lives on. Only the last state feeds the head, so the memory for states
still does not grow with depth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .diagnostics import power_step
from .hyperbolic import HyperbolicNet

__all__ = ["HyperbolicSegmenter", "SmoothedCopies", "StepNormBound"]


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised 1D Gaussian of standard deviation ``sigma``, truncated at 3 sigma."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


class SmoothedCopies(nn.Module):
    """The input with Gaussian-smoothed copies of its first channels appended.

    For each scale ``s`` of ``sigmas`` and each of the first ``channels`` channels
    ``x_c``: the local mean ``G_s * x_c`` and the local amplitude
    ``sqrt(G_s * x_c**2)`` (a seismic trace's reflection strength, a spectrum's
    brightness around a pixel), and with ``edges`` also the gradient magnitude and the
    Laplacian of the local mean (central differences: edges and blobs). These are the
    smoothing, energy and edge filters a pixel classifier such as ilastik reads, fixed
    rather than learned: with a few labelled voxels the lifting and the head can weigh
    them at once, where the network would need many steps to learn such filters. No
    weights; the borders replicate the edge.

    Parameters
    ----------
    channels : int
        Leading channels that get smoothed copies (the image channels; position and
        mask channels come after them and are passed through only).
    sigmas : sequence of float
        Scales in voxels.
    dim : int
        Spatial axes, 2 or 3.
    edges : bool
        Add the gradient magnitude and the Laplacian of each local mean.
    """

    def __init__(self, channels: int, sigmas: Sequence[float], dim: int, edges: bool = False) -> None:
        super().__init__()
        if channels < 1 or not sigmas or min(sigmas) <= 0:
            raise ValueError(f"need channels >= 1 and positive sigmas, got {channels} and {tuple(sigmas)}")
        self.channels, self.sigmas, self.dim = int(channels), tuple(float(s) for s in sigmas), int(dim)
        self.edges = bool(edges)
        for k, sigma in enumerate(self.sigmas):
            self.register_buffer(f"kernel{k}", gaussian_kernel(sigma), persistent=False)

    @property
    def out_channels_added(self) -> int:
        return (4 if self.edges else 2) * len(self.sigmas) * self.channels

    def _smooth(self, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        conv = F.conv3d if self.dim == 3 else F.conv2d
        channels, radius = x.shape[1], kernel.numel() // 2
        for axis in range(self.dim):
            shape = [1] * self.dim
            shape[axis] = kernel.numel()
            weight = kernel.to(x).reshape(1, 1, *shape).expand(channels, 1, *shape)
            pad = [0, 0] * self.dim
            pad[2 * (self.dim - 1 - axis):2 * (self.dim - 1 - axis) + 2] = [radius, radius]
            x = conv(F.pad(x, pad, mode="replicate"), weight, groups=channels)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image = x[:, :self.channels]
        parts = [x]
        for k in range(len(self.sigmas)):
            kernel = getattr(self, f"kernel{k}")
            both = self._smooth(torch.cat([image, image * image], 1), kernel)
            mean, power = both[:, :self.channels], both[:, self.channels:]
            parts += [mean, power.clamp_min(0).sqrt()]
            if self.edges:
                parts += self._gradient_and_laplacian(mean)
        return torch.cat(parts, 1)

    def _gradient_and_laplacian(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Gradient magnitude and Laplacian of ``x`` by central differences."""
        padded = F.pad(x, [1, 1] * self.dim, mode="replicate")
        squares, laplacian = torch.zeros_like(x), torch.zeros_like(x)
        for axis in range(2, 2 + self.dim):
            n = x.shape[axis]
            after, before = padded.narrow(axis, 2, n), padded.narrow(axis, 0, n)
            centre = [slice(None)] * 2 + [slice(1, -1)] * self.dim
            centre[axis] = slice(None)
            after, before = after[tuple(centre)], before[tuple(centre)]
            squares += (0.5 * (after - before)) ** 2
            laplacian += after + before - 2 * x
        return [squares.sqrt(), laplacian]


class HyperbolicSegmenter(nn.Module):
    """Lifting, :meth:`HyperbolicNet.symmetric` and a 1 x 1 head, as one module.

    Parameters
    ----------
    in_channels : int
        Channels of the input ``X``.
    out_channels : int
        Score channels returned (the classes are read from the first ones).
    width : int
        Channels of the network's states at full resolution.
    depths, ranks, up_depths, h
        The network's design (see :meth:`HyperbolicNet.symmetric`).
    dim : int
        Number of spatial axes, 2 or 3.
    head : bool
        False gives the bare network of the paper, as older model files hold it: no
        lifting (``width`` must equal ``in_channels``) and the scores are the last
        state itself.
    smoothing : sequence of float
        With a head: scales of the :class:`SmoothedCopies` of the first
        ``smoothed_channels`` input channels that the lifting and the head read beside
        the input (empty: none).
    smoothed_channels : int
        How many leading input channels are smoothed (the image channels).
    smoothing_edges : bool
        The smoothed copies include gradient magnitudes and Laplacians
        (``SmoothedCopies(edges=True)``).

    Examples
    --------
    >>> model = HyperbolicSegmenter(5, 3, width=4, depths=(1, 1), ranks=(2, 4), dim=2)
    >>> model(torch.randn(1, 5, 8, 8)).shape
    torch.Size([1, 3, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, width: int, depths: Sequence[int],
                 ranks: Sequence[int], *, up_depths: Optional[Sequence[int]] = None, h: float = 0.2,
                 dim: int = 3, head: bool = True, smoothing: Sequence[float] = (),
                 smoothed_channels: int = 0, smoothing_edges: bool = False) -> None:
        super().__init__()
        if not head and width != in_channels:
            raise ValueError(f"without a head the width must equal the input channels, got {width} and "
                             f"{in_channels}")
        if min(in_channels, out_channels, width) < 1:
            raise ValueError(f"channels must be positive, got in {in_channels}, out {out_channels}, "
                             f"width {width}")
        self.in_channels, self.out_channels, self.width, self.dim = in_channels, out_channels, width, dim
        self.has_head = head
        conv = nn.Conv3d if dim == 3 else nn.Conv2d
        self.net = HyperbolicNet.symmetric(width, depths=depths, ranks=ranks, up_depths=up_depths, dim=dim, h=h)
        self.smoothing = (SmoothedCopies(smoothed_channels, smoothing, dim, edges=smoothing_edges)
                          if head and smoothing else None)
        features = in_channels + (self.smoothing.out_channels_added if self.smoothing is not None else 0)
        #: Channels of :meth:`inputs`: what the lifting and the head read.
        self.feature_channels = features
        if head:
            self.lift = conv(features, width, 1)
            self.head = conv(width + features, out_channels, 1)
        else:
            self.lift = self.head = None

    @property
    def input_multiple(self) -> int:
        """Spatial sizes of the input must be multiples of this."""
        return self.net.input_multiple

    @property
    def layers(self) -> nn.ModuleList:
        """The network's BLR layers."""
        return self.net.layers

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """What the lifting and the head read: ``x`` and its smoothed copies, if any."""
        return self.smoothing(x) if self.smoothing is not None else x

    def lifted(self, x: torch.Tensor) -> torch.Tensor:
        """The network's input state for ``x``."""
        return self.lift(self.inputs(x)) if self.lift is not None else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(N, out_channels, *spatial)`` for ``x`` of shape ``(N, in_channels, *spatial)``."""
        if x.ndim != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input of shape (N, {self.in_channels}, {', '.join('S' * self.dim)}), "
                             f"got {tuple(x.shape)}")
        if self.head is None:
            return self.net(x)[1][:, :self.out_channels]
        features = self.inputs(x)
        y = self.net(self.lift(features))[1]
        return self.head(torch.cat([y.contiguous(), features], 1))


class StepNormBound:
    """Keep every layer within the leapfrog stability bound ``h * ||K_j||_2 <= bound``.

    After each optimiser step, call the instance: one step of power iteration on
    ``K^T K`` per layer (its vector is kept between calls, so the estimate converges
    over the first steps and follows the weights as they change), and a layer whose
    ``h * ||K||_2`` exceeds the bound has its weights scaled back onto it. This is the
    projection the paper's stability analysis (§2.1) suggests: unconstrained training
    drifts well past the bound (``h * ||K|| = 4.45`` was seen), where the network is
    no longer a stable discretisation.

    Parameters
    ----------
    net : HyperbolicNet
    bound : float
        ``h * ||K||_2`` allowed per layer (2 is the leapfrog limit).
    size : int
        Side of the grid the operator is applied on (see
        :func:`~napari_geoseg.nn.layer_step_norms`).
    """

    def __init__(self, net: HyperbolicNet, bound: float = 2.0, size: int = 8, seed: int = 0) -> None:
        if not bound > 0:
            raise ValueError(f"bound must be positive, got {bound}")
        self.net, self.bound = net, float(bound)
        generator = torch.Generator().manual_seed(seed)
        self.vectors = []
        for layer in net.layers:
            weight = layer.weight
            v = torch.randn(1, layer.channels, *([size] * net.dim), generator=generator)
            self.vectors.append((v / v.norm()).to(device=weight.device, dtype=weight.dtype))
        self._calls = 0

    @torch.no_grad()
    def __call__(self, iterations: int = 1) -> list[float]:
        """Update the estimates, project, and return ``h * ||K_j||_2`` per layer after projection."""
        if self._calls == 0:
            iterations = max(iterations, 20)  # from a random start: converge once
        self._calls += 1
        norms = []
        for index, layer in enumerate(self.net.layers):
            weight, v = layer.weight, self.vectors[index]
            sigma2 = 0.0
            for _ in range(iterations):
                sigma2, v = power_step(v, weight)
            self.vectors[index] = v
            step = self.net.h * max(sigma2, 0.0) ** 0.5
            if step > self.bound:
                weight.mul_(self.bound / step)
                step = self.bound
            norms.append(step)
        return norms
