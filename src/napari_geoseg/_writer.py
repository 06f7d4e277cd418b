"""napari writers: labels and image layers (predictions, probabilities) to SEG-Y, TIFF and NumPy.

Arrays go back into the engine's axis order (:func:`napari_geoseg._axes.to_engine`) and
are written by the engine's :func:`napari_geoseg.io.write_volume`, so a file saved from
napari is the file ``geoseg predict`` would write: SEG-Y with the headers and geometry of
the source cube, TIFF with the axes and scale, ``.npy`` in ``(inline, crossline, sample)``
or ``(rows, cols)`` order. Probabilities with a leading class axis are written with the
class axis last, as ``geoseg predict --probabilities`` does.

Overwriting
-----------
napari's save dialog asks before it hands an existing file name to a writer, and
``layer.save(path)`` is an explicit request for that path, so the writers replace an
existing file (atomically: a failed write leaves the old file as it was), as napari's
own writers do. They refuse one path only: the file the layer's image was read from
(``metadata["geoseg"]["source"]``), because saving labels over the seismic cube would
destroy the data they were painted on.

Errors are :class:`~napari_geoseg.errors.GeosegError` with one-line messages. They are
deliberately not ``ValueError``: napari treats a ``ValueError`` from a writer as "no
writer found" and would replace the message with a generic one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from ._axes import GEOSEG_KEY
from .errors import GeosegError, InputError, OutputExistsError
from .io import Volume, write_volume

__all__ = ["write_labels", "write_image", "layer_to_engine", "WRITER_SUFFIXES"]

#: File endings of the writer contributions.
WRITER_SUFFIXES = (".sgy", ".segy", ".tif", ".tiff", ".npy")


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Write a labels layer (painted labels or a prediction).

    Parameters
    ----------
    path : str
        The output: ``.sgy``/``.segy`` (needs a layer made from a SEG-Y image), ``.tif``/
        ``.tiff`` or ``.npy``.
    data : array-like
        The layer's data, in the layer's axis order.
    meta : dict
        The layer's attributes (``metadata``, ``name``, ...), as napari passes them.

    Returns
    -------
    list of str
        The written path.

    Raises
    ------
    GeosegError
        SEG-Y without a source geometry, shape not that of the source, the source file
        as output, a failed write; one line.
    """
    return _write_layer(path, data, meta)


def write_image(path: str, data: Any, meta: dict) -> list[str]:
    """Write an image layer: probabilities, uncertainty, or an image read by this plugin.

    Same parameters, result and errors as :func:`write_labels`. A leading class axis
    (``K`` probability maps in front of the image's axes) is moved last.
    """
    return _write_layer(path, data, meta)


def layer_to_engine(data: Any, metadata: Optional[dict]) -> Any:
    """The layer's array in the engine's axis order, extra leading axes moved last.

    Parameters
    ----------
    data : array-like
        Layer data; may have more axes in front than the permutation in ``metadata``
        describes (the class axis of probabilities).
    metadata : dict or None
        The layer's metadata, with ``"geoseg"`` as :func:`napari_geoseg._axes.layer_metadata`
        makes it; without it the data is taken to be in the engine's order.

    Returns
    -------
    array-like
        A view (transpose) of ``data``.
    """
    order = ((metadata or {}).get(GEOSEG_KEY) or {}).get("order")
    ndim = data.ndim
    if order is None or ndim < len(order):
        return data
    leading = ndim - len(order)
    axes = (*(leading + int(a) for a in order), *range(leading))
    return data if axes == tuple(range(ndim)) else data.transpose(axes)


def _write_layer(path: str, data: Any, meta: dict) -> list[str]:
    target = Path(path)
    metadata = meta.get("metadata") or {}
    info = metadata.get(GEOSEG_KEY) or {}
    name = meta.get("name") or "layer"
    if isinstance(data, (list, tuple)):
        raise GeosegError(f"{target}: layer '{name}' is multiscale; save its full-resolution level from "
                          f"Python (layer.data[0]) instead")
    _refuse_source(target, info)
    engine = layer_to_engine(data, metadata)
    like = _like_volume(engine, info)
    if target.suffix.lower() in (".sgy", ".segy") and (like is None or like.geometry is None):
        raise GeosegError(f"{target}: SEG-Y needs the geometry of a SEG-Y source and layer '{name}' has "
                          f"none; save it as .tif or .npy instead, or open the image from a SEG-Y file "
                          f"first")
    try:
        written = write_volume(target, engine, like=like, overwrite=True)
    except OutputExistsError:
        raise
    except InputError as err:
        raise GeosegError(str(err)) from err  # not a ValueError: see the module notes
    return [str(written)]


def _refuse_source(target: Path, info: dict) -> None:
    """Never write over the file the layer's image came from."""
    geometry = info.get("geometry")
    sources = [info.get("source"), getattr(geometry, "path", None)]
    resolved = target.resolve()
    for source in sources:
        if source and Path(source).resolve() == resolved:
            raise OutputExistsError(f"{target}: is the image this layer belongs to; saving over it would "
                                    f"destroy the data; choose another file name")


def _like_volume(engine: Any, info: dict) -> Optional[Volume]:
    """The source image's description for ``write_volume(like=...)``, without its data.

    TIFF stores the axes, scale and units from it; SEG-Y copies the source file's
    headers (``geometry``). None when the layer does not come from this plugin.
    """
    if not info:
        return None
    geometry = info.get("geometry")
    axes = list(info.get("engine_axes") or [])
    scale, translate, units = (list(info.get(k) or []) for k in ("scale", "translate", "units"))
    ndim = engine.ndim
    if len(axes) > ndim and info.get("mode") == "spectral":
        # The 2D labels of a cube: the map's (row, column) axes.
        axes, scale, translate, units = axes[:ndim], scale[:ndim], translate[:ndim], units[:ndim]
    if not (len(axes) == len(scale) == len(translate) == len(units) == ndim):
        axes = scale = translate = units = []
    placeholder = np.broadcast_to(np.zeros((), np.float32), engine.shape)  # shape only, no memory
    return Volume(placeholder, axes=tuple(axes), scale=tuple(scale), translate=tuple(translate),
                  units=tuple(units), source=str(info.get("source") or ""), geometry=geometry)
