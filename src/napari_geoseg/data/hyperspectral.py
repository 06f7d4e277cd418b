"""A deterministic synthetic hyperspectral scene with a few labelled pixels per class."""

from __future__ import annotations

import numpy as np

from .synthetic import SyntheticVolume

__all__ = ["synthetic_hyperspectral", "endmember_spectra"]

CLASS_NAMES = ("water", "vegetation", "soil", "rock")


def endmember_spectra(n_bands: int) -> np.ndarray:
    """Reflectance spectra ``(4, n_bands)`` of water, vegetation, soil and rock over 400-2500 nm.

    Smooth stand-ins with the features that tell the materials apart: water is dark
    and falls off into the infrared, vegetation has the red edge near 700 nm and water
    absorption dips, soil rises steadily, rock is bright and flat with a clay dip near
    2200 nm.
    """
    wavelength = np.linspace(400, 2500, n_bands)
    w = (wavelength - 400) / 2100

    def dip(center, width, depth):
        return depth * np.exp(-0.5 * ((wavelength - center) / width) ** 2)

    water = 0.08 * np.exp(-4 * w) + 0.01
    vegetation = (0.05 + 0.4 / (1 + np.exp(-(wavelength - 720) / 15)) - dip(1450, 60, 0.15)
                  - dip(1940, 70, 0.2) + dip(550, 30, 0.05))
    soil = 0.1 + 0.25 * w - dip(1400, 50, 0.03) - dip(1900, 60, 0.04)
    rock = 0.35 + 0.05 * np.sin(3 * w) - dip(2200, 40, 0.08)
    return np.stack([water, vegetation, soil, rock]).astype(np.float64)


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    """A random field smooth over ``scale`` pixels (Gaussian low-pass in Fourier space)."""
    noise = rng.standard_normal(shape)
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    kernel = np.exp(-0.5 * (2 * np.pi * scale) ** 2 * (kx**2 + ky**2))
    field = np.fft.irfft2(np.fft.rfft2(noise) * kernel, s=shape)
    return (field - field.mean()) / field.std()


def synthetic_hyperspectral(shape: tuple[int, int] = (64, 64), n_bands: int = 48, n_classes: int = 4,
                            labels_per_class: int = 5, noise: float = 0.01, seed: int = 0) -> SyntheticVolume:
    """A land-cover scene ``(rows, cols, bands)`` with soft class boundaries.

    Each class has a smooth random abundance field; a softmax over them gives mixed
    pixels near boundaries, as in real scenes (the truth is the class of largest
    abundance). Pixels are abundance-weighted mixtures of the endmember spectra, with
    a smooth illumination change and Gaussian noise. ``labels_per_class`` pixels of
    each class, drawn where that class dominates, are labelled.

    Returns
    -------
    SyntheticVolume
        ``image`` (rows, cols, bands) float32, ``labels`` and ``truth`` (rows, cols) uint8;
        ``boreholes`` holds the labelled pixels' (row, col).
    """
    if not 2 <= n_classes <= len(CLASS_NAMES):
        raise ValueError(f"n_classes must be 2..{len(CLASS_NAMES)}, got {n_classes}")
    rng = np.random.default_rng(seed)
    fields = np.stack([_smooth_field(shape, rng, scale=shape[0] / 8) for _ in range(n_classes)])
    weights = np.exp(4 * fields)
    abundance = weights / weights.sum(0)
    truth = (abundance.argmax(0) + 1).astype(np.uint8)
    spectra = endmember_spectra(n_bands)[:n_classes]
    illumination = 1 + 0.1 * _smooth_field(shape, rng, scale=shape[0] / 3)
    cube = np.einsum("krc,kb->rcb", abundance, spectra) * illumination[..., None]
    cube += noise * rng.standard_normal(cube.shape)
    labels = np.zeros(shape, np.uint8)
    picked = []
    dominant = abundance.max(0) >= 0.8
    for k in range(1, n_classes + 1):
        rows, cols = np.nonzero((truth == k) & dominant)
        if rows.size < labels_per_class:
            rows, cols = np.nonzero(truth == k)
        take = rng.choice(rows.size, min(labels_per_class, rows.size), replace=False)
        labels[rows[take], cols[take]] = k
        picked += list(zip(rows[take].tolist(), cols[take].tolist()))
    return SyntheticVolume(cube.astype(np.float32), labels, truth, CLASS_NAMES[:n_classes], picked)
