"""ENVI raster files: a text header (``.hdr``) and a raw binary file beside it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ._guard import reason
from .volume import Volume

__all__ = ["read_envi", "parse_envi_header", "ENVI_DATA_TYPES"]

#: ENVI "data type" codes.
ENVI_DATA_TYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 6: "c8", 9: "c16",
                   12: "u2", 13: "u4", 14: "i8", 15: "u8"}

#: Order of the axes on disk for each interleave, and the transpose that turns it into
#: (row, column, band) = (lines, samples, bands).
_INTERLEAVES = {"bsq": (("bands", "lines", "samples"), (1, 2, 0)),
                "bil": (("lines", "bands", "samples"), (0, 2, 1)),
                "bip": (("lines", "samples", "bands"), (0, 1, 2))}

#: Names tried for the binary file, after the header's own name without ".hdr".
_DATA_SUFFIXES = ("", ".img", ".dat", ".raw", ".bin", ".bsq", ".bil", ".bip", ".envi")

_FIELD = re.compile(r"^[ \t]*([^=\n]+?)[ \t]*=[ \t]*(\{[^}]*\}|[^\n]*)", re.MULTILINE)


def parse_envi_header(text: str) -> dict[str, str]:
    """Fields of an ENVI header as raw strings, keys lower-case.

    Braced values (``{...}``, possibly over several lines) are returned without the
    braces and with line breaks turned into spaces.

    Parameters
    ----------
    text : str
        The header; its first line must be ``ENVI``.

    Returns
    -------
    dict of str to str

    Raises
    ------
    ValueError
        The first line is not ``ENVI``.
    """
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip().upper() != "ENVI":
        raise ValueError("the first line is not 'ENVI'")
    body = "\n".join(line for line in lines[1:] if not line.lstrip().startswith(";"))
    fields = {}
    for key, value in _FIELD.findall(body):
        value = value.strip()
        if value.startswith("{"):
            value = " ".join(value[1:-1].split())
        fields[key.strip().lower()] = value
    return fields


def read_envi(path: Path, display: str | None = None) -> Volume:
    """Read an ENVI raster, memory-mapped, as (row, column, band).

    Parameters
    ----------
    path : Path
        The ``.hdr`` header. The binary file is the header's name without ``.hdr``,
        or with ``.img``, ``.dat``, ``.raw``, ``.bin``, ``.bsq``, ``.bil``, ``.bip``
        or ``.envi`` in its place.
    display : str, optional
        How to name the header in messages.

    Returns
    -------
    Volume
        ``data`` a read-only view of shape (lines, samples, bands) whatever the
        interleave; axes ``("row", "column", "band")``; ``metadata`` holds
        ``"wavelength"`` (array) and ``"wavelength_units"`` when given, ``"fwhm"``,
        ``"band_names"``, ``"data_ignore_value"``, ``"interleave"``, ``"binary"``
        (the data file) and ``"header"`` (all raw fields).

    Raises
    ------
    InputError
        Not an ENVI header, a required field missing or invalid, no binary file,
        binary file shorter than the header says.
    """
    display = str(path) if display is None else display
    try:
        fields = parse_envi_header(path.read_text(encoding="latin-1"))
    except (ValueError, OSError) as exc:
        raise InputError(f"{display}: not an ENVI header ({reason(exc)}); "
                         f"give the .hdr file written with the image") from exc

    samples, lines, bands = (_int_field(fields, name, display) for name in ("samples", "lines", "bands"))
    for name, value in (("samples", samples), ("lines", lines), ("bands", bands)):
        if value < 0:
            raise InputError(f"{display}: '{name} = {value}' is negative; the header is damaged")
    code = _int_field(fields, "data type", display)
    if code not in ENVI_DATA_TYPES:
        known = ", ".join(map(str, ENVI_DATA_TYPES))
        raise InputError(f"{display}: unsupported ENVI data type {code}; supported codes are {known}")
    interleave = fields.get("interleave", "bsq").strip().lower()
    if interleave not in _INTERLEAVES:
        raise InputError(f"{display}: unknown interleave '{interleave}'; expected bsq, bil or bip")
    # "byte order" 0 is little-endian (the default when absent), 1 big-endian.
    byte_order = _int_field(fields, "byte order", display, default=0)
    dtype = np.dtype(ENVI_DATA_TYPES[code]).newbyteorder(">" if byte_order == 1 else "<")
    offset = _int_field(fields, "header offset", display, default=0)
    if offset < 0:
        raise InputError(f"{display}: 'header offset = {offset}' is negative; the header is damaged")

    binary = _find_binary(path, display)
    sizes = {"samples": samples, "lines": lines, "bands": bands}
    disk_axes, to_row_column_band = _INTERLEAVES[interleave]
    disk_shape = tuple(sizes[name] for name in disk_axes)
    needed = offset + samples * lines * bands * dtype.itemsize  # Python integers: no overflow
    size = binary.stat().st_size
    if size < needed:
        after_offset = f" after {offset} header bytes" if offset else ""
        raise InputError(f"{display}: the data file {binary.name} has {size} bytes but the header describes "
                         f"{needed} ({lines} lines x {samples} samples x {bands} bands of "
                         f"{dtype.itemsize} bytes{after_offset}); the file is truncated or the header does "
                         f"not belong to it")
    if needed == offset:
        data = np.zeros(disk_shape, dtype)  # np.memmap cannot map zero bytes
    else:
        data = np.memmap(binary, dtype=dtype, mode="r", offset=offset, shape=disk_shape)
    data = data.transpose(to_row_column_band)
    return Volume(data, axes=("row", "column", "band"), source=display,
                  metadata=_metadata(fields, interleave, binary, bands))


def _int_field(fields: dict[str, str], name: str, display: str, default: int | None = None) -> int:
    if name not in fields:
        if default is not None:
            return default
        raise InputError(f"{display}: the ENVI header lacks '{name}'; add it or re-export the image")
    try:
        return int(fields[name])
    except ValueError:
        raise InputError(f"{display}: the ENVI header's '{name}' is '{fields[name]}', not a whole number; "
                         f"correct it") from None


def _find_binary(header: Path, display: str) -> Path:
    base = header.with_suffix("")
    tried = []
    for suffix in _DATA_SUFFIXES:
        for candidate in {base.with_name(base.name + suffix), base.with_name(base.name + suffix.upper())}:
            if candidate.is_file():
                return candidate
        tried.append(base.name + suffix)
    raise InputError(f"{display}: no data file beside the ENVI header (looked for {', '.join(tried)}); "
                     f"put the binary image next to its header")


def _float_list(text: str) -> np.ndarray | None:
    try:
        return np.array([float(v) for v in text.replace(",", " ").split()])
    except ValueError:
        return None


def _metadata(fields: dict[str, str], interleave: str, binary: Path, bands: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {"interleave": interleave, "binary": str(binary), "header": fields}
    for key in ("wavelength", "fwhm"):
        values = _float_list(fields.get(key, ""))
        if values is not None and len(values) == bands:
            metadata[key] = values
    if "wavelength units" in fields:
        metadata["wavelength_units"] = fields["wavelength units"]
    if "band names" in fields:
        metadata["band_names"] = [name.strip() for name in fields["band names"].split(",")]
    if "data ignore value" in fields:
        metadata["data_ignore_value"] = fields["data ignore value"]
    return metadata
