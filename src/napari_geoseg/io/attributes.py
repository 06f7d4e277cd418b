"""The axis description (names, scale, origin, units) stored inside TIFF and zarr files."""

from __future__ import annotations

from typing import Any

from .volume import Volume, default_axes

__all__ = ["ATTRIBUTE_KEY", "axis_attributes", "axes_from_attributes"]

#: Key under which the description is stored: in the TIFF's JSON image description
#: (tifffile "shaped" metadata) and in the zarr array's attributes.
ATTRIBUTE_KEY = "napari_geoseg"


def axis_attributes(ndim: int, like: Volume | None = None) -> dict[str, list]:
    """JSON-ready axis description for data of ``ndim`` axes written after ``like``.

    Parameters
    ----------
    ndim : int
        Number of axes of the data being written.
    like : Volume, optional
        Volume whose axes the data shares (labels painted on it, a prediction); used
        only when it has the same number of axes.

    Returns
    -------
    dict
        ``{"axes": [...], "scale": [...], "translate": [...], "units": [...]}``.
    """
    if like is not None and like.ndim == ndim:
        return {"axes": list(like.axes), "scale": list(like.scale),
                "translate": list(like.translate), "units": list(like.units)}
    return {"axes": list(default_axes(ndim)), "scale": [1.0] * ndim,
            "translate": [0.0] * ndim, "units": [""] * ndim}


def axes_from_attributes(attributes: Any, ndim: int) -> dict[str, tuple]:
    """Keyword arguments for :class:`Volume` from a stored description.

    Entries that are missing, malformed or of the wrong length are left out (the
    Volume then uses its defaults), because files written by other programs may
    carry a key of the same name with other content.

    Parameters
    ----------
    attributes : dict or any
        What was stored under :data:`ATTRIBUTE_KEY`.
    ndim : int
        Number of axes of the data.

    Returns
    -------
    dict
        Some of ``axes``, ``scale``, ``translate``, ``units``.
    """
    if not isinstance(attributes, dict):
        return {}
    kwargs = {}
    for name, kind in (("axes", str), ("scale", float), ("translate", float), ("units", str)):
        values = attributes.get(name)
        if isinstance(values, (list, tuple)) and len(values) == ndim:
            try:
                kwargs[name] = tuple(kind(v) for v in values)
            except (TypeError, ValueError):
                continue
    return kwargs
