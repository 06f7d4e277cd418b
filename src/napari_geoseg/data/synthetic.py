"""Deterministic synthetic seismic volumes with geological units and borehole labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SyntheticVolume", "synthetic_seismic", "ricker"]


@dataclass
class SyntheticVolume:
    """A synthetic image with its sparse training labels and full truth.

    Attributes
    ----------
    image : np.ndarray
        float32 amplitudes, axes ``(inline, crossline, sample)``.
    labels : np.ndarray
        uint8 sparse labels (0 = unlabelled, 1..K) in borehole columns.
    truth : np.ndarray
        uint8 unit of every voxel (1..K).
    class_names : tuple of str
        Name of each class, class ``k`` at index ``k - 1``.
    boreholes : list of (int, int)
        (inline, crossline) position of each borehole.
    """

    image: np.ndarray
    labels: np.ndarray
    truth: np.ndarray
    class_names: tuple[str, ...]
    boreholes: list[tuple[int, int]]


def ricker(frequency: float, dt: float, length: int | None = None) -> np.ndarray:
    """Ricker wavelet of peak ``frequency`` (Hz) sampled every ``dt`` seconds."""
    if length is None:
        length = int(2.5 / (frequency * dt)) | 1  # odd, covers the side lobes
    t = (np.arange(length) - length // 2) * dt
    a = (np.pi * frequency * t) ** 2
    return ((1 - 2 * a) * np.exp(-a)).astype(np.float64)


def _relative_geologic_time(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Depositional time of every voxel: flat layers folded, tilted, then faulted."""
    nx, ny, nz = shape
    x, y, z = np.meshgrid(np.linspace(0, 1, nx), np.linspace(0, 1, ny), np.arange(nz, dtype=float),
                          indexing="ij")
    # Folding: two gentle anticlines plus a regional dip, as a vertical shift in samples.
    phase = rng.uniform(0, 2 * np.pi, 2)
    fold = (0.12 * nz * np.sin(2 * np.pi * 0.9 * x + phase[0]) * np.cos(2 * np.pi * 0.6 * y + phase[1])
            + 0.06 * nz * (x - 0.5) + 0.04 * nz * (y - 0.5))
    tau = z - fold
    # One normal fault: a dipping plane across the volume; the hanging wall slips down.
    strike = rng.uniform(0.3, 0.7)
    plane = (x - strike) + 0.25 * (y - 0.5) - 0.3 * (z / nz - 0.5)
    throw = 0.08 * nz
    return np.where(plane > 0, tau - throw, tau)


def synthetic_seismic(shape: tuple[int, int, int] = (64, 64, 64), n_units: int = 3,
                      n_boreholes: int = 4, radius: int = 1, noise: float = 0.2,
                      seed: int = 0) -> SyntheticVolume:
    """A post-stack seismic volume of geological units with borehole labels.

    Each unit is a stack of thin layers whose impedance contrast and thickness differ
    from unit to unit (seismic facies). The layers are folded and cut by a normal fault,
    the reflectivity is convolved with a 25 Hz Ricker wavelet (4 ms sampling) along the
    sample axis, and Gaussian noise is added. Labels are the true units in square
    columns of ``(2 * radius + 1)**2`` traces around ``n_boreholes`` wells.

    Parameters
    ----------
    shape : (int, int, int)
        ``(inline, crossline, sample)`` size.
    n_units : int
        Number of geological units (classes), at least 2.
    n_boreholes : int
        Number of labelled well columns.
    radius : int
        Half-width of each column in traces.
    noise : float
        Noise standard deviation relative to the noise-free amplitudes' standard deviation.
    seed : int
        Everything is determined by the seed.

    Returns
    -------
    SyntheticVolume
    """
    if n_units < 2:
        raise ValueError(f"n_units must be at least 2, got {n_units}")
    rng = np.random.default_rng(seed)
    nx, ny, nz = shape
    tau = _relative_geologic_time(shape, rng)
    # Unit boundaries evenly spread over the range of depositional time inside the volume.
    lo, hi = np.percentile(tau, [2, 98])
    bounds = np.linspace(lo, hi, n_units + 1)[1:-1]
    truth = (1 + np.searchsorted(bounds, tau)).astype(np.uint8)
    # Thin layers: unit k has its own bed thickness and impedance contrast.
    span = np.arange(np.floor(tau.min()) - 1, np.ceil(tau.max()) + 2)
    log_impedance = np.empty(span.size)
    unit_of_span = 1 + np.searchsorted(bounds, span)
    position = 0
    bed_value = 0.0
    for i in range(span.size):
        unit = unit_of_span[i]
        thickness = 4 + 3 * unit  # thicker beds deeper down
        if position % thickness == 0:
            contrast = 0.1 + 0.25 * (unit % 2)  # alternating quiet / bright units
            bed_value = contrast * rng.standard_normal() + 0.1 * unit
        log_impedance[i] = bed_value
        position += 1
    impedance = np.interp(tau, span, log_impedance)
    reflectivity = np.zeros_like(impedance)
    reflectivity[..., 1:] = np.diff(impedance, axis=-1)
    wavelet = ricker(25.0, 0.004)
    # Full convolution cropped to the trace ("same" would return the wavelet's length
    # for traces shorter than the wavelet).
    offset = wavelet.size // 2
    amplitude = np.apply_along_axis(
        lambda trace: np.convolve(trace, wavelet)[offset:offset + trace.size], -1, reflectivity)
    amplitude /= amplitude.std()
    amplitude += noise * rng.standard_normal(amplitude.shape)
    # Wells away from the edges, at least a few traces apart.
    margin = radius + 2
    boreholes: list[tuple[int, int]] = []
    for _ in range(1000 * n_boreholes):
        well = (int(rng.integers(margin, max(nx - margin, margin + 1))),
                int(rng.integers(margin, max(ny - margin, margin + 1))))
        if all(max(abs(well[0] - a), abs(well[1] - b)) > 2 * radius + 2 for a, b in boreholes):
            boreholes.append(well)
            if len(boreholes) == n_boreholes:
                break
    else:
        raise ValueError(f"a {nx} x {ny} survey has no room for {n_boreholes} separate boreholes "
                         f"of radius {radius}: use a larger shape or fewer boreholes")
    labels = np.zeros(shape, np.uint8)
    for i, j in boreholes:
        column = np.s_[i - radius:i + radius + 1, j - radius:j + radius + 1, :]
        labels[column] = truth[column]
    names = tuple(f"unit {k}" for k in range(1, n_units + 1))
    return SyntheticVolume(amplitude.astype(np.float32), labels, truth, names, boreholes)
