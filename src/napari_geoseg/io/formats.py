"""Choose the reader or writer from a file name, and report bad paths in one line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import GeosegError, InputError
from ._guard import reason
from .atomic import atomic_output
from .envi import read_envi
from .matlab import read_mat
from .numpy_file import read_npy, write_npy
from .segy import read_segy, write_segy
from .tiff import read_tiff, write_tiff
from .volume import Volume
from .zarr_store import read_zarr, write_zarr

__all__ = ["read_volume", "write_volume", "split_spec", "READ_SUFFIXES", "WRITE_SUFFIXES"]

#: File name endings read_volume understands.
READ_SUFFIXES = (".hdr", ".mat", ".npy", ".segy", ".sgy", ".tif", ".tiff", ".zarr")
#: File name endings write_volume understands.
WRITE_SUFFIXES = (".npy", ".segy", ".sgy", ".tif", ".tiff", ".zarr")
#: Formats whose files hold several named arrays, chosen with ``FILE:NAME``.
_NAMED = (".mat", ".zarr")

# "scene.mat:Y", "store.zarr:group/array". A drive letter ("C:\...") never follows an
# extension, so Windows paths are left alone.
_SPEC = re.compile(r"^(?P<path>.+?(?P<suffix>\.[A-Za-z0-9]+)):(?P<name>[^:\\]+)$")


def split_spec(spec: str | Path) -> tuple[Path, str | None]:
    """Split ``FILE:NAME`` into the file and the array name.

    Parameters
    ----------
    spec : str or Path
        A path, optionally followed by ``:NAME`` after a known file extension.

    Returns
    -------
    path : Path
    name : str or None
        The part after the colon, or None.

    Examples
    --------
    >>> split_spec("Samson.mat:Y")
    (PosixPath('Samson.mat'), 'Y')
    >>> split_spec("f3.sgy")
    (PosixPath('f3.sgy'), None)
    """
    text = str(spec)
    match = _SPEC.match(text)
    if match and match.group("suffix").lower() in READ_SUFFIXES and not Path(text).exists():
        return Path(match.group("path")), match.group("name")
    return Path(text), None


def read_volume(spec: str | Path, *, variable: str | None = None, segy_inline_byte: int | None = None,
                segy_crossline_byte: int | None = None, segy_domain: str | None = None) -> Volume:
    """Read a volume, choosing the format from the file extension.

    Parameters
    ----------
    spec : str or Path
        The file: ``.npy``, ``.tif``/``.tiff``, ``.sgy``/``.segy`` (post-stack 3D
        SEG-Y), ``.zarr`` (opened lazily), ``.mat`` (MATLAB v4 to v7.3) or ``.hdr``
        (ENVI header, binary beside it). ``FILE.mat:NAME`` and ``STORE.zarr:NAME``
        choose a variable or an array of a group.
    variable : str, optional
        The same choice as ``:NAME``, for .mat and .zarr only.
    segy_inline_byte, segy_crossline_byte : int, optional
        SEG-Y trace header byte positions of the inline and crossline numbers; found
        from the file when left out (see :mod:`napari_geoseg.io.segy`).
    segy_domain : {"time", "depth"}, optional
        The SEG-Y vertical domain; guessed when left out (see
        :mod:`napari_geoseg.io.segy`).

    Returns
    -------
    Volume

    Raises
    ------
    InputError
        Missing file, unknown extension, unreadable, truncated or corrupt file,
        missing or ambiguous variable, SEG-Y geometry that cannot be found.

    Examples
    --------
    >>> volume = read_volume("f3.sgy")                    # doctest: +SKIP
    >>> volume.shape, volume.axes                         # doctest: +SKIP
    ((23, 18, 75), ('inline', 'crossline', 'sample'))
    >>> read_volume("Samson.mat:Y").shape                 # doctest: +SKIP
    (156, 9025)
    """
    path, name = split_spec(spec)
    display = str(path)
    suffix = path.suffix.lower()
    if suffix not in READ_SUFFIXES:
        raise InputError(f"{display}: unknown file type '{path.suffix}'; "
                         f"supported: {', '.join(READ_SUFFIXES)}")
    if variable is not None and name is not None and variable != name:
        raise InputError(f"{display}: two array names given, '{name}' and '{variable}'; give one")
    name = variable if variable is not None else name
    if name is not None and suffix not in _NAMED:
        raise InputError(f"{display}: only .mat and .zarr files hold named arrays; leave out '{name}'")
    if not path.exists():
        raise InputError(f"{display}: no such file; check the path")
    if suffix != ".zarr" and not path.is_file():
        raise InputError(f"{display}: is a folder, not a {suffix} file; check the path")

    try:
        if suffix in (".sgy", ".segy"):
            volume = read_segy(path, inline_byte=segy_inline_byte, crossline_byte=segy_crossline_byte,
                               domain=segy_domain, display=display)
        elif suffix == ".npy":
            volume = read_npy(path, display)
        elif suffix in (".tif", ".tiff"):
            volume = read_tiff(path, display)
        elif suffix == ".zarr":
            volume = read_zarr(path, name, display)
        elif suffix == ".mat":
            volume = read_mat(path, name, display)
        else:
            volume = read_envi(path, display)
    except PermissionError as exc:
        raise InputError(f"{display}: cannot open ({reason(exc)}); check the file's permissions") from exc
    check_samples(np.dtype(volume.data.dtype), display)
    return volume


def check_samples(dtype: np.dtype, display: str) -> None:
    """Refuse sample types the engine cannot segment: complex, records, text, objects.

    Raises
    ------
    InputError
        ``dtype`` is not boolean, integer or real.
    """
    if dtype.kind == "c":
        raise InputError(f"{display}: complex samples ({dtype}); give real values, such as the amplitude "
                         f"(numpy.abs) or the real part, in a file of their own")
    if dtype.kind not in "biuf":
        kind = "records with fields " + ", ".join(dtype.names) if dtype.names else f"samples of type {dtype}"
        raise InputError(f"{display}: {kind}; give an array of numbers (for records, one field as its own array)")


#: The largest whole number SEG-Y's 32-bit float samples hold exactly.
SEGY_MAX_EXACT_INTEGER = 2 ** 24


def check_writable(spec: str | Path, ndim: int, largest_integer: int | None = None) -> None:
    """Refuse, before any work, data that :func:`write_volume` could not write to ``spec``.

    Parameters
    ----------
    spec : str or Path
        The output file.
    ndim : int
        Axes of the data.
    largest_integer : int, optional
        Integer data (labels): the largest absolute value it will hold.

    Raises
    ------
    InputError
        Unknown extension, too few axes for TIFF, integers SEG-Y cannot store exactly.
    """
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise InputError(f"{path}: cannot write '{path.suffix}' files; supported: {', '.join(WRITE_SUFFIXES)}")
    if suffix in (".tif", ".tiff") and ndim < 2:
        raise InputError(f"{path}: TIFF holds images of two or more axes, not {ndim}D data; "
                         f"write .npy or .zarr instead")
    if suffix in (".sgy", ".segy") and largest_integer is not None and largest_integer > SEGY_MAX_EXACT_INTEGER:
        raise InputError(f"{path}: SEG-Y stores 32-bit floats, which hold whole numbers exactly only up to "
                         f"{SEGY_MAX_EXACT_INTEGER}, and these values reach {largest_integer}; write .npy, "
                         f".tif or .zarr instead")


def write_volume(spec: str | Path, data: np.ndarray, *, like: Volume | None = None,
                 overwrite: bool = False) -> Path:
    """Write an array, choosing the format from the file extension, atomically.

    The data go to a temporary file in the same folder, moved onto ``spec`` only once
    complete: a failure leaves no half file and an existing file untouched.

    Parameters
    ----------
    spec : str or Path
        ``.npy``, ``.tif``/``.tiff``, ``.zarr`` or ``.sgy``/``.segy``.
    data : array-like
        The values (a numpy array; zarr and dask arrays are written to zarr a slab at a
        time, and loaded whole for the other formats).
    like : Volume, optional
        The volume ``data`` belongs to (labels or a prediction of it). TIFF and zarr
        store its axes, scale, origin and units when it has as many axes as ``data``;
        SEG-Y copies the headers of its source file when it came from SEG-Y (``data``
        must then have its shape). ``.npy`` ignores it.
    overwrite : bool
        Replace an existing file or store.

    Returns
    -------
    Path
        The written path.

    Raises
    ------
    OutputExistsError
        ``spec`` exists and ``overwrite`` is false.
    InputError
        Unknown extension, missing folder, data the format cannot hold.
    GeosegError
        The write failed (disk full, no permission).
    """
    path = Path(spec)
    display = str(path)
    suffix = path.suffix.lower()
    ndim = len(np.shape(data)) if not hasattr(data, "ndim") else data.ndim
    check_writable(path, ndim)
    try:
        with atomic_output(path, overwrite=overwrite) as temporary:
            if suffix == ".npy":
                write_npy(temporary, data)
            elif suffix in (".tif", ".tiff"):
                write_tiff(temporary, data, like)
            elif suffix == ".zarr":
                write_zarr(temporary, data, like)
            else:
                write_segy(temporary, data, like, display)
    except GeosegError:
        raise
    except OSError as exc:
        raise GeosegError(f"{display}: cannot write ({reason(exc)}); check free space and permissions "
                          f"of the folder") from exc
    return path
