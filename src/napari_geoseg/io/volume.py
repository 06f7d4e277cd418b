"""The in-memory description of a volume read from a file: data plus where it sits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Volume", "SegyGeometry", "default_axes"]


def default_axes(ndim: int) -> tuple[str, ...]:
    """Axis names for data whose file does not say what its axes are.

    Parameters
    ----------
    ndim : int
        Number of axes.

    Returns
    -------
    tuple of str
        ``("axis0", "axis1", ...)``.
    """
    return tuple(f"axis{i}" for i in range(ndim))


@dataclass
class SegyGeometry:
    """What is needed to write data back into the layout of a post-stack SEG-Y cube.

    Attributes
    ----------
    path : str
        The source file; writing with ``like=`` copies its textual, binary and trace
        headers, so it must still exist then.
    inlines, crosslines : np.ndarray
        Inline and crossline numbers of the cube's first two axes, increasing (the
        file's traces may come in any order; each is put back where it came from).
    inline_byte, crossline_byte : int
        Trace-header byte positions (1-based, as in the SEG-Y standard) that hold them.
    n_samples : int
        Samples per trace.
    sample_interval : float
        Sample interval in ``sample_unit`` (the header stores microseconds, or
        thousandths of a metre or foot for depth data).
    sample_unit : str
        ``"ms"`` for time data, ``"m"`` or ``"ft"`` for depth data.
    first_sample : float
        Time or depth of the first sample (trace header byte 109, delay recording time).
    domain : str
        ``"time"`` or ``"depth"``.
    endian : str
        ``"big"`` (the standard) or ``"little"``.
    sample_format : int
        The source's sample format code (1 IBM float, 2 int32, 3 int16, 5 IEEE float, ...).
    """

    path: str
    inlines: np.ndarray
    crosslines: np.ndarray
    inline_byte: int
    crossline_byte: int
    n_samples: int
    sample_interval: float
    sample_unit: str
    first_sample: float
    domain: str = "time"
    endian: str = "big"
    sample_format: int = 5

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_inlines, n_crosslines, n_samples)`` of the cube this geometry describes."""
        return len(self.inlines), len(self.crosslines), self.n_samples


@dataclass
class Volume:
    """An n-dimensional image and the coordinates of its grid.

    World coordinates follow napari: ``world = translate + scale * index`` per axis.

    Attributes
    ----------
    data : array-like
        A numpy array (possibly a read-only ``np.memmap``), or for zarr stores the
        ``zarr.Array`` itself, which reads chunk by chunk when sliced and is never
        loaded whole on open (``np.asarray(volume.data)`` loads it;
        ``dask.array.from_zarr(volume.data)`` wraps it for lazy arithmetic).
    axes : tuple of str
        Name of each axis: ``("inline", "crossline", "sample")`` for SEG-Y,
        ``("row", "column", "band")`` for ENVI, ``("axis0", ...)`` when the file
        does not say.
    scale : tuple of float
        Grid step along each axis, in ``units``.
    translate : tuple of float
        World coordinate of index 0 along each axis.
    units : tuple of str
        Unit of each axis, ``""`` when unknown or a plain count (line numbers).
    source : str
        The path the volume was read from (``""`` for one made in memory).
    geometry : SegyGeometry or None
        What a writer needs to put data back into the source's layout; only SEG-Y
        sets it.
    metadata : dict
        Other facts about the file, for example ``"wavelength"`` and
        ``"wavelength_units"`` for ENVI, ``"variable"`` for MATLAB and zarr groups.
    """

    data: Any
    axes: tuple[str, ...] = ()
    scale: tuple[float, ...] = ()
    translate: tuple[float, ...] = ()
    units: tuple[str, ...] = ()
    source: str = ""
    geometry: SegyGeometry | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        # Empty tuples mean "not given": fill them so that every field has one entry
        # per axis, and faces can zip them without checking.
        ndim = len(self.data.shape)
        self.axes = tuple(self.axes) or default_axes(ndim)
        self.scale = tuple(float(s) for s in self.scale) or (1.0,) * ndim
        self.translate = tuple(float(t) for t in self.translate) or (0.0,) * ndim
        self.units = tuple(self.units) or ("",) * ndim
        for name in ("axes", "scale", "translate", "units"):
            if len(getattr(self, name)) != ndim:
                raise ValueError(f"Volume.{name} has {len(getattr(self, name))} entries for {ndim} axes")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``data``."""
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        """Data type of ``data``."""
        return np.dtype(self.data.dtype)
