"""napari readers for SEG-Y cubes, ENVI and MATLAB hyperspectral cubes, and zarr stores.

The files are read by the engine's :func:`napari_geoseg.io.read_volume` (there is no second
reader here); this module only turns the :class:`~napari_geoseg.io.Volume` into an image
layer shown as interpreters expect (see :mod:`napari_geoseg._axes`):

- seismic ``(inline, crossline, sample)`` becomes ``(inline, sample, crossline)``: a
  section with time or depth running down the screen and a slider over inlines; scale
  and translate put world coordinates in line numbers and ms (or m / ft);
- hyperspectral ``(rows, cols, bands)`` becomes ``(bands, rows, cols)``: a map with a
  slider over bands.

zarr stores and SEG-Y files stay lazy (dask views of the store, or of the SEG-Y traces read
on demand). Nothing here imports torch or Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ._axes import layer_metadata
from .errors import InputError
from .io import Volume, default_axes, read_volume
from .io.segy import SegyArray
from .io.zarr_store import CheckedZarrArray
from .train.layout import MODES, infer_mode

__all__ = ["get_reader", "read_layers", "image_layer_data", "labels_layer_data", "volume_mode",
           "contrast_limits", "READER_SUFFIXES", "MODES"]

#: File endings this plugin's reader contribution opens (napari's builtins read .npy and .tif).
READER_SUFFIXES = (".sgy", ".segy", ".hdr", ".mat", ".zarr")


#: Layer order -> engine order (``engine = np.transpose(layer, order)``) for each mode.
_VOLUME_ORDER = (0, 2, 1)    # layer (inline, sample, crossline) -> engine (inline, crossline, sample)
_SPECTRAL_ORDER = (1, 2, 0)  # layer (band, row, column) -> engine (row, column, band)

#: The engine's axis names in each mode, for files that do not name their axes.
_MODE_AXES = {"volume": ("inline", "crossline", "sample"), "spectral": ("row", "column", "band")}

#: Axis names that mark the last axis of a cube as spectral.
_BAND_NAMES = frozenset({"band", "bands", "wavelength", "wavelengths", "spectral", "channel", "channels"})

#: At most this many values are read to choose contrast limits, so that large and lazy
#: volumes are not loaded whole.
_CONTRAST_SAMPLE = 2_000_000

LayerData = tuple[Any, dict, str]


def get_reader(path: str | list[str]) -> Optional[Callable[[str | list[str]], list[LayerData]]]:
    """The reader contribution: a function that reads ``path``, or None if this plugin cannot.

    Parameters
    ----------
    path : str or list of str
        What napari asks about; a list when several files are opened at once.

    Returns
    -------
    callable or None
        :func:`read_layers` for SEG-Y (.sgy, .segy), ENVI (.hdr), MATLAB (.mat) and zarr
        (.zarr folders); None otherwise, so that napari tries other readers.
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths or any(Path(p).suffix.lower() not in READER_SUFFIXES for p in paths):
        return None
    if any(_foreign_header(Path(p)) for p in paths):
        return None
    return read_layers


def _foreign_header(path: Path) -> bool:
    """A ``.hdr`` file that is not an ENVI header (Analyze 7.5 medical images use .hdr too)."""
    if path.suffix.lower() != ".hdr" or not path.is_file():
        return False
    try:
        with open(path, "rb") as file:
            start = file.read(64).lstrip(b"\xef\xbb\xbf").lstrip()
    except OSError:
        return False  # read_layers will say what is wrong with it
    return not start.upper().startswith(b"ENVI")


def read_layers(path: str | list[str]) -> list[LayerData]:
    """Read one file (or several) as image layer data tuples.

    Parameters
    ----------
    path : str or list of str
        A SEG-Y, ENVI header, MATLAB or zarr path; a .mat file holding several 3D numeric
        variables gives the largest (the layer's ``metadata["geoseg"]["variable_note"]``
        says so).

    Returns
    -------
    list of (data, kwargs, "image")

    Raises
    ------
    InputError
        A file of these formats that cannot be read: missing, corrupt, no usable
        variable, SEG-Y geometry not found. The message is one line.
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    return [_read_one(str(p)) for p in paths]


def _read_one(path: str) -> LayerData:
    extra: dict[str, Any] = {}
    spec = path
    if Path(path).suffix.lower() == ".mat" and Path(path).is_file():
        variable, note = _choose_mat_variable(Path(path))
        if variable is not None:
            spec = f"{path}:{variable}"
            extra["variable_note"] = note
    volume = read_volume(spec)
    return image_layer_data(volume, **extra)


def _choose_mat_variable(path: Path) -> tuple[Optional[str], str]:
    """The largest 3D numeric variable of a .mat file, and a note for the layer's metadata.

    With at most one 3D candidate, or none, returns ``(None, "")`` and leaves the choice
    to :func:`~napari_geoseg.io.read_volume`, which takes the only image and otherwise
    explains which variables there are.
    """
    from .io.matlab import list_mat_variables

    variables = list_mat_variables(path)
    cubes = [v for v in variables if v.is_image and len(v.shape) == 3 and min(v.shape) > 1]
    if len(cubes) < 2:
        return None, ""
    largest = max(cubes, key=lambda v: int(np.prod(v.shape, dtype=np.int64)))
    others = ", ".join(str(v) for v in cubes if v is not largest)
    note = (f"{path.name} holds several 3D arrays; showing the largest, {largest} (also: {others}); "
            f"open another as {path.name}:NAME with 'geoseg view' or the engine")
    return largest.name, note


def volume_mode(volume: Volume, labels_ndim: Optional[int] = None) -> str:
    """How the engine should treat ``volume``: ``"volume"``, ``"spectral"`` or ``"image"``
    (:func:`~napari_geoseg.train.layout.infer_mode`, told what the file says).

    Parameters
    ----------
    volume : Volume
        As read by :func:`~napari_geoseg.io.read_volume`.
    labels_ndim : int, optional
        The number of axes of the labels that go with it, when known: a 3D image with 2D
        labels is a hyperspectral cube, as on the command line.

    Returns
    -------
    str
        ``"image"`` for 2D data; ``"volume"`` for SEG-Y and other 3D data, and for any 3D
        data with labels of its whole shape; ``"spectral"`` for ENVI and MATLAB cubes,
        cubes whose last axis is named like a band axis, and 3D images with 2D labels.
    """
    if volume.geometry is not None:
        bands: Optional[bool] = False  # a survey: the last axis is its samples
    elif (volume.axes[-1].lower() in _BAND_NAMES or Path(volume.source).suffix.lower() in (".hdr", ".mat")
          or labels_ndim == 2):
        bands = True  # with 2D labels too: this reader's 3-axis files are cubes, not colour pictures
    else:
        bands = None
    labels_shape = tuple(volume.shape[:labels_ndim]) if labels_ndim else None
    return infer_mode(tuple(volume.shape), labels_shape, bands=bands, name=volume.source or "the image")


def image_layer_data(volume: Volume, mode: Optional[str] = None, name: Optional[str] = None,
                     **extra: Any) -> LayerData:
    """An image layer data tuple for ``volume``, permuted for display (see :mod:`._axes`).

    Parameters
    ----------
    volume : Volume
        The image in the engine's axis order.
    mode : {"volume", "spectral", "image"}, optional
        Default: :func:`volume_mode`.
    name : str, optional
        Layer name; default the file's name.
    **extra
        More entries for ``metadata["geoseg"]``.

    Returns
    -------
    (data, kwargs, "image")
        ``data`` a view of the volume's array (a lazy dask array for zarr stores and
        SEG-Y files); kwargs with ``name``, ``scale``, ``translate``, ``axis_labels``,
        ``units``, ``colormap="gray"``, ``contrast_limits`` and ``metadata``
        (``"geoseg"``: axes, order, mode, source, geometry, scale, units, ``transform``
        (SEG-Y survey transform, ``(x, y) = A @ (inline, crossline, 1)``, as a 2x3 list
        of floats, or None), and what the file said).
    """
    mode = volume_mode(volume) if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if mode == "image" and volume.ndim != 2 or mode != "image" and volume.ndim != 3:
        raise InputError(f"{volume.source or 'the image'}: a {mode} needs {2 if mode == 'image' else 3} axes, "
                         f"not {volume.ndim}")
    order = {"volume": _VOLUME_ORDER, "spectral": _SPECTRAL_ORDER}.get(mode, (0, 1))
    to_layer_axes = tuple(int(a) for a in np.argsort(order))  # layer = engine.transpose(this)

    data = _lazy(volume.data)
    layer = data if to_layer_axes == tuple(range(data.ndim)) else data.transpose(to_layer_axes)

    def permuted(values):
        return tuple(values[a] for a in to_layer_axes)

    # A SEG-Y section's vertical axis is named for its domain ("time" or "depth"); files
    # that do not name their axes get the engine's names for the mode.
    domain = volume.geometry.domain if volume.geometry is not None else None
    engine_axes = volume.axes
    if engine_axes == default_axes(volume.ndim):
        engine_axes = _MODE_AXES.get(mode, engine_axes)
    axes = permuted(tuple(domain if (a == "sample" and domain) else a for a in engine_axes))
    units = tuple(u or "pixel" for u in permuted(volume.units))
    info = {"mode": mode, "source": volume.source, "geometry": volume.geometry,
            "transform": _transform_list(volume.geometry),
            "scale": list(volume.scale), "translate": list(volume.translate), "units": list(volume.units),
            # The engine's axis names, for training and the writers (the layer's are in "axes").
            "engine_axes": list(engine_axes)}
    info.update(volume.metadata)
    info.update(extra)
    kwargs = {
        "name": name or Path(volume.source).name or "image",
        "scale": permuted(volume.scale),
        "translate": permuted(volume.translate),
        "axis_labels": axes,
        "units": units,
        "colormap": "gray",
        "contrast_limits": contrast_limits(layer, symmetric=(mode == "volume")),
        "metadata": layer_metadata(axes, order, **info),
    }
    return layer, kwargs, "image"


def labels_layer_data(labels, image: LayerData, name: str, **extra: Any) -> LayerData:
    """A labels layer data tuple for engine-ordered ``labels`` that go with ``image``.

    Parameters
    ----------
    labels : array-like
        Whole numbers (0 = unlabelled) in the engine's order: the image's shape, or
        ``(rows, cols)`` for a hyperspectral cube.
    image : (data, kwargs, "image")
        The image layer data tuple, from :func:`image_layer_data`.
    name : str
        Layer name.
    **extra
        More entries for ``metadata["geoseg"]`` (such as ``class_names``).

    Returns
    -------
    (data, kwargs, "labels")
        ``data`` permuted like the image (a 2D map of a cube is left as it is), with the
        image's scale, translate, axis labels, units and ``geoseg`` metadata.

    Raises
    ------
    InputError
        ``labels`` do not have the image's shape (or its map's, for a cube).
    """
    from ._axes import to_layer

    image_data, image_kwargs, _ = image
    info = dict(image_kwargs["metadata"]["geoseg"])
    engine_shape = _engine_shape(image_data.shape, info["order"])
    expected = [engine_shape]
    if info.get("mode") == "spectral":
        expected.append(engine_shape[:2])
    shape = tuple(np.shape(labels))
    if shape not in expected:
        wanted = " or ".join("x".join(map(str, s)) for s in expected)
        raise InputError(f"{name}: labels of shape {'x'.join(map(str, shape))} do not fit the image "
                         f"{image_kwargs['name']} ({wanted} expected); give the labels painted on this image")
    dtype = np.dtype(getattr(labels, "dtype", np.asarray(labels).dtype))
    if dtype.kind not in "biu":
        raise InputError(f"{name}: labels must be whole numbers (0 = unlabelled), not {dtype}; "
                         f"save them as integers")
    metadata = {"geoseg": {**info, **extra}}
    data = to_layer(_lazy(labels), metadata)
    ndim = len(shape)
    kwargs = {"name": name, "metadata": metadata}
    for key in ("scale", "translate", "axis_labels", "units"):
        kwargs[key] = tuple(image_kwargs[key])[-ndim:]
    return data, kwargs, "labels"


def _engine_shape(layer_shape: tuple[int, ...], order) -> tuple[int, ...]:
    return tuple(layer_shape[int(a)] for a in order)


def _transform_list(geometry) -> Optional[list[list[float]]]:
    """A SEG-Y geometry's survey transform as plain lists (metadata must serialise), or None."""
    transform = getattr(geometry, "transform", None)
    return None if transform is None else [[float(v) for v in row] for row in np.asarray(transform)]


def _lazy(data):
    """numpy and memory-mapped arrays as they are; zarr arrays and SEG-Y traces read on
    demand wrapped in dask, still lazy."""
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, SegyArray):
        try:
            return data.to_dask()
        except ImportError:  # napari brings dask; without it, a plain array
            return np.asarray(data)
    if isinstance(data, CheckedZarrArray):
        import dask.array

        # Read through the check, so a damaged chunk is named, not a codec's traceback.
        return dask.array.from_array(data, chunks=data.chunks, asarray=True, fancy=False)
    if type(data).__module__.split(".")[0] == "zarr":
        import dask.array

        return dask.array.from_zarr(data)
    return data


def contrast_limits(data, symmetric: bool = True) -> tuple[float, float]:
    """Contrast limits from robust percentiles of (a sample of) ``data``.

    Parameters
    ----------
    data : array-like
        The layer's data; for large or lazy arrays only a few evenly spaced slices along
        the first axis are read.
    symmetric : bool
        For seismic amplitudes, which swing around zero: ``(-a, a)`` with ``a`` the
        99.5th percentile of ``|x|``, when the data have values of both signs (a
        velocity cube does not). Otherwise the 0.5th and 99.5th percentiles.

    Returns
    -------
    (low, high)
        With ``low < high``; ``(0, 1)`` when there is no finite value.
    """
    sample = np.asarray(_sample(data), dtype=np.float64).ravel()
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(sample, (0.5, 99.5)))
    if symmetric and low < 0 < high:
        high = float(np.percentile(np.abs(sample), 99.5))
        low = -high
    if not high > low:
        low, high = float(sample.min()), float(sample.max())
        if not high > low:
            low, high = low - 0.5, high + 0.5
    return low, high


def _sample(data):
    """At most about :data:`_CONTRAST_SAMPLE` values of ``data``, read slice by slice."""
    shape = tuple(data.shape)
    size = int(np.prod(shape, dtype=np.int64))
    if size <= _CONTRAST_SAMPLE or len(shape) < 2:
        return np.asarray(data)
    per_slice = size // shape[0]
    n_slices = max(1, min(shape[0], _CONTRAST_SAMPLE // max(per_slice, 1)))
    indices = np.unique(np.linspace(0, shape[0] - 1, n_slices).round().astype(int))
    slices = [np.asarray(data[int(i)]) for i in indices]
    sample = np.stack(slices)
    if sample.size > _CONTRAST_SAMPLE:  # one slice is already large: thin it out
        step = int(np.ceil(sample.size / _CONTRAST_SAMPLE))
        sample = sample.ravel()[::step]
    return sample
