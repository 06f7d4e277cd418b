"""Diagnostics of §2.1 of the paper: invertibility, energy growth, stability, step norms."""

from __future__ import annotations

from typing import Optional

import torch

from .blr import conv_k, conv_kt
from .hyperbolic import HyperbolicNet

__all__ = ["invertibility_error", "energy_growth", "stability", "layer_step_norms", "power_step", "diagnose"]


@torch.no_grad()
def invertibility_error(net: HyperbolicNet, x: torch.Tensor) -> float:
    """``||g^{-1}(g(X)) - X|| / ||X||``."""
    return float((net.inverse(*net(x)) - x).norm() / x.norm())


@torch.no_grad()
def energy_growth(net: HyperbolicNet, x: torch.Tensor) -> float:
    """``||g(X)|| / ||X||`` with ``g(X)`` the last state."""
    return float(net(x)[1].norm() / x.norm())


@torch.no_grad()
def stability(net: HyperbolicNet, x: torch.Tensor, relative_perturbation: float = 0.1,
              generator: Optional[torch.Generator] = None) -> float:
    """``||g(X) - g(X + dX)|| / ||dX||`` for a random ``dX`` of norm ``0.1 ||X||``."""
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    delta = noise * (relative_perturbation * x.norm() / noise.norm())
    return float((net(x)[1] - net(x + delta)[1]).norm() / delta.norm())


@torch.no_grad()
def power_step(v: torch.Tensor, weight: torch.Tensor) -> tuple[float, torch.Tensor]:
    """One power-iteration step on ``K^T K`` from the unit vector ``v``.

    Returns the Rayleigh quotient ``<v, K^T K v>`` (an estimate of ``||K||_2^2`` from
    below) and the next unit vector.
    """
    w = conv_kt(conv_k(v, weight), weight)
    return float((v * w).sum()), w / w.norm().clamp_min(1e-30)


@torch.no_grad()
def layer_step_norms(net: HyperbolicNet, size: int = 8, iterations: int = 20,
                     generator: Optional[torch.Generator] = None) -> list[float]:
    """``h * ||K_j||_2`` per layer, by power iteration on ``K^T K``.

    The leapfrog scheme is stable for about ``h * ||K||_2 <= 2``. The norm of a
    zero-padded 3x3(x3) convolution barely depends on the grid size past a few voxels,
    so a ``size**dim`` grid is used for every layer (the norm on a larger grid is at
    most a few percent higher). Power iteration approaches the norm from below.
    """
    norms = []
    for layer in net.layers:
        weight = layer.weight
        v = torch.randn(1, layer.channels, *([size] * net.dim), generator=generator,
                        dtype=weight.dtype, device=weight.device)
        v = v / v.norm()
        sigma2 = 0.0
        for _ in range(iterations):
            sigma2, v = power_step(v, weight)
        norms.append(net.h * max(sigma2, 0.0) ** 0.5)
    return norms


def diagnose(net: HyperbolicNet, x: torch.Tensor, seed: int = 0) -> dict:
    """All of the above in one dictionary (for reports and the command line)."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    steps = layer_step_norms(net, generator=generator)
    return {
        "invertibility_error": invertibility_error(net, x),
        "energy_growth": energy_growth(net, x),
        "stability": stability(net, x, generator=generator),
        "max_step_norm": max(steps),
        "step_norms": steps,
    }
