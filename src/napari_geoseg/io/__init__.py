"""Read and write volumes: SEG-Y, ENVI, MATLAB, NumPy, TIFF and zarr (numpy only, no torch).

>>> from napari_geoseg.io import read_volume, write_volume
>>> cube = read_volume("f3.sgy")                      # doctest: +SKIP
>>> write_volume("f3-labels.sgy", labels, like=cube)  # doctest: +SKIP

:func:`read_volume` picks the format from the extension and returns a :class:`Volume`
(data plus axes, scale, origin, units and, for SEG-Y, the geometry needed to write
back). :func:`write_volume` writes atomically and never replaces a file unless asked.
Errors meant for the user are :class:`~napari_geoseg.errors.InputError` and
:class:`~napari_geoseg.errors.OutputExistsError`, with one-line messages.

Format libraries (segyio, tifffile, zarr, scipy, h5py) are imported when a file of
their kind is read or written, so importing this package stays cheap.
"""

from .formats import READ_SUFFIXES, WRITE_SUFFIXES, read_volume, split_spec, write_volume
from .volume import SegyGeometry, Volume, default_axes

__all__ = ["Volume", "SegyGeometry", "default_axes", "read_volume", "write_volume", "split_spec",
           "READ_SUFFIXES", "WRITE_SUFFIXES"]
