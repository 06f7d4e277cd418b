"""Post-stack 3D SEG-Y cubes (segyio): read as (inline, crossline, sample), write back.

Geometry
--------
Each trace header stores the trace's inline and crossline numbers, but where depends on
the software that wrote the file. The standard places (SEG-Y rev 1) are bytes 189/193;
older and some commercial files use 9/21 (field record / CDP) or 5/21 (Petrel). Byte
pairs are tried in this order: the ones the user gave, a pair the textual header
states (e.g. ``INLINE: 189, XLINE: 193`` or ``Inline number : bytes 5-8``), then
189/193, 9/21 and 5/21; traces may come in any order.

A pair's numbers span a grid: every inline from the smallest to the largest at the
inline step (the greatest common divisor of the differences between the sorted
distinct numbers; a single line has none), and the same for crosslines. Real surveys
rarely fill it: their outline follows the permit or the coastline, and traces are
missing where acquisition was not possible. Positions without a trace read as NaN
traces (int16 and other integer data then become float32). A pair gives the geometry
when its traces fill at least :data:`MIN_FILL` (a quarter) of its grid: real outlines
inside their bounding rectangle fill far more, while numbers from an unrelated header
field (a trace counter, CDP or shot numbers, coordinates) spread over a range much
wider than the number of traces and fill a small share of it. A pair with more than
one line on both axes wins over one that makes a single line, because a counter in
some unrelated header field also fills an N x 1 grid.

A trace whose position an earlier trace already holds is dropped (the first one is
kept), with a warning that counts them. A pair whose numbers would drop more traces
than they keep is not a geometry (an empty header field puts every trace at one
position); one where every position holds several traces describes pre-stack gathers,
which are refused.

Samples on demand
-----------------
Reading a file reads its headers only: :attr:`Volume.data` is a :class:`SegyArray`,
which reads the traces an index asks for through segyio (IBM floats converted as segyio
converts them) when indexed, and the whole cube on ``np.asarray``. Opening a survey of
many gigabytes therefore costs memory in proportion to its trace headers.

Survey coordinates
------------------
CDP X/Y (trace header bytes 181/185; source X/Y, bytes 73/77, when the CDP fields are
all zero), scaled by the coordinate scalar (byte 71: positive multiplies, negative
divides by its absolute value, 0 means 1), give the map position of each trace. A least
squares fit ``(x, y) = A @ (inline, crossline, 1)`` over the traces read is stored as
:attr:`SegyGeometry.transform` with its largest residual, so that positions convert
between line numbers, array indices and map coordinates.

Time or depth
-------------
SEG-Y has no reliable flag for the vertical domain: binary header byte 3255
(measurement system) describes coordinates and is "metres" in most time data too, and
Petrel writes "Time min/max" into the textual header of depth cubes. The domain is
therefore decided, first rule that answers:

1. ``domain=`` given by the caller;
2. the textual header says so: ``DOMAIN: DEPTH``, ``Z UNIT: M``, ``VERTICAL AXIS: TIME``,
   ``PSDM`` / ``PSTM``, ``DEPTH MIGRATED`` / ``TIME MIGRATED``, ...;
3. the file name holds a word ``depth``, ``psdm``, ``tvd`` or ``tvdss`` (depth), or ``time``,
   ``twt``, ``pstm`` (time), but not words of both kinds;
4. the sample interval: time data are sampled every 0.5 to 8 ms and hardly ever
   beyond 16 ms, while depth cubes are sampled every 5 to 25 m or so; an interval
   above :data:`DEPTH_INTERVAL_THRESHOLD` (16) header units / 1000 means depth;
5. otherwise time.

The header stores the interval in microseconds (binary header bytes 3217-3218, else
trace header bytes 117-118, else 4 ms is assumed, as segyio does); like segyio, the
value / 1000 is taken as milliseconds for time and as metres (feet when byte 3255 is 2)
for depth, which is what Petrel and most depth writers do. The first sample is trace header byte 109
(delay recording time) of the first trace, in the same unit.
"""

from __future__ import annotations

import hashlib
import operator
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ._guard import reason, unreadable
from .volume import SegyGeometry, Volume

__all__ = ["read_segy", "write_segy", "SegyArray", "DEFAULT_BYTE_PAIRS", "DEPTH_INTERVAL_THRESHOLD",
           "MIN_FILL", "vertical_domain"]

#: Inline/crossline header byte pairs tried when none is given.
DEFAULT_BYTE_PAIRS = ((189, 193), (9, 21), (5, 21))

#: Sample intervals (header value / 1000) above this are taken as depth: see the module notes.
DEPTH_INTERVAL_THRESHOLD = 16.0

#: Smallest share of its grid a byte pair's traces must fill to give the geometry: see the
#: module notes.
MIN_FILL = 0.25

#: Most bytes of samples one segyio call reads when samples are read on demand.
_READ_BYTES = 32 * 2**20

#: Unwanted traces between two wanted ones that are read anyway rather than starting a
#: new read: one call for a few more traces is cheaper than a call per trace.
_READ_GAP = 8

#: Bytes per chunk of the dask view of a cube (:meth:`SegyArray.to_dask`).
_CHUNK_BYTES = 16 * 2**20

#: Coordinate scalars the plain writer tries, finest first: -100 stores centimetres,
#: unless a coordinate in centimetres overflows the 32-bit header field.
_WRITE_SCALARS = (-100, -10, 1)

#: Bytes per sample of each SEG-Y sample format code.
_BYTES_PER_SAMPLE = {1: 4, 2: 4, 3: 2, 5: 4, 6: 8, 8: 1, 9: 8, 10: 4, 11: 2, 12: 8, 15: 3, 16: 1}

#: First bytes of the trace header fields segyio can read.
_FIELD_BYTES = frozenset((1, 5, 9, 13, 17, 21, 25, 29, 31, 33, 35, 37, 41, 45, 49, 53, 57, 61, 65, 69,
                          71, 73, 77, 81, 85, 89, 91, 93, 95, 97, 99, 101, 103, 105, 107, 109, 111, 113,
                          115, 117, 119, 121, 123, 125, 127, 129, 131, 133, 135, 137, 139, 141, 143,
                          145, 147, 149, 151, 153, 155, 157, 159, 161, 163, 165, 167, 169, 171, 173,
                          175, 177, 179, 181, 185, 189, 193, 197, 201, 203, 205, 209, 211, 213, 215,
                          217, 219, 223, 225, 229, 231, 233, 237))

# "INLINE: 189", "Inline number : bytes 5-8", "XLINE BYTE 193"; not "First inline: 10087".
_INLINE_HINT = re.compile(r"\bIN[ _-]?LINE\b[^\d\n]{0,40}?(?<!\d)(\d{1,3})(?!\d)", re.IGNORECASE)
_CROSSLINE_HINT = re.compile(r"\b(?:X|CROSS)[ _-]?LINE\b[^\d\n]{0,40}?(?<!\d)(\d{1,3})(?!\d)",
                             re.IGNORECASE)
_DOMAIN_STATEMENT = re.compile(r"\b(?:DOMAIN|(?:Z|VERTICAL|SAMPLE)[ _-]?(?:DOMAIN|UNITS?|AXIS))\b"
                               r"[ \t]*[:=]?[ \t]*([A-Z]+)", re.IGNORECASE)
_DEPTH_WORDS = {"DEPTH", "PSDM", "TVD", "TVDSS", "M", "METER", "METERS", "METRE", "METRES", "FT", "FEET"}
_TIME_WORDS = {"TIME", "TWT", "PSTM", "MS", "MSEC", "S", "SEC", "SECONDS", "MILLISECONDS"}


@dataclass(frozen=True)
class _Layout:
    """What the binary header says about how traces are laid out on disk."""

    endian: str
    sample_format: int
    n_samples: int
    trace_bytes: int


@dataclass(frozen=True)
class _Grid:
    """The line grid a byte pair's numbers span, and the trace at each of its positions."""

    inlines: np.ndarray
    crosslines: np.ndarray
    trace_index: np.ndarray
    n_duplicates: int

    @property
    def two_d(self) -> bool:
        return min(len(self.inlines), len(self.crosslines)) > 1


def read_segy(path: Path, *, inline_byte: int | None = None, crossline_byte: int | None = None,
              domain: str | None = None, display: str | None = None) -> Volume:
    """Read a post-stack 3D SEG-Y file as an (inline, crossline, sample) cube.

    Parameters
    ----------
    path : Path
        The file, in any sample format segyio reads (IBM or IEEE float, int16, ...),
        big- or little-endian, traces in any order.
    inline_byte, crossline_byte : int, optional
        Trace header byte positions of the inline and crossline numbers. When left
        out, they are found as the module notes describe.
    domain : {"time", "depth"}, optional
        The vertical domain; guessed as the module notes describe when left out.
    display : str, optional
        How to name the file in messages.

    Returns
    -------
    Volume
        ``data`` a :class:`SegyArray` that reads samples when indexed (only the headers
        are read here), of the file's sample type (float32 for floats, int16 for
        format 3), float32 with NaN traces where the grid has positions without a
        trace; axes ``("inline", "crossline", "sample")``; scale = (inline step,
        crossline step, sample interval), translate = (first inline, first crossline,
        first sample), so world coordinates are line numbers and ms (or m / ft); units
        ``("", "", "ms" | "m" | "ft")``; ``geometry`` a :class:`SegyGeometry` with the
        positions present and the survey transform; ``metadata`` with ``"domain"``,
        ``"domain_reason"`` and ``"text_header"``.

    Raises
    ------
    InputError
        Truncated or corrupt file, no byte pair giving a plausible geometry, pre-stack
        data, invalid byte positions.

    Warns
    -----
    UserWarning
        Traces dropped because an earlier trace has their inline/crossline position.
    """
    import segyio

    display = str(path) if display is None else display
    for name, byte in (("inline", inline_byte), ("crossline", crossline_byte)):
        if byte is not None and byte not in _FIELD_BYTES:
            raise InputError(f"{display}: {byte} is not the first byte of a trace header field; give the "
                             f"{name} number's byte as e.g. 189, 193, 9, 21 or 5", option="segy_bytes")
    if domain is not None and domain not in ("time", "depth"):
        raise InputError(f"{display}: the vertical domain must be 'time' or 'depth', not '{domain}'")
    layout = _check_layout(path, display)

    with unreadable(display, "SEG-Y file"):
        file = segyio.open(str(path), "r", ignore_geometry=True, endian=layout.endian)
    with file:
        with unreadable(display, "SEG-Y file"):
            # No file.mmap(): a mapped scan of every trace header pulls the whole file into
            # this process's resident memory (the headers are spread over all its pages),
            # and opening must cost memory in proportion to the headers alone.
            text = _textual_header(bytes(file.text[0]))
            pairs = _candidate_pairs(inline_byte, crossline_byte, text)

        def line_numbers(pair: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
            with unreadable(display, "SEG-Y file"):
                return file.attributes(pair[0])[:], file.attributes(pair[1])[:]

        pair, grid = _find_geometry(pairs, line_numbers, display,
                                    given=inline_byte is not None or crossline_byte is not None)
        with unreadable(display, "SEG-Y file"):
            interval = segyio.tools.dt(file, fallback_dt=4000.0) / 1000.0
            first_sample = float(file.header[0][segyio.TraceField.DelayRecordingTime])
            feet = file.bin[segyio.BinField.MeasurementSystem] == 2
            file_dtype = np.dtype(file.dtype)
            n_samples = len(file.samples)
            coordinates = _coordinates(file)

    if grid.n_duplicates:
        warnings.warn(f"{display}: {grid.n_duplicates} traces repeat the inline/crossline position of an "
                      f"earlier trace (header bytes {pair[0]}/{pair[1]}); the first trace at each position "
                      f"is kept", stacklevel=2)
    transform, residual = None, None
    if coordinates is not None:
        transform, residual = _fit_transform(grid, coordinates[0], coordinates[1])
    complete = bool(np.all(grid.trace_index >= 0))
    # NaN marks the missing traces, and only floats hold NaN.
    dtype = file_dtype if complete or file_dtype.kind == "f" else np.dtype(np.float32)
    domain, domain_reason = (domain, "given") if domain else vertical_domain(path.name, text, interval)
    unit = "ms" if domain == "time" else ("ft" if feet else "m")
    geometry = SegyGeometry(path=str(path.resolve()), inlines=grid.inlines, crosslines=grid.crosslines,
                            inline_byte=pair[0], crossline_byte=pair[1], n_samples=n_samples,
                            sample_interval=interval, sample_unit=unit, first_sample=first_sample,
                            domain=domain, endian=layout.endian, sample_format=layout.sample_format,
                            trace_index=grid.trace_index, n_duplicates=grid.n_duplicates,
                            transform=transform, transform_residual=residual,
                            coordinate_bytes=None if transform is None else coordinates[2],
                            coordinate_unit="ft" if feet else "m")
    return Volume(SegyArray(path, geometry, dtype, display), axes=("inline", "crossline", "sample"),
                  scale=(geometry.inline_step, geometry.crossline_step, interval),
                  translate=(float(grid.inlines[0]), float(grid.crosslines[0]), first_sample),
                  units=("", "", unit), source=display, geometry=geometry,
                  metadata={"domain": domain, "domain_reason": domain_reason, "text_header": text})


def write_segy(path: Path, data, like: Volume | None = None, display: str | None = None,
               transform=None) -> None:
    """Write a cube as SEG-Y with IEEE float32 samples (format 5).

    Parameters
    ----------
    path : Path
        The output file.
    data : array-like
        (inline, crossline, sample) values; integers (labels) are stored as float32.
        A 2D array is written as a single inline.
    like : Volume, optional
        A volume read from SEG-Y: its source file's textual, binary and trace headers
        (coordinates included) are copied, ``data`` must have its shape, and the
        traces of positions the source has no trace at are not written. Without one
        (or with a volume from another format), the file gets a plain geometry:
        inlines and crosslines numbered from 1 at bytes 189/193, 4 ms sampling from 0.
    display : str, optional
        How to name the output in messages.
    transform : array-like, optional
        For the plain geometry only: a 2x3 affine map ``(x, y) = transform @ (inline,
        crossline, 1)`` from the written line numbers (from 1) to map coordinates,
        stored as CDP X/Y (bytes 181/185) with coordinate scalar -100 (centimetres;
        coarser only where centimetres overflow the header field). Ignored when
        ``like`` is a SEG-Y volume, whose headers hold its coordinates.

    Raises
    ------
    InputError
        Complex or non-numeric data, not 2D or 3D, shape not that of ``like``, the
        template file gone or changed since it was read, a transform that is not 2x3
        finite numbers.
    """
    import segyio

    display = str(path) if display is None else display
    data = np.asarray(data)
    if data.dtype.kind not in "biuf":
        raise InputError(f"{display}: SEG-Y stores real numbers, not {data.dtype}; convert the data first")
    if data.ndim == 2:
        data = data[np.newaxis]
    if data.ndim != 3:
        raise InputError(f"{display}: SEG-Y holds (inline, crossline, sample) cubes, not {data.ndim}D data; "
                         f"write .npy, .tif or .zarr instead")
    if data.dtype.kind in "iu" and data.size:
        from .formats import check_writable

        check_writable(display, data.ndim, max(abs(int(data.max())), abs(int(data.min()))))
    values = data.astype(np.float32, copy=False)
    if like is not None and like.geometry is not None:
        _write_like(path, values, like.geometry, display)
        return
    coordinates = None
    if transform is not None:  # checked before anything is written
        coordinates = _plain_coordinates(values.shape, _checked_transform(transform, display), display)
    # segyio writes IBM floats unless told otherwise.
    segyio.tools.from_array3D(str(path), values, format=segyio.SegySampleFormat.IEEE_FLOAT_4_BYTE, dt=4000)
    if coordinates is not None:
        _write_coordinates(path, *coordinates)


class SegyArray:
    """The samples of a SEG-Y cube, read from the file only when indexed.

    A read-only stand-in for an ``(n_inlines, n_crosslines, n_samples)`` numpy array:
    basic indexing (integers, slices, ``...``, ``None``) reads just the traces it
    covers and returns a numpy array; ``np.asarray`` reads the whole cube. Positions
    without a trace read as NaN. The file is opened for each read, so an instance
    holds no file handle and may be used from several threads.

    Parameters
    ----------
    path : Path
        The SEG-Y file.
    geometry : SegyGeometry
        Its geometry, as :func:`read_segy` found it (``trace_index`` says which trace
        of the file sits where).
    dtype : numpy dtype
        The type of the values returned.
    display : str, optional
        How to name the file in messages.

    Attributes
    ----------
    shape : tuple of int
    dtype : np.dtype
    ndim : int
    traces_read : int
        Traces read from the file so far (for tests and diagnostics).
    """

    def __init__(self, path: Path, geometry: SegyGeometry, dtype, display: str | None = None):
        self.path = str(path)
        self.display = self.path if display is None else display
        self.shape = tuple(int(n) for n in geometry.shape)
        self.dtype = np.dtype(dtype)
        self.ndim = 3
        self.traces_read = 0
        self._endian = geometry.endian
        n_positions = self.shape[0] * self.shape[1]
        self._trace_index = (np.arange(n_positions).reshape(self.shape[:2]) if geometry.trace_index is None
                             else np.asarray(geometry.trace_index))
        stat = Path(path).stat()
        # Size and modification time: a file replaced since it was read must not be
        # read through the old trace positions.
        self._stamp = (stat.st_size, stat.st_mtime_ns)

    @property
    def size(self) -> int:
        """Number of values."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Bytes the whole cube takes once loaded."""
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"SegyArray({self.display!r}, shape={self.shape}, dtype={self.dtype})"

    def __getitem__(self, key) -> np.ndarray:
        real, after = _split_key(key, self.ndim)
        positions = [_axis_positions(k, n, axis) for axis, (k, n) in enumerate(zip(real[:2], self.shape[:2]))]
        block = self._read(positions[0], positions[1], real[2])
        drop = tuple(0 if isinstance(k, int) else slice(None) for k in real[:2])
        return block[drop][after]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        values = self[...]
        return values if dtype is None else values.astype(dtype, copy=False)

    def astype(self, dtype) -> np.ndarray:
        """The whole cube, read and converted to ``dtype`` (a numpy array)."""
        return np.asarray(self).astype(dtype)

    def to_dask(self):
        """A dask array over this one, in chunks of whole inlines (about 16 MiB each)."""
        import dask.array

        inline_bytes = max(self.shape[1] * self.shape[2] * self.dtype.itemsize, 1)
        inlines = int(min(max(_CHUNK_BYTES // inline_bytes, 1), max(self.shape[0], 1)))
        return dask.array.from_array(self, chunks=(inlines, -1, -1), asarray=False, fancy=False, lock=False)

    def __dask_tokenize__(self):
        # The file, its version and which trace sits where identify the values.
        layout = hashlib.sha1(np.ascontiguousarray(self._trace_index).tobytes()).hexdigest()
        return "napari_geoseg.SegyArray", self.path, self._stamp, self.dtype.str, self._endian, layout

    def _read(self, inline_positions: np.ndarray, crossline_positions: np.ndarray, samples) -> np.ndarray:
        """Positions ``inline_positions x crossline_positions``, samples ``samples`` of each."""
        sample_shape = np.empty((0, self.shape[2]))[:, samples].shape[1:]  # also checks the index
        table = self._trace_index[np.ix_(inline_positions, crossline_positions)]
        out = np.full(table.shape + sample_shape, np.nan if self.dtype.kind in "fc" else 0, self.dtype)
        wanted = table >= 0
        if not wanted.any() or out.size == 0:
            return out
        traces = table[wanted]
        order = np.argsort(traces, kind="stable")
        values = self._read_traces(traces[order], samples, sample_shape)
        out.reshape(-1, *sample_shape)[np.flatnonzero(wanted)[order]] = values
        return out

    def _read_traces(self, traces: np.ndarray, samples, sample_shape: tuple[int, ...]) -> np.ndarray:
        """Traces ``traces`` (increasing) of the file, samples ``samples`` of each."""
        import segyio

        self._check_unchanged()
        values = np.empty((len(traces), *sample_shape), self.dtype)
        per_read = max(1, _READ_BYTES // max(self.shape[2] * self.dtype.itemsize, 1))
        with unreadable(self.display, "SEG-Y file"):
            with segyio.open(self.path, "r", ignore_geometry=True, endian=self._endian) as file:
                for start, stop in _runs(traces, _READ_GAP, per_read):
                    first = int(traces[start])
                    raw = file.trace.raw[first:int(traces[stop - 1]) + 1]
                    values[start:stop] = raw[traces[start:stop] - first][:, samples]
        self.traces_read += len(traces)
        return values

    def _check_unchanged(self) -> None:
        try:
            stat = Path(self.path).stat()
        except OSError as exc:
            raise InputError(f"{self.display}: cannot read the samples ({reason(exc)}); check that the file "
                             f"is still there, or read it again") from exc
        if (stat.st_size, stat.st_mtime_ns) != self._stamp:
            raise InputError(f"{self.display}: the file changed since its headers were read; read it again")


def vertical_domain(name: str, text: str, interval: float) -> tuple[str, str]:
    """Guess whether a SEG-Y file is sampled in time or depth (see the module notes).

    Parameters
    ----------
    name : str
        The file name.
    text : str
        The textual header, decoded.
    interval : float
        Sample interval: the header value / 1000.

    Returns
    -------
    domain : {"time", "depth"}
    reason : str
        Which rule decided, for messages and metadata.
    """
    text = text.upper()
    for match in _DOMAIN_STATEMENT.finditer(text):
        word = match.group(1)
        if word in _DEPTH_WORDS:
            return "depth", "textual header"
        if word in _TIME_WORDS:
            return "time", "textual header"
    if re.search(r"\bPSDM\b|\bDEPTH[ _-]?MIGRAT", text):
        return "depth", "textual header"
    if re.search(r"\bPSTM\b|\bTIME[ _-]?MIGRAT", text):
        return "time", "textual header"
    words = set(re.split(r"[^a-z]+", Path(name).stem.lower()))
    depth, time = bool(words & {"depth", "psdm", "tvd", "tvdss"}), bool(words & {"time", "twt", "pstm"})
    if depth != time:
        return ("depth" if depth else "time"), "file name"
    if interval > DEPTH_INTERVAL_THRESHOLD:
        return "depth", f"sample interval above {DEPTH_INTERVAL_THRESHOLD:g}"
    return "time", "default"


def _textual_header(raw: bytes) -> str:
    """The 3200-byte textual header as 40 lines of 80 characters (segyio gives ASCII)."""
    text = raw.decode("ascii", errors="replace").replace("\x00", " ")
    return "\n".join(text[i:i + 80].rstrip() for i in range(0, len(text), 80))


def _check_layout(path: Path, display: str) -> _Layout:
    """Read the binary header and check that the file holds a whole number of traces.

    segyio reports a file cut in the middle with assorted errors, or reads a few
    garbage traces when the cut falls on a trace boundary of a smaller size, so the
    size is checked here first, against the trace length the header implies.
    """
    size = path.stat().st_size
    if size < 3600:
        raise InputError(f"{display}: only {size} bytes, too short for a SEG-Y file (3600-byte header); "
                         f"the file is truncated or not SEG-Y")
    with open(path, "rb") as file:
        header = file.read(3600)
        # The standard says big-endian; some writers use little-endian. The sample
        # format code (bytes 3225-3226) is valid in only one of the two.
        endian = "big"
        code = int.from_bytes(header[3224:3226], "big", signed=True)
        if code not in _BYTES_PER_SAMPLE:
            little = int.from_bytes(header[3224:3226], "little", signed=True)
            if little not in _BYTES_PER_SAMPLE:
                raise InputError(f"{display}: unknown sample format code {code} in binary header bytes "
                                 f"3225-3226; the file is corrupt or not SEG-Y")
            endian, code = "little", little
        n_samples = int.from_bytes(header[3220:3222], endian, signed=False)
        extended = int.from_bytes(header[3504:3506], endian, signed=True)
        if extended < 0:  # SEG-Y rev 2: a variable number, counted by segyio itself
            return _Layout(endian, code, n_samples, 0)
        first_trace = 3600 + 3200 * extended
        if n_samples == 0 and size >= first_trace + 240:  # then segyio uses trace header byte 115
            file.seek(first_trace + 114)
            n_samples = int.from_bytes(file.read(2), endian, signed=False)
    trace_bytes = 240 + n_samples * _BYTES_PER_SAMPLE[code]
    payload = size - first_trace
    if payload < trace_bytes or payload % trace_bytes:
        raise InputError(f"{display}: truncated or corrupt: {payload} bytes after the headers are not a "
                         f"whole number of {trace_bytes}-byte traces (240-byte header + {n_samples} samples "
                         f"x {_BYTES_PER_SAMPLE[code]} bytes); copy the file again or check that it is "
                         f"complete")
    return _Layout(endian, code, n_samples, trace_bytes)


def _candidate_pairs(inline_byte: int | None, crossline_byte: int | None, text: str) -> list[tuple[int, int]]:
    """Byte pairs to try, in order; see the module notes."""
    if inline_byte is not None and crossline_byte is not None:
        return [(inline_byte, crossline_byte)]
    if inline_byte is not None:
        return list(dict.fromkeys((inline_byte, x) for _, x in DEFAULT_BYTE_PAIRS if x != inline_byte))
    if crossline_byte is not None:
        return list(dict.fromkeys((i, crossline_byte) for i, _ in DEFAULT_BYTE_PAIRS if i != crossline_byte))
    pairs = []
    # Card numbers ("C 5", "C05") would pass for byte positions: drop them.
    cards = re.sub(r"(?m)^C\s*\d+", "", text)
    inline_hint, crossline_hint = _INLINE_HINT.search(cards), _CROSSLINE_HINT.search(cards)
    if inline_hint and crossline_hint:
        hinted = (int(inline_hint.group(1)), int(crossline_hint.group(1)))
        if hinted[0] != hinted[1] and set(hinted) <= _FIELD_BYTES:
            pairs.append(hinted)
    return list(dict.fromkeys(pairs + list(DEFAULT_BYTE_PAIRS)))


def _line_range(numbers: np.ndarray) -> tuple[int, int, int]:
    """First number, step and count of the lines spanning ``numbers``.

    The step is the greatest common divisor of the differences between the sorted
    distinct numbers, so every number lies on the grid; a single line has no
    differences and gets step 1.
    """
    unique = np.unique(numbers)
    if len(unique) == 1:
        return int(unique[0]), 1, 1
    step = int(np.gcd.reduce(np.diff(unique).astype(np.int64)))
    return int(unique[0]), step, (int(unique[-1]) - int(unique[0])) // step + 1


def _grid(inline_numbers: np.ndarray, crossline_numbers: np.ndarray) -> tuple[_Grid | None, tuple[int, int] | None]:
    """The line grid these trace numbers span, if they plausibly describe a post-stack cube.

    Returns
    -------
    grid : _Grid or None
        None when the traces fill less than :data:`MIN_FILL` of the grid, drop more
        traces as duplicates than they keep, or are gathers.
    fold : (int, int) or None
        For gathers (every position of several holding more than one trace), the
        fewest and most traces at a position.
    """
    dtype = np.asarray(inline_numbers).dtype  # the header's integers, as segyio gives them
    inline_numbers = np.asarray(inline_numbers, np.int64).ravel()
    crossline_numbers = np.asarray(crossline_numbers, np.int64).ravel()
    if inline_numbers.size == 0:
        return None, None
    inline_first, inline_step, n_inlines = _line_range(inline_numbers)
    crossline_first, crossline_step, n_crosslines = _line_range(crossline_numbers)
    n_positions = n_inlines * n_crosslines
    # Too sparse even if no trace repeats: decided before anything of the grid's size,
    # possibly huge for numbers from an unrelated field, is made.
    if inline_numbers.size < MIN_FILL * n_positions:
        return None, None
    flat = ((inline_numbers - inline_first) // inline_step * n_crosslines
            + (crossline_numbers - crossline_first) // crossline_step)
    positions, first_trace, counts = np.unique(flat, return_index=True, return_counts=True)
    if len(positions) > 1 and counts.min() > 1:
        return None, (int(counts.min()), int(counts.max()))
    n_duplicates = inline_numbers.size - len(positions)
    if len(positions) < MIN_FILL * n_positions or n_duplicates >= len(positions):
        return None, None
    trace_index = np.full(n_positions, -1, np.int64)
    trace_index[positions] = first_trace  # np.unique gives each position's first trace
    inlines = (inline_first + inline_step * np.arange(n_inlines)).astype(dtype)
    crosslines = (crossline_first + crossline_step * np.arange(n_crosslines)).astype(dtype)
    return _Grid(inlines, crosslines, trace_index.reshape(n_inlines, n_crosslines), n_duplicates), None


def _find_geometry(pairs: list[tuple[int, int]], line_numbers, display: str,
                   given: bool) -> tuple[tuple[int, int], _Grid]:
    """The first byte pair whose numbers make a plausible grid (see the module notes).

    ``line_numbers(pair)`` reads the numbers of every trace; it is called only until a
    pair works, because each call scans all trace headers of a possibly large file.
    """
    found, single_line, fold = None, None, None
    for pair in pairs:
        grid, pair_fold = _grid(*line_numbers(pair))
        if grid is None:
            if pair == pairs[0]:  # the pair given, hinted or the standard one
                fold = pair_fold
            continue
        if grid.two_d:
            found = (pair, grid)
            break
        single_line = single_line or (pair, grid)
    found = found or single_line
    if found is not None:
        return found
    tried = [f"{i}/{x}" for i, x in pairs]
    tried = tried[0] if len(tried) == 1 else ", ".join(tried[:-1]) + " or " + tried[-1]
    if fold is not None:
        count = str(fold[0]) if fold[0] == fold[1] else f"{fold[0]} to {fold[1]}"
        raise InputError(f"{display}: every inline/crossline position (header bytes {tried}) holds {count} "
                         f"traces: pre-stack gathers are not supported; stack the data first")
    if given:
        raise InputError(f"{display}: header bytes {tried} do not give a regular inline/crossline geometry; "
                         f"check the header bytes given for the inline and crossline numbers",
                         option="segy_bytes")
    raise InputError(f"{display}: cannot infer the inline/crossline geometry from header bytes {tried}; "
                     f"give the header bytes of the inline and crossline numbers", option="segy_bytes")


def _coordinates(file) -> tuple[np.ndarray, np.ndarray, tuple[int, int]] | None:
    """Scaled map coordinates of every trace: CDP X/Y, else source X/Y; None if all zero."""
    scalar = file.attributes(71)[:].astype(np.float64)
    factor = np.ones_like(scalar)
    factor[scalar > 0] = scalar[scalar > 0]
    factor[scalar < 0] = 1.0 / -scalar[scalar < 0]
    for pair in ((181, 185), (73, 77)):
        x, y = (file.attributes(byte)[:].astype(np.float64) for byte in pair)
        if np.any(x) or np.any(y):
            return x * factor, y * factor, pair
    return None


def _fit_transform(grid: _Grid, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray | None, float | None]:
    """Least squares ``(x, y) = A @ (inline, crossline, 1)`` over the traces kept, and its largest residual.

    Returns ``(None, None)`` when the traces do not determine a map: a single line, or
    coordinates that do not change along one of the axes (copied from one trace).
    """
    i, j = np.nonzero(grid.trace_index >= 0)
    trace = grid.trace_index[i, j]
    lines = np.column_stack([grid.inlines[i], grid.crosslines[j]]).astype(np.float64)
    centre = lines.mean(axis=0)  # line numbers in the thousands would cost precision
    design = np.column_stack([lines - centre, np.ones(len(lines))])
    target = np.column_stack([x[trace], y[trace]])
    coefficients, _, rank, _ = np.linalg.lstsq(design, target, rcond=None)
    if rank < 3 or not np.all(np.isfinite(coefficients)):
        return None, None
    transform = coefficients.T.copy()
    transform[:, 2] -= transform[:, :2] @ centre
    linear = transform[:, :2]
    if abs(np.linalg.det(linear)) <= 1e-9 * np.prod(np.linalg.norm(linear, axis=0)):
        return None, None
    residual = float(np.hypot(*(design @ coefficients - target).T).max())
    return transform, residual


def _checked_transform(transform, display: str) -> np.ndarray:
    try:
        affine = np.asarray(transform, np.float64)
    except (TypeError, ValueError):
        affine = np.empty(0)
    if affine.shape != (2, 3) or not np.all(np.isfinite(affine)):
        raise InputError(f"{display}: the survey transform must be 2x3 finite numbers, (x, y) = A @ (inline, "
                         f"crossline, 1), not {np.shape(transform)}; give SegyGeometry.transform or leave it out")
    return affine


def _plain_coordinates(shape: tuple[int, ...], transform: np.ndarray, display: str) -> tuple[int, np.ndarray]:
    """Coordinate scalar and stored CDP X/Y (2, traces) of a plain file, inline-sorted, lines from 1."""
    inlines, crosslines = np.meshgrid(np.arange(1, shape[0] + 1), np.arange(1, shape[1] + 1), indexing="ij")
    xy = transform @ np.vstack([inlines.ravel(), crosslines.ravel(), np.ones(inlines.size)])
    limit = np.iinfo(np.int32).max
    for scalar in _WRITE_SCALARS:
        stored = np.round(xy * (-scalar if scalar < 0 else 1.0 / scalar))
        if np.abs(stored).max(initial=0) <= limit:
            return scalar, stored.astype(np.int64)
    raise InputError(f"{display}: survey coordinates up to {np.abs(xy).max():.3g} do not fit the 32-bit CDP X/Y "
                     f"header fields; check the transform")


def _write_coordinates(path: Path, scalar: int, stored: np.ndarray) -> None:
    """Fill CDP X/Y and the coordinate scalar of each trace of a plainly written file."""
    import segyio

    with segyio.open(str(path), "r+", ignore_geometry=True) as file:
        for trace in range(file.tracecount):
            file.header[trace].update({segyio.TraceField.SourceGroupScalar: scalar,
                                       segyio.TraceField.CDP_X: int(stored[0, trace]),
                                       segyio.TraceField.CDP_Y: int(stored[1, trace])})


def _split_key(key, ndim: int) -> tuple[list, tuple]:
    """A basic index as one integer or slice per axis, and what to apply afterwards.

    Returns
    -------
    real : list of int or slice
        ``ndim`` entries.
    after : tuple
        Applied to the result of ``real`` (integer axes already dropped): ``None``
        where the key inserts an axis, ``slice(None)`` for each axis kept.
    """
    key = key if isinstance(key, tuple) else (key,)
    ellipses = sum(k is Ellipsis for k in key)
    if ellipses > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    n_real = sum(k is not None and k is not Ellipsis for k in key)
    if n_real > ndim:
        raise IndexError(f"too many indices: the cube has {ndim} axes but {n_real} were indexed")
    fill = (slice(None),) * (ndim - n_real)
    if ellipses:
        at = next(n for n, k in enumerate(key) if k is Ellipsis)
        key = key[:at] + fill + key[at + 1:]
    else:
        key = key + fill
    real, after = [], []
    for k in key:
        if k is None:
            after.append(None)
        elif isinstance(k, slice):
            real.append(k)
            after.append(slice(None))
        elif isinstance(k, (bool, np.bool_)):
            raise IndexError("a SEG-Y cube read on demand takes integers, slices, ... and None; load it with "
                             "np.asarray for boolean indexing")
        else:
            try:
                real.append(operator.index(k))
            except TypeError:
                raise IndexError(f"a SEG-Y cube read on demand takes integers, slices, ... and None, not "
                                 f"{type(k).__name__}; load it with np.asarray first") from None
    return real, tuple(after)


def _axis_positions(key, size: int, axis: int) -> np.ndarray:
    """The positions along one axis that an integer or a slice selects."""
    if isinstance(key, slice):
        return np.arange(*key.indices(size))
    if not -size <= key < size:
        raise IndexError(f"index {key} is out of bounds for axis {axis} with size {size}")
    return np.array([key % size])


def _runs(traces: np.ndarray, gap: int, span: int) -> Iterator[tuple[int, int]]:
    """Split increasing trace numbers into ``[start, stop)`` groups read with one call each.

    A group never skips more than ``gap`` traces between two it wants and covers at
    most ``span`` traces of the file.
    """
    breaks = np.flatnonzero(np.diff(traces) > gap + 1) + 1
    bounds = [0, *breaks.tolist(), len(traces)]
    for start, stop in zip(bounds[:-1], bounds[1:]):
        while start < stop:
            end = start + int(np.searchsorted(traces[start:stop], traces[start] + span))
            yield start, end
            start = end


def _write_like(path: Path, values: np.ndarray, geometry: SegyGeometry, display: str) -> None:
    """Write ``values`` into a copy of the headers of the file ``geometry`` came from.

    Each trace of the source gets the values of its position (a duplicate those of the
    position it repeats); positions the source has no trace at have no header and are
    not written.
    """
    import segyio

    source_path = Path(geometry.path)
    shape = "x".join(map(str, geometry.shape))
    if values.shape != geometry.shape:
        raise InputError(f"{display}: data of shape {'x'.join(map(str, values.shape))} does not fit the "
                         f"SEG-Y template {source_path.name} ({shape} inlines x crosslines x samples); "
                         f"write .npy, .tif or .zarr instead")
    if not source_path.is_file():
        raise InputError(f"{display}: the SEG-Y template {source_path} no longer exists; read it again or "
                         f"write .npy, .tif or .zarr instead")
    changed = InputError(f"{display}: the SEG-Y template {source_path} changed since it was read; "
                         f"read it again")
    with unreadable(str(source_path), "SEG-Y file"):
        source = segyio.open(str(source_path), "r", ignore_geometry=True, endian=geometry.endian)
    with source:
        with unreadable(str(source_path), "SEG-Y file"):
            inline_numbers = source.attributes(geometry.inline_byte)[:]
            crossline_numbers = source.attributes(geometry.crossline_byte)[:]
        if source.tracecount != geometry.n_traces or len(source.samples) != geometry.n_samples:
            raise changed
        # Each trace goes back where it came from, whatever the file's trace order.
        inline_index = np.searchsorted(geometry.inlines, inline_numbers).clip(0, len(geometry.inlines) - 1)
        crossline_index = np.searchsorted(geometry.crosslines, crossline_numbers).clip(
            0, len(geometry.crosslines) - 1)
        if (np.any(geometry.inlines[inline_index] != inline_numbers)
                or np.any(geometry.crosslines[crossline_index] != crossline_numbers)
                or not np.all(geometry.present[inline_index, crossline_index])):
            raise changed
        spec = segyio.spec()
        spec.format = int(segyio.SegySampleFormat.IEEE_FLOAT_4_BYTE)
        spec.samples = source.samples
        spec.tracecount = source.tracecount
        spec.ext_headers = source.ext_headers
        spec.endian = geometry.endian
        with segyio.create(str(path), spec) as target:
            for i in range(source.ext_headers + 1):
                target.text[i] = source.text[i]
            target.bin = source.bin
            target.bin.update({segyio.BinField.Format: spec.format})
            target.header = source.header
            target.trace = values[inline_index, crossline_index]
