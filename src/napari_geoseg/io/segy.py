"""Post-stack 3D SEG-Y cubes (segyio): read as (inline, crossline, sample), write back.

Geometry
--------
Each trace header stores the trace's inline and crossline numbers, but where depends on
the software that wrote the file. The standard places (SEG-Y rev 1) are bytes 189/193;
older and some commercial files use 9/21 (field record / CDP) or 5/21 (Petrel). Byte
pairs are tried in this order: the ones the user gave, a pair the textual header
states (e.g. ``INLINE: 189, XLINE: 193`` or ``Inline number : bytes 5-8``), then
189/193, 9/21 and 5/21. A pair gives the geometry when every (inline, crossline)
position occurs exactly once and together they fill the grid; traces may come in any
order. A pair with more than one line on both axes wins over one that makes a single
line, because a counter in some unrelated header field also "fills" an N x 1 grid.

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

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ._guard import unreadable
from .volume import SegyGeometry, Volume

__all__ = ["read_segy", "write_segy", "DEFAULT_BYTE_PAIRS", "DEPTH_INTERVAL_THRESHOLD",
           "vertical_domain"]

#: Inline/crossline header byte pairs tried when none is given.
DEFAULT_BYTE_PAIRS = ((189, 193), (9, 21), (5, 21))

#: Sample intervals (header value / 1000) above this are taken as depth: see the module notes.
DEPTH_INTERVAL_THRESHOLD = 16.0

#: Bytes per sample of each SEG-Y sample format code.
_BYTES_PER_SAMPLE = {1: 4, 2: 4, 3: 2, 5: 4, 6: 8, 8: 1, 9: 8, 10: 4, 11: 2, 12: 8, 15: 3, 16: 1}

#: First bytes of the trace header fields segyio can read.
_FIELD_BYTES = frozenset((1, 5, 9, 13, 17, 21, 25, 29, 31, 33, 35, 37, 41, 45, 49, 53, 57, 61, 65, 69,
                          71, 73, 77, 81, 85, 89, 91, 93, 95, 97, 99, 101, 103, 105, 107, 109, 111, 113,
                          115, 117, 119, 121, 123, 125, 127, 129, 131, 133, 135, 137, 139, 141, 143,
                          145, 147, 149, 151, 153, 155, 157, 159, 161, 163, 165, 167, 169, 171, 173,
                          175, 177, 179, 181, 185, 189, 193, 197, 201, 203, 205, 209, 211, 213, 215,
                          217, 219, 223, 225, 229, 231, 233, 237))

_OPTIONS = "--segy-inline-byte and --segy-crossline-byte"

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
        ``data`` of the file's sample type (float32 for floats, int16 for format 3);
        axes ``("inline", "crossline", "sample")``; scale = (inline step, crossline
        step, sample interval), translate = (first inline, first crossline, first
        sample), so world coordinates are line numbers and ms (or m / ft); units
        ``("", "", "ms" | "m" | "ft")``; ``geometry`` a :class:`SegyGeometry`;
        ``metadata`` with ``"domain"``, ``"domain_reason"`` and ``"text_header"``.

    Raises
    ------
    InputError
        Truncated or corrupt file, no byte pair giving a regular geometry, pre-stack
        data, invalid byte positions.
    """
    import segyio

    display = str(path) if display is None else display
    for name, byte in (("--segy-inline-byte", inline_byte), ("--segy-crossline-byte", crossline_byte)):
        if byte is not None and byte not in _FIELD_BYTES:
            raise InputError(f"{display}: {byte} is not the first byte of a trace header field; give {name} "
                             f"as e.g. 189, 193, 9, 21 or 5")
    if domain is not None and domain not in ("time", "depth"):
        raise InputError(f"{display}: the vertical domain must be 'time' or 'depth', not '{domain}'")
    layout = _check_layout(path, display)

    with unreadable(display, "SEG-Y file"):
        file = segyio.open(str(path), "r", ignore_geometry=True, endian=layout.endian)
    with file:
        with unreadable(display, "SEG-Y file"):
            file.mmap()  # faster header scans; harmless if the platform cannot map
            text = _textual_header(bytes(file.text[0]))
            pairs = _candidate_pairs(inline_byte, crossline_byte, text)

        def line_numbers(pair: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
            with unreadable(display, "SEG-Y file"):
                return file.attributes(pair[0])[:], file.attributes(pair[1])[:]

        pair, inlines, crosslines, flat_index = _find_geometry(
            pairs, line_numbers, display, given=inline_byte is not None or crossline_byte is not None)
        with unreadable(display, "SEG-Y file"):
            traces = np.asarray(file.trace.raw[:]).reshape(file.tracecount, len(file.samples))
            interval = segyio.tools.dt(file, fallback_dt=4000.0) / 1000.0
            first_sample = float(file.header[0][segyio.TraceField.DelayRecordingTime])
            feet = file.bin[segyio.BinField.MeasurementSystem] == 2

    cube = _traces_to_cube(traces, flat_index, (len(inlines), len(crosslines)))
    domain, domain_reason = (domain, "given") if domain else vertical_domain(path.name, text, interval)
    unit = "ms" if domain == "time" else ("ft" if feet else "m")
    geometry = SegyGeometry(path=str(path.resolve()), inlines=inlines, crosslines=crosslines,
                            inline_byte=pair[0], crossline_byte=pair[1], n_samples=cube.shape[2],
                            sample_interval=interval, sample_unit=unit, first_sample=first_sample,
                            domain=domain, endian=layout.endian, sample_format=layout.sample_format)
    inline_step, inline_origin = _step_and_origin(inlines)
    crossline_step, crossline_origin = _step_and_origin(crosslines)
    return Volume(cube, axes=("inline", "crossline", "sample"),
                  scale=(inline_step, crossline_step, interval),
                  translate=(inline_origin, crossline_origin, first_sample),
                  units=("", "", unit), source=display, geometry=geometry,
                  metadata={"domain": domain, "domain_reason": domain_reason, "text_header": text})


def write_segy(path: Path, data, like: Volume | None = None, display: str | None = None) -> None:
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
        are copied and ``data`` must have its shape. Without one (or with a volume
        from another format), the file gets a plain geometry: inlines and crosslines
        numbered from 1 at bytes 189/193, 4 ms sampling from 0.
    display : str, optional
        How to name the output in messages.

    Raises
    ------
    InputError
        Complex or non-numeric data, not 2D or 3D, shape not that of ``like``, the
        template file gone or changed since it was read.
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
    values = data.astype(np.float32, copy=False)
    if like is not None and like.geometry is not None:
        _write_like(path, values, like.geometry, display)
    else:
        # segyio writes IBM floats unless told otherwise.
        segyio.tools.from_array3D(str(path), values, format=segyio.SegySampleFormat.IEEE_FLOAT_4_BYTE,
                                  dt=4000)


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


def _grid(inline_numbers: np.ndarray, crossline_numbers: np.ndarray):
    """The regular grid these trace numbers fill, or None.

    Returns
    -------
    (inlines, crosslines, flat_index) or (None, copies)
        Sorted unique numbers and each trace's position ``i * n_crosslines + j`` in
        the grid; or None and how many traces share each position (0 when positions
        are missing or unevenly shared).
    """
    inlines, inline_index = np.unique(inline_numbers, return_inverse=True)
    crosslines, crossline_index = np.unique(crossline_numbers, return_inverse=True)
    flat_index = inline_index.ravel() * len(crosslines) + crossline_index.ravel()
    counts = np.bincount(flat_index, minlength=len(inlines) * len(crosslines))
    if counts.min() == counts.max() == 1:
        return inlines, crosslines, flat_index
    # Equal copies at several positions look like pre-stack gathers; one position
    # holding every trace is just an empty header field.
    evenly_shared = counts.min() == counts.max() and len(counts) > 1
    return None, int(counts.max()) if evenly_shared else 0


def _find_geometry(pairs: list[tuple[int, int]], line_numbers, display: str, given: bool):
    """The first byte pair whose numbers make a regular grid (see the module notes).

    ``line_numbers(pair)`` reads the numbers of every trace; it is called only until a
    pair works, because each call scans all trace headers of a possibly large file.
    """
    found, single_line, gathers = None, None, 0
    for pair in pairs:
        grid = _grid(*line_numbers(pair))
        if grid[0] is None:
            if pair == pairs[0]:  # the pair given, hinted or the standard one
                gathers = grid[1]
            continue
        if min(len(grid[0]), len(grid[1])) > 1:
            found = (pair, *grid)
            break
        single_line = single_line or (pair, *grid)
    found = found or single_line
    if found is not None:
        return found
    tried = [f"{i}/{x}" for i, x in pairs]
    tried = tried[0] if len(tried) == 1 else ", ".join(tried[:-1]) + " or " + tried[-1]
    if gathers > 1:
        raise InputError(f"{display}: every inline/crossline position (header bytes {tried}) holds {gathers} "
                         f"traces: pre-stack gathers are not supported; stack the data first")
    if given:
        raise InputError(f"{display}: header bytes {tried} do not give a regular inline/crossline geometry; "
                         f"check the byte positions given with {_OPTIONS}")
    raise InputError(f"{display}: cannot infer the inline/crossline geometry from header bytes {tried}; "
                     f"give the byte positions with {_OPTIONS}")


def _traces_to_cube(traces: np.ndarray, flat_index: np.ndarray, lines: tuple[int, int]) -> np.ndarray:
    if np.array_equal(flat_index, np.arange(len(flat_index))):  # inline-sorted: no copy
        return traces.reshape(*lines, -1)
    cube = np.empty((lines[0] * lines[1], traces.shape[1]), traces.dtype)
    cube[flat_index] = traces
    return cube.reshape(*lines, -1)


def _step_and_origin(numbers: np.ndarray) -> tuple[float, float]:
    """Scale and translate that map indices to line numbers, if they are evenly spaced."""
    steps = np.unique(np.diff(numbers))
    if len(numbers) == 1:
        return 1.0, float(numbers[0])
    if len(steps) == 1:
        return float(steps[0]), float(numbers[0])
    return 1.0, 0.0  # uneven numbering: index coordinates; the numbers are in the geometry


def _write_like(path: Path, values: np.ndarray, geometry: SegyGeometry, display: str) -> None:
    """Write ``values`` into a copy of the headers of the file ``geometry`` came from."""
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
        n_traces = geometry.shape[0] * geometry.shape[1]
        if source.tracecount != n_traces or len(source.samples) != geometry.n_samples:
            raise changed
        # Each trace goes back where it came from, whatever the file's trace order.
        inline_index = np.searchsorted(geometry.inlines, inline_numbers).clip(0, len(geometry.inlines) - 1)
        crossline_index = np.searchsorted(geometry.crosslines, crossline_numbers).clip(
            0, len(geometry.crosslines) - 1)
        if (np.any(geometry.inlines[inline_index] != inline_numbers)
                or np.any(geometry.crosslines[crossline_index] != crossline_numbers)):
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
