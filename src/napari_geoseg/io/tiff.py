"""TIFF files (tifffile), with the axis description in the JSON image description."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._guard import unreadable
from .attributes import ATTRIBUTE_KEY, axes_from_attributes, axis_attributes
from .volume import Volume

__all__ = ["read_tiff", "write_tiff"]


def read_tiff(path: Path, display: str | None = None) -> Volume:
    """Read the first image series of a TIFF file.

    Parameters
    ----------
    path : Path
        The file.
    display : str, optional
        How to name the file in messages.

    Returns
    -------
    Volume
        The series as a numpy array; axes, scale, origin and units as written by
        :func:`write_tiff`, defaults for TIFFs from elsewhere.
    """
    import tifffile

    display = str(path) if display is None else display
    with unreadable(display, "TIFF file"), tifffile.TiffFile(path) as tif:
        data = tif.series[0].asarray()
        stored = {}
        for description in tif.shaped_metadata or ():
            stored = description.get(ATTRIBUTE_KEY, stored)
    return Volume(data, source=display, **axes_from_attributes(stored, data.ndim))


def write_tiff(path: Path, data: np.ndarray, like: Volume | None = None) -> None:
    """Write ``data`` as a multi-page TIFF, the last two axes forming each page.

    The axis description of ``like`` (see :func:`axis_attributes`) is stored in the
    image description so that :func:`read_tiff` gives it back.
    """
    import tifffile

    data = np.asarray(data)
    # minisblack: a last axis of 3 or 4 is data, not RGB(A) colour.
    tifffile.imwrite(path, data, photometric="minisblack",
                     metadata={ATTRIBUTE_KEY: axis_attributes(data.ndim, like)})
