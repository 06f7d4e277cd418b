"""Synthetic seismic volumes for the quality suite (numpy and scipy only).

Every generator builds a *relative geologic time* ``tau`` (the depositional time of each
voxel, in samples), turns a 1D log-impedance sequence over ``tau`` into reflectivity down
the trace, convolves it with a 25 Hz Ricker wavelet sampled at 4 ms and adds Gaussian
noise. Everything is determined by the seed. Axes are ``(inline, crossline, sample)``,
the sample axis pointing down. Each returns a :class:`SeismicCase` with the image, the
truth of every voxel and the class names; labels are drawn by ``cases.py``.

- :func:`thin_beds`: a folded, faulted layer cake of about 60 thin beds (at 96 samples)
  in four units whose amplitude statistics overlap: the units differ in how regular their
  bed thicknesses are, not in contrast or mean thickness.
- :func:`channels`: two steeply dipping layered units cut by sinuous channels whose fill
  (its own class) is a low-impedance, weakly layered body.
- :func:`faults_noise`: three units cut by three large-throw normal faults (throw over 15
  samples at 96 samples), with noise as strong as the signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["SeismicCase", "ricker", "thin_beds", "channels", "faults_noise"]

FREQUENCY_HZ = 25.0
DT_S = 0.004


@dataclass
class SeismicCase:
    """A synthetic volume and its truth.

    Attributes
    ----------
    image : np.ndarray
        float32 amplitudes ``(inline, crossline, sample)``, noise-free part of unit std.
    truth : np.ndarray
        uint8 class of every voxel, 1..K.
    class_names : list of str
    tau : np.ndarray
        float32 relative geologic time (samples) of every voxel.
    """

    image: np.ndarray
    truth: np.ndarray
    class_names: list[str]
    tau: np.ndarray


def _layer_cake(tau: np.ndarray, bounds: np.ndarray, bed) -> tuple[np.ndarray, np.ndarray]:
    """Log-impedance over the range of ``tau``, bed by bed from the top.

    ``bed(unit)`` gives the thickness (samples) and log-impedance of the next bed of
    ``unit`` (1..K, the unit at the bed's top, from ``bounds``).
    """
    span = np.arange(np.floor(tau.min()) - 2, np.ceil(tau.max()) + 3)
    unit_of_span = 1 + np.searchsorted(bounds, span)
    log_impedance = np.empty(span.size)
    i = 0
    while i < span.size:
        n, value = bed(int(unit_of_span[i]))
        log_impedance[i:i + n] = value
        i += n
    return span, log_impedance


def ricker(frequency: float = FREQUENCY_HZ, dt: float = DT_S) -> np.ndarray:
    """Ricker wavelet of peak ``frequency`` (Hz) sampled every ``dt`` s, odd length."""
    length = int(2.5 / (frequency * dt)) | 1
    t = (np.arange(length) - length // 2) * dt
    a = (np.pi * frequency * t) ** 2
    return (1 - 2 * a) * np.exp(-a)


def _grid(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nx, ny, nz = shape
    return np.meshgrid(np.linspace(0, 1, nx), np.linspace(0, 1, ny), np.arange(nz, dtype=np.float64),
                       indexing="ij")


def _fold(x: np.ndarray, y: np.ndarray, nz: int, rng: np.random.Generator, amplitude: float,
          dip: tuple[float, float]) -> np.ndarray:
    """Vertical shift (samples) of a folded, tilted surface."""
    phase = rng.uniform(0, 2 * np.pi, 2)
    freq = rng.uniform(0.6, 1.1, 2)
    return (amplitude * nz * np.sin(2 * np.pi * freq[0] * x + phase[0]) * np.cos(2 * np.pi * freq[1] * y + phase[1])
            + dip[0] * nz * (x - 0.5) + dip[1] * nz * (y - 0.5))


def _fault(tau: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray, nz: int, rng: np.random.Generator,
           throw: float) -> np.ndarray:
    """A dipping normal-fault plane across the volume; the hanging wall slips ``throw`` samples down."""
    strike = rng.uniform(0.2, 0.8)
    turn = rng.uniform(-0.4, 0.4)
    hade = rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.4)
    plane = (x - strike) + turn * (y - 0.5) + hade * (z / nz - 0.5)
    return np.where(plane > 0, tau - throw, tau)


def _synthesise(tau: np.ndarray, span: np.ndarray, log_impedance: np.ndarray, noise: float,
                rng: np.random.Generator, override: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Impedance sampled at ``tau`` (nearest bed: beds keep sharp edges), reflectivity, Ricker, noise."""
    index = np.clip(np.round(tau - span[0]).astype(np.int64), 0, span.size - 1)
    impedance = log_impedance[index]
    if override is not None:  # bodies (channel fill) with their own impedance
        mask, values = override
        impedance = np.where(mask, values, impedance)
    reflectivity = np.zeros_like(impedance)
    reflectivity[..., 1:] = np.diff(impedance, axis=-1)
    amplitude = ndi.convolve1d(reflectivity, ricker(), axis=-1, mode="constant")
    amplitude /= amplitude.std()
    amplitude += noise * rng.standard_normal(amplitude.shape)
    return amplitude.astype(np.float32)


def _units(tau: np.ndarray, n_units: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit boundaries evenly spread over the 2-98 % range of ``tau``; truth 1..n_units."""
    lo, hi = np.percentile(tau, [2, 98])
    bounds = np.linspace(lo, hi, n_units + 1)[1:-1]
    return bounds, (1 + np.searchsorted(bounds, tau)).astype(np.uint8)


def thin_beds(shape: tuple[int, int, int] = (96, 96, 96), seed: int = 0, noise: float = 0.3) -> SeismicCase:
    """Folded and faulted layer cake of thin beds in four subtly different units.

    Every bed has a log-impedance drawn from the same normal law (std 0.2) in every
    unit, and the mean bed thickness is 2 samples everywhere (about 60 beds over a 96
    sample trace, far below the wavelet's tuning thickness), so the units' amplitude
    statistics overlap. The units differ in how the thicknesses are distributed:
    unit 1 regular (gamma shape 16), unit 2 irregular (shape 1.5), unit 3 regular but
    bimodal (1 or 3 samples), unit 4 very irregular (shape 0.7, a few thick beds). Two
    gentle folds, a regional dip and two normal faults (throw 6 % and 10 % of the trace).
    """
    rng = np.random.default_rng(seed)
    nx, ny, nz = shape
    x, y, z = _grid(shape)
    tau = z - _fold(x, y, nz, rng, 0.08, (0.08, 0.05))
    tau = _fault(tau, x, y, z, nz, rng, 0.06 * nz)
    tau = _fault(tau, x, y, z, nz, rng, 0.10 * nz)
    bounds, truth = _units(tau, 4)

    def bed(unit: int) -> tuple[int, float]:
        if unit == 1:
            thickness = rng.gamma(16.0, 2.0 / 16.0)
        elif unit == 2:
            thickness = rng.gamma(1.5, 2.0 / 1.5)
        elif unit == 3:
            thickness = rng.choice([1.0, 3.0])
        else:
            thickness = rng.gamma(0.7, 2.0 / 0.7)
        return max(1, int(round(thickness))), 0.2 * rng.standard_normal()

    span, log_impedance = _layer_cake(tau, bounds, bed)
    image = _synthesise(tau, span, log_impedance, noise, rng)
    names = ["regular beds", "irregular beds", "bimodal beds", "very irregular beds"]
    return SeismicCase(image, truth, names, tau.astype(np.float32))


def _channel_bodies(tau: np.ndarray, x: np.ndarray, y: np.ndarray, levels: list[float], depth: float,
                    rng: np.random.Generator) -> np.ndarray:
    """Sinuous channels along the inline axis: a half-ellipse bowl below each level of ``tau``."""
    body = np.zeros(tau.shape, bool)
    for level in levels:
        centre = rng.uniform(0.3, 0.7)
        amplitude = rng.uniform(0.08, 0.16)
        wavelength = rng.uniform(0.5, 0.9)
        phase = rng.uniform(0, 2 * np.pi)
        width = rng.uniform(0.12, 0.2)
        line = centre + amplitude * np.sin(2 * np.pi * x / wavelength + phase)
        across = np.abs(y - line) / (width / 2)
        below = (tau - level) / depth
        body |= (below >= 0) & (across < 1) & (below <= np.sqrt(np.clip(1 - across**2, 0, 1)))
    return body


def channels(shape: tuple[int, int, int] = (96, 96, 96), seed: int = 0, noise: float = 0.25) -> SeismicCase:
    """Two steeply dipping layered units cut by sinuous channels (class 3, the fill).

    The layers dip by about 0.5 trace lengths across the inline axis and 0.3 across the
    crossline axis (about 25 degrees at equal sample and trace spacing), with a gentle
    fold. The upper unit has thin (3 samples), strongly contrasting beds, the lower one
    thick (7 samples), weaker beds. Three channels run along the inline axis at three
    depositional levels (one near the unit boundary, so that it cuts across it); each is
    a half-ellipse bowl (12-20 % of the crossline width, 14 % of the trace deep) that
    follows the dip, filled with a low-impedance body with faint internal layering.
    """
    rng = np.random.default_rng(seed)
    nx, ny, nz = shape
    x, y, z = _grid(shape)
    tau = z - _fold(x, y, nz, rng, 0.04, (0.5, 0.3))
    bounds, truth = _units(tau, 2)
    lo, hi = np.percentile(tau, [10, 80])
    levels = sorted([float(bounds[0]) - 0.05 * nz, float(rng.uniform(lo, bounds[0] - 0.2 * nz)),
                     float(rng.uniform(bounds[0] + 0.05 * nz, hi))])
    body = _channel_bodies(tau, x, y, levels, 0.14 * nz, rng)
    truth = np.where(body, 3, truth).astype(np.uint8)
    span = np.arange(np.floor(tau.min()) - 2, np.ceil(tau.max()) + 3)
    unit_of_span = 1 + np.searchsorted(bounds, span)
    log_impedance = np.empty(span.size)
    i = 0
    while i < span.size:
        unit = unit_of_span[i]
        n = 3 if unit == 1 else 7
        log_impedance[i:i + n] = (0.35 if unit == 1 else 0.15) * rng.standard_normal() + 0.1 * unit
        i += n
    fill = -0.3 + 0.05 * np.sin(2 * np.pi * tau / 5.0)
    image = _synthesise(tau, span, log_impedance, noise, rng, override=(body, fill))
    return SeismicCase(image, truth, ["upper unit", "lower unit", "channel fill"], tau.astype(np.float32))


def faults_noise(shape: tuple[int, int, int] = (96, 96, 96), seed: int = 0, noise: float = 1.0) -> SeismicCase:
    """Three units cut by three large-throw normal faults, noise as strong as the signal.

    Units as in ``napari_geoseg.data.synthetic_seismic`` (bed thickness 5, 8, 11 samples;
    alternating quiet and bright contrasts), gently folded; faults with throws of 18 %,
    22 % and 16 % of the trace (17, 21 and 15+ samples at 96); Gaussian noise with the
    standard deviation of the noise-free amplitudes (``noise=1.0``).
    """
    rng = np.random.default_rng(seed)
    nx, ny, nz = shape
    x, y, z = _grid(shape)
    tau = z - _fold(x, y, nz, rng, 0.06, (0.06, 0.04))
    for throw in (0.18, 0.22, 0.16):
        tau = _fault(tau, x, y, z, nz, rng, throw * nz)
    bounds, truth = _units(tau, 3)

    def bed(unit: int) -> tuple[int, float]:
        return 2 + 3 * unit, (0.1 + 0.25 * (unit % 2)) * rng.standard_normal() + 0.1 * unit

    span, log_impedance = _layer_cake(tau, bounds, bed)
    image = _synthesise(tau, span, log_impedance, noise, rng)
    return SeismicCase(image, truth, [f"unit {k}" for k in (1, 2, 3)], tau.astype(np.float32))
