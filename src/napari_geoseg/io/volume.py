"""The in-memory description of a volume read from a file: data plus where it sits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError

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
    """Where the traces of a post-stack SEG-Y cube sit: on the line grid and on the map.

    Attributes
    ----------
    path : str
        The source file; writing with ``like=`` copies its textual, binary and trace
        headers, so it must still exist then.
    inlines, crosslines : np.ndarray
        Inline and crossline numbers of the cube's first two axes: every number from
        the first to the last at the line step, increasing (the file's traces may come
        in any order and need not fill the grid).
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
    trace_index : np.ndarray or None
        ``(n_inlines, n_crosslines)`` integers: the index in the file (from 0) of the
        trace at each position, -1 where the file has none (those positions read as
        NaN). None means every position holds the trace ``i * n_crosslines + j``.
    n_duplicates : int
        Traces dropped because an earlier trace of the file has their position.
    transform : np.ndarray or None
        ``(2, 3)`` affine map from line numbers to map coordinates,
        ``(x, y) = transform @ (inline, crossline, 1)``, fitted by least squares to the
        traces' scaled CDP X/Y (or source X/Y); None when the headers hold no
        coordinates or they do not determine a map.
    transform_residual : float or None
        Largest distance, in map units, between a trace's header coordinates and the
        transform's.
    coordinate_bytes : tuple of int or None
        The header bytes the coordinates came from: ``(181, 185)`` or ``(73, 77)``.
    coordinate_unit : str
        ``"m"``, or ``"ft"`` when binary header byte 3255 says feet.
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
    trace_index: np.ndarray | None = None
    n_duplicates: int = 0
    transform: np.ndarray | None = None
    transform_residual: float | None = None
    coordinate_bytes: tuple[int, int] | None = None
    coordinate_unit: str = "m"

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_inlines, n_crosslines, n_samples)`` of the cube this geometry describes."""
        return len(self.inlines), len(self.crosslines), self.n_samples

    @property
    def present(self) -> np.ndarray:
        """``(n_inlines, n_crosslines)`` booleans: True where the file holds a trace."""
        if self.trace_index is None:
            return np.ones(self.shape[:2], bool)
        return self.trace_index >= 0

    @property
    def n_missing(self) -> int:
        """Grid positions without a trace (NaN in the data)."""
        return int(self.present.size - np.count_nonzero(self.present))

    @property
    def n_traces(self) -> int:
        """Traces in the file: one per present position plus the duplicates dropped."""
        return int(np.count_nonzero(self.present)) + self.n_duplicates

    @property
    def inline_step(self) -> int:
        """Difference between neighbouring inline numbers (1 for a single inline)."""
        return _step(self.inlines)

    @property
    def crossline_step(self) -> int:
        """Difference between neighbouring crossline numbers (1 for a single crossline)."""
        return _step(self.crosslines)

    def line_index(self, inline, crossline) -> tuple[np.ndarray, np.ndarray]:
        """Array indices (fractional between lines) of line numbers.

        Parameters
        ----------
        inline, crossline : array-like
            Line numbers, broadcast against each other.

        Returns
        -------
        i, j : np.ndarray
            Indices along the cube's first and second axes.
        """
        i = (np.asarray(inline, np.float64) - float(self.inlines[0])) / self.inline_step
        j = (np.asarray(crossline, np.float64) - float(self.crosslines[0])) / self.crossline_step
        return i, j

    def index_lines(self, i, j) -> tuple[np.ndarray, np.ndarray]:
        """Line numbers of (fractional) array indices; the inverse of :meth:`line_index`."""
        inline = float(self.inlines[0]) + np.asarray(i, np.float64) * self.inline_step
        crossline = float(self.crosslines[0]) + np.asarray(j, np.float64) * self.crossline_step
        return inline, crossline

    def lines_to_xy(self, inline, crossline) -> tuple[np.ndarray, np.ndarray]:
        """Map coordinates of line numbers (vectorised, fractional numbers allowed).

        Raises
        ------
        InputError
            The file holds no survey coordinates (``transform`` is None).
        """
        transform = self._transform()
        inline, crossline = np.asarray(inline, np.float64), np.asarray(crossline, np.float64)
        x = transform[0, 0] * inline + transform[0, 1] * crossline + transform[0, 2]
        y = transform[1, 0] * inline + transform[1, 1] * crossline + transform[1, 2]
        return x, y

    def xy_to_lines(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Fractional line numbers of map coordinates; the inverse of :meth:`lines_to_xy`.

        Raises
        ------
        InputError
            The file holds no survey coordinates (``transform`` is None).
        """
        transform = self._transform()
        inverse = np.linalg.inv(transform[:, :2])
        dx = np.asarray(x, np.float64) - transform[0, 2]
        dy = np.asarray(y, np.float64) - transform[1, 2]
        return inverse[0, 0] * dx + inverse[0, 1] * dy, inverse[1, 0] * dx + inverse[1, 1] * dy

    def survey_axes(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """Direction and spacing of the line grid on the map.

        Returns
        -------
        ((inline_azimuth, inline_spacing), (crossline_azimuth, crossline_spacing)) or None
            Azimuth in degrees clockwise from map north (+y), in [0, 360), of the
            direction in which inline (crossline) numbers increase, and the map
            distance between neighbouring inlines (crosslines), one line step apart;
            None without a transform.
        """
        if self.transform is None:
            return None
        axes = []
        for column, step in ((0, self.inline_step), (1, self.crossline_step)):
            dx, dy = self.transform[:, column] * step
            axes.append((float(np.degrees(np.arctan2(dx, dy)) % 360.0), float(np.hypot(dx, dy))))
        return axes[0], axes[1]

    def _transform(self) -> np.ndarray:
        if self.transform is None:
            raise InputError(f"{self.path}: the trace headers hold no usable survey coordinates (CDP X/Y at "
                             f"bytes 181/185, source X/Y at 73/77); use line numbers instead")
        return np.asarray(self.transform, np.float64)


def _step(numbers: np.ndarray) -> int:
    return int(numbers[1] - numbers[0]) if len(numbers) > 1 else 1


@dataclass
class Volume:
    """An n-dimensional image and the coordinates of its grid.

    World coordinates follow napari: ``world = translate + scale * index`` per axis.

    Attributes
    ----------
    data : array-like
        A numpy array (possibly a read-only ``np.memmap``); for zarr stores the
        ``zarr.Array`` itself, which reads chunk by chunk when sliced and is never
        loaded whole on open (``np.asarray(volume.data)`` loads it;
        ``dask.array.from_zarr(volume.data)`` wraps it for lazy arithmetic); for SEG-Y
        a :class:`~napari_geoseg.io.segy.SegyArray`, which reads the traces an index
        covers (``np.asarray`` loads it; ``volume.data.to_dask()`` wraps it).
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
