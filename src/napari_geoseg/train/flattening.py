"""Flattened depth: the depth a voxel would have if the reflectors were flat.

Geological units follow the reflectors, not the depth axis: where layers are folded or
tilted, a unit lies deeper in one place than in another. A network told only each
voxel's depth learns the unit boundaries at the depths of the labelled wells and
misplaces them wherever the structure moves them up or down. Interpreters flatten the
volume on its reflectors for the same reason. :class:`FlattenedDepth` gives that
flattened depth as the position channel of volumes, computed from the image alone:

1. :func:`local_dips`: the dip of the reflectors at every voxel (samples per trace
   along each lateral axis) from the smoothed gradient structure: along a reflector
   the amplitude does not change, ``da/dx + p da/dz = 0``, solved in the least-squares
   sense over a Gaussian window (the structure tensor's slope estimate).
2. :func:`integrate_dips`: the vertical shift ``s`` of every voxel's reflector whose
   lateral gradient best matches the dips (a Poisson equation solved with cosine
   transforms, as in "flattening without picking", Lomask et al., Geophysics 2006,
   linearised); ``s`` has zero mean over each depth slice.
3. The flattened depth is ``z - s``: the depth on average, following the reflectors.

The shift is smooth across faults (their throw is not restored). The dips of large
volumes are measured one lateral tile at a time and the shift is solved on groups of
traces, so memory stays bounded. The Gaussian filters run on several threads (scipy
releases the GIL), each 1D pass split into slabs of whole lines: the same values as on one.
"""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import nullcontext
from typing import Optional

import numpy as np
from scipy import ndimage
from scipy.fft import dctn, idctn

__all__ = ["local_dips", "integrate_dips", "FlattenedDepth", "flattened_depth_of", "MAX_FLATTENING_VOXELS"]

#: Volumes with more voxels have their shift solved on a grid of groups of traces: the
#: shift is a smooth, structural field. The solve holds a few float64 copies of that grid,
#: so this bounds its memory (about 70 MiB) whatever the survey's size.
MAX_FLATTENING_VOXELS = 1 << 20
#: Voxels of one lateral tile (halo included) whose dips are measured at once.
TILE_VOXELS = 1 << 21
#: Gaussian scales (voxels) of the derivatives and of the dip window.
DIP_SCALES = (1.0, 4.0)


def _normalised(block, center: Optional[np.ndarray], scale: Optional[np.ndarray]) -> np.ndarray:
    """A block read from an ``(A, B, V[, C])`` volume as one ``(a, b, V)`` amplitude: channels
    normalised by ``center`` and ``scale`` and averaged; NaN and Inf become 0."""
    data = np.asarray(block, dtype=np.float32)
    if center is not None:
        channels = data.shape[-1] if data.ndim == 4 else 1
        center = np.asarray(center, np.float32).ravel()[:channels]
        scale = np.asarray(scale, np.float32).ravel()[:channels]
        data = (data - center) / scale if data.ndim == 4 else (data - center[0]) / scale[0]
    if data.ndim == 4:
        data = data.mean(-1)
    return np.where(np.isfinite(data), data, 0.0).astype(np.float32)


def _thread_count(threads: Optional[int]) -> int:
    """``threads``, or where None the compute threads the process allows torch (the faces
    set them from ``--threads``)."""
    if threads is not None:
        return max(1, int(threads))
    import torch

    return torch.get_num_threads()


def _gaussian(volume: np.ndarray, sigma: float, order: tuple[int, int, int] = (0, 0, 0),
              pool: Optional[Executor] = None, parts: int = 1) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(volume, sigma, order)`` of a float32 volume, each
    1D pass cut into ``parts`` slabs along another axis and filtered on ``pool``.

    A pass filters every line along its axis alone, so slabs of whole lines give exactly
    scipy's values; the passes run in scipy's order, in place after the first, as it does.
    """
    if pool is None or parts < 2:
        return ndimage.gaussian_filter(volume, sigma, order=order)
    output = np.empty_like(volume)
    source = volume
    for axis in range(volume.ndim):
        split = max((a for a in range(volume.ndim) if a != axis), key=lambda a: volume.shape[a])
        bounds = np.linspace(0, volume.shape[split], parts + 1).astype(int)

        def one_slab(low: int, high: int, axis: int = axis, split: int = split, source: np.ndarray = source) -> None:
            slab = (slice(None),) * split + (slice(low, high),)
            ndimage.gaussian_filter1d(source[slab], sigma, axis, order[axis], output[slab])

        list(pool.map(one_slab, bounds[:-1], bounds[1:]))
        source = output
    return output


def local_dips(volume: np.ndarray, gradient_sigma: float = 1.0, window_sigma: float = 4.0,
               max_dip: float = 4.0, threads: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """Reflector dips along the two lateral axes of a ``(A, B, V)`` volume.

    Parameters
    ----------
    volume : np.ndarray
        Finite amplitudes, the last axis vertical.
    gradient_sigma : float
        Gaussian scale (voxels) of the derivatives.
    window_sigma : float
        Gaussian scale of the window over which each dip is estimated.
    max_dip : float
        Dips are clipped to this many samples per trace (quiet zones have no reliable dip).
    threads : int or None
        Threads of the Gaussian filters (None: as many as torch's compute threads); the
        dips do not depend on it.

    Returns
    -------
    dip_a, dip_b : np.ndarray
        float32 ``dz/da`` and ``dz/db`` along the reflectors, in samples per trace.
    """
    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3:
        raise ValueError(f"local_dips needs a 3D volume, got shape {volume.shape}")
    threads = _thread_count(threads)
    with ThreadPoolExecutor(threads) if threads > 1 else nullcontext() as pool:
        def gaussian(data: np.ndarray, sigma: float, order: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
            return _gaussian(data, sigma, order, pool, threads)

        # One lateral derivative at a time, products in place: a tile's working memory is a
        # few copies of it, not ten.
        vertical = gaussian(volume, gradient_sigma, (0, 0, 1))
        zz = gaussian(vertical * vertical, window_sigma)
        # A little damping keeps flat-lying, quiet zones at zero dip instead of noise.
        zz += 1e-3 * float(zz.mean()) + np.finfo(np.float32).tiny
        dips = []
        for order in ((1, 0, 0), (0, 1, 0)):
            lateral = gaussian(volume, gradient_sigma, order)
            lateral *= vertical
            cross = gaussian(lateral, window_sigma)
            del lateral
            cross /= zz
            np.negative(cross, out=cross)
            dips.append(np.clip(cross, -max_dip, max_dip, out=cross).astype(np.float32, copy=False))
    return dips[0], dips[1]


def integrate_dips(dip_a: np.ndarray, dip_b: np.ndarray, vertical_smoothing: float = 0.05,
                   threads: int = 1) -> np.ndarray:
    """Vertical shift ``s`` (samples) whose lateral gradient best matches the dips.

    Minimises ``|D_a s - dip_a|^2 + |D_b s - dip_b|^2 + vertical_smoothing |D_z s|^2`` with
    reflecting boundaries, which a 3D cosine transform diagonalises. The result has zero
    mean over every depth slice, so ``z - s`` is the depth on average. ``threads`` run
    the cosine transforms.
    """
    dip_a = np.asarray(dip_a, dtype=np.float64)
    dip_b = np.asarray(dip_b, dtype=np.float64)
    if dip_a.shape != dip_b.shape or dip_a.ndim != 3:
        raise ValueError(f"dips must be two 3D arrays of one shape, got {dip_a.shape} and {dip_b.shape}")
    # Right-hand side D^T dip, with the dips taken midway between neighbouring traces.
    rhs = np.zeros_like(dip_a)
    for axis, dip in ((0, dip_a), (1, dip_b)):
        n = dip.shape[axis]
        if n < 2:
            continue
        first = [slice(None)] * 3
        second = [slice(None)] * 3
        first[axis], second[axis] = slice(0, n - 1), slice(1, n)
        between = 0.5 * (dip[tuple(first)] + dip[tuple(second)])
        rhs[tuple(first)] -= between
        rhs[tuple(second)] += between
    spectrum = dctn(rhs, type=2, norm="ortho", workers=threads)
    eigen = [2 - 2 * np.cos(np.pi * np.arange(n) / n) for n in dip_a.shape]
    denominator = eigen[0][:, None, None] + eigen[1][None, :, None] + vertical_smoothing * eigen[2][None, None, :]
    denominator[0, 0, 0] = 1.0
    spectrum /= denominator
    spectrum[0, 0, 0] = 0.0  # the free constant
    return idctn(spectrum, type=2, norm="ortho", workers=threads)


class FlattenedDepth:
    """The flattened depth of a volume, as a position channel in ``[-1, 1]``.

    Build it with :meth:`of`; :meth:`position` gives the channel for any box of the
    volume, so blocks of a large volume agree with the whole.

    Parameters
    ----------
    shift : np.ndarray
        ``(a, b, V)`` vertical shift in samples, one trace per group of ``step`` x ``step``
        traces.
    step : int
        Side of the groups of traces of ``shift`` (1: every trace).
    shape : (int, int, int)
        Spatial shape of the volume.
    """

    def __init__(self, shift: np.ndarray, step: int, shape: tuple[int, int, int]) -> None:
        self.shift = np.asarray(shift, dtype=np.float32)
        self.step = int(step)
        self.shape = tuple(int(s) for s in shape)

    @classmethod
    def of(cls, volume, center: Optional[np.ndarray] = None, scale: Optional[np.ndarray] = None,
           max_voxels: int = MAX_FLATTENING_VOXELS, tile_voxels: int = TILE_VOXELS,
           threads: Optional[int] = None) -> "FlattenedDepth":
        """Flatten ``volume`` (``(A, B, V)`` or ``(A, B, V, C)``, array or lazy array).

        Channels are normalised by ``center`` and ``scale`` and averaged; NaN and Inf
        samples count as zero amplitude. The dips are measured at full resolution, one
        lateral tile of about ``tile_voxels`` voxels at a time; on volumes of more than
        ``max_voxels`` voxels they are averaged over square groups of traces and the
        shift is solved on that coarser grid. ``threads`` run the filters and the cosine
        transforms (None: torch's compute threads); the result does not depend on it.
        """
        shape = tuple(int(s) for s in volume.shape[:3])
        a_size, b_size, v_size = shape
        threads = _thread_count(threads)
        step = max(1, int(np.ceil(np.sqrt(np.prod(shape, dtype=np.float64) / max_voxels))))
        if min(a_size, b_size) < 2:
            return cls(np.zeros((-(-a_size // step), -(-b_size // step), v_size), np.float32), step, shape)
        # Tiles overlap by the reach of the two Gaussian filters, so that each tile's dips
        # equal those of the whole volume there.
        halo = int(np.ceil(4 * (DIP_SCALES[0] + DIP_SCALES[1])))
        side = int(np.sqrt(max(tile_voxels, 1) / v_size)) - 2 * halo
        side = max(step, max(side, 16) // step * step)
        sums = [np.zeros((-(-a_size // step), -(-b_size // step), v_size)) for _ in range(2)]
        for a0 in range(0, a_size, side):
            for b0 in range(0, b_size, side):
                a1, b1 = min(a0 + side, a_size), min(b0 + side, b_size)
                lo_a, lo_b = max(a0 - halo, 0), max(b0 - halo, 0)
                tile = _normalised(volume[lo_a:min(a1 + halo, a_size), lo_b:min(b1 + halo, b_size)],
                                   center, scale)
                inner = np.s_[a0 - lo_a:a1 - lo_a, b0 - lo_b:b1 - lo_b]
                for total, dip in zip(sums, local_dips(tile, *DIP_SCALES, threads=threads)):
                    # Sum each group of step x step traces (tiles are aligned with the groups).
                    grouped = np.add.reduceat(np.add.reduceat(dip[inner], np.arange(0, a1 - a0, step), 0),
                                              np.arange(0, b1 - b0, step), 1)
                    total[a0 // step:a0 // step + grouped.shape[0], b0 // step:b0 // step + grouped.shape[1]] += grouped
        counts = [np.diff(np.append(np.arange(0, n, step), n)).astype(np.float64) for n in (a_size, b_size)]
        count = counts[0][:, None, None] * counts[1][None, :, None]
        # Mean dip per trace, times step: the dip per coarse trace, the grid of the shift.
        dip_a, dip_b = (total / count * step for total in sums)
        return cls(integrate_dips(dip_a, dip_b, threads=threads), step, shape)

    def samples(self, box: tuple[slice, slice, slice]) -> np.ndarray:
        """Flattened depth in samples, ``z - s``, of the box ``(a, b, v)`` (step-1 slices)."""
        a, b, v = (s.indices(n)[:2] for s, n in zip(box, self.shape))
        depth = np.arange(*v, dtype=np.float32)
        if self.step == 1:
            shift = self.shift[a[0]:a[1], b[0]:b[1], v[0]:v[1]]
        else:
            # Linear interpolation between the centres of the groups of traces, one lateral
            # axis at a time (the samples fall on the grid's own depths).
            middle = (self.step - 1) / 2
            shift = self.shift[:, :, v[0]:v[1]]
            for axis, (start, stop) in enumerate((a, b)):
                where = np.clip((np.arange(start, stop, dtype=np.float64) - middle) / self.step,
                                0, shift.shape[axis] - 1)
                low = np.minimum(where.astype(np.int64), max(shift.shape[axis] - 2, 0))
                high = np.minimum(low + 1, shift.shape[axis] - 1)
                weight = (where - low).astype(np.float32).reshape((-1, 1) if axis == 1 else (-1, 1, 1))
                near, far = np.take(shift, low, axis=axis), np.take(shift, high, axis=axis)
                shift = near + weight * (far - near)
            shift = shift.astype(np.float32, copy=False)
        return depth[None, None, :] - shift

    def position(self, box: tuple[slice, slice, slice] = (slice(None),) * 3) -> np.ndarray:
        """The position channel of a box: flattened depth mapped to ``[-1, 1]`` as the plain
        relative depth would be (``-1`` at the first sample, ``1`` at the last, on average)."""
        return 2 * self.samples(box) / max(self.shape[2] - 1, 1) - 1


def flattened_depth_of(volume, center: Optional[np.ndarray], scale: Optional[np.ndarray],
                       reuse: Optional[FlattenedDepth] = None) -> FlattenedDepth:
    """The flattened depth of ``volume``: ``reuse`` (one computed earlier for the same
    volume, checked to have its spatial shape) or :meth:`FlattenedDepth.of`."""
    if reuse is None:
        return FlattenedDepth.of(volume, center, scale)
    shape = tuple(int(s) for s in volume.shape[:3])
    if reuse.shape != shape:
        raise ValueError(f"flattened depth of shape {reuse.shape} given for an image of spatial shape {shape}")
    return reuse
