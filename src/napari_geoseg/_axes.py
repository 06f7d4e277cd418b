"""How a napari layer's axes map onto the engine's, so sections show time running down.

The engine wants a seismic volume as ``(inline, crossline, sample)`` and a hyperspectral
cube as ``(rows, cols, bands)``. napari shows the last two axes of a layer as the rows and
columns of the screen, so layers made by this plugin store them in another order:
``(inline, sample, crossline)`` (a section with time or depth going down) and
``(bands, rows, cols)`` (a map, with a slider over bands). The permutation travels in
the layer's ``metadata["geoseg"]`` so that the widget and the writers can put arrays back
into the engine's order. Layers without it are taken to be in the engine's order already.

numpy only: this module is shared by the readers, writers and widget, and imports no Qt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

__all__ = ["GEOSEG_KEY", "layer_metadata", "engine_order", "to_engine", "to_layer"]

GEOSEG_KEY = "geoseg"


def layer_metadata(axes: Sequence[str], order: Optional[Sequence[int]] = None, **extra: Any) -> dict:
    """The ``metadata`` of a layer whose data is the engine's array permuted.

    Parameters
    ----------
    axes : sequence of str
        Axis names in the layer's order.
    order : sequence of int, optional
        ``engine = np.transpose(layer, order)``; identity when omitted.
    **extra
        Anything else the writers need (``source``, ``geometry``, ``mode``, ...).
    """
    order = tuple(range(len(axes))) if order is None else tuple(int(a) for a in order)
    if sorted(order) != list(range(len(axes))):
        raise ValueError(f"order {order} is not a permutation of {len(axes)} axes")
    return {GEOSEG_KEY: {"axes": list(axes), "order": list(order), **extra}}


def engine_order(metadata: Optional[dict], ndim: int) -> tuple[int, ...]:
    """The permutation from a layer's axes to the engine's (identity when unknown).

    Arrays with fewer axes than the permutation (the 2D labels of a hyperspectral cube)
    and arrays with other axis counts are left in their order.
    """
    info = (metadata or {}).get(GEOSEG_KEY) or {}
    order = info.get("order")
    if order is None or len(order) != ndim:
        return tuple(range(ndim))
    return tuple(order)


def to_engine(data, metadata: Optional[dict]):
    """The layer's ``data`` in the engine's axis order (a view, no copy)."""
    order = engine_order(metadata, data.ndim)
    return data if order == tuple(range(data.ndim)) else data.transpose(order)


def to_layer(data, metadata: Optional[dict], leading: int = 0):
    """An engine-ordered array back in the layer's axis order (a view).

    ``leading`` axes in front (such as the class axis of probabilities) stay in front.
    """
    order = engine_order(metadata, data.ndim - leading)
    if order == tuple(range(len(order))):
        return data
    inverse = np.argsort(order)
    return data.transpose((*range(leading), *(leading + int(a) for a in inverse)))
