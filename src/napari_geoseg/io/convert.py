"""Any readable volume into a chunked zarr store, streaming; SEG-Y geometry kept as attributes."""

from __future__ import annotations

import base64
import itertools
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .atomic import atomic_output
from .attributes import ATTRIBUTE_KEY, axis_attributes
from .volume import SegyGeometry, Volume

__all__ = ["convert_to_zarr", "geometry_attributes", "geometry_from_attributes", "GEOMETRY_KEY"]

#: Attribute under which a store keeps the SEG-Y geometry of its source.
GEOMETRY_KEY = "napari_geoseg_segy"

_SCALARS = ("path", "inline_byte", "crossline_byte", "n_samples", "sample_interval", "sample_unit", "first_sample",
            "domain", "endian", "sample_format", "n_duplicates", "transform_residual", "coordinate_unit")


def geometry_attributes(geometry: SegyGeometry) -> dict[str, Any]:
    """A SEG-Y geometry as JSON-ready attributes (the present traces bit-packed and compressed)."""
    values: dict[str, Any] = {name: getattr(geometry, name) for name in _SCALARS}
    values["inlines"] = np.asarray(geometry.inlines).tolist()
    values["crosslines"] = np.asarray(geometry.crosslines).tolist()
    values["transform"] = None if geometry.transform is None else np.asarray(geometry.transform).tolist()
    values["coordinate_bytes"] = list(geometry.coordinate_bytes) if geometry.coordinate_bytes else None
    if geometry.trace_index is not None:
        packed = np.packbits(np.asarray(geometry.present, bool).ravel())
        values["present"] = base64.b64encode(zlib.compress(packed.tobytes())).decode("ascii")
    return {key: (value.item() if isinstance(value, np.generic) else value) for key, value in values.items()}


def geometry_from_attributes(values: Optional[dict]) -> Optional[SegyGeometry]:
    """The geometry stored by :func:`geometry_attributes`, or None if absent or malformed."""
    if not isinstance(values, dict):
        return None
    try:
        inlines, crosslines = np.asarray(values["inlines"]), np.asarray(values["crosslines"])
        trace_index = None
        if values.get("present"):
            bits = np.frombuffer(zlib.decompress(base64.b64decode(values["present"])), np.uint8)
            present = np.unpackbits(bits)[:inlines.size * crosslines.size].astype(bool)
            # The traces of the source in grid order: enough to tell present from missing.
            trace_index = np.where(present, np.cumsum(present) - 1, -1).reshape(inlines.size, crosslines.size)
        transform = values.get("transform")
        coordinate_bytes = values.get("coordinate_bytes")
        return SegyGeometry(**{name: values[name] for name in _SCALARS if name in values},
                            inlines=inlines, crosslines=crosslines, trace_index=trace_index,
                            transform=None if transform is None else np.asarray(transform, float),
                            coordinate_bytes=tuple(coordinate_bytes) if coordinate_bytes else None)
    except (KeyError, TypeError, ValueError, zlib.error):
        return None


def convert_to_zarr(volume: Volume, path: str | Path, chunks: int = 128, overwrite: bool = False,
                    progress: Optional[Callable[[int, int], None]] = None) -> Path:
    """Write ``volume`` into a zarr store, one chunk column at a time.

    Memory stays in proportion to a column of chunks (``chunks`` x ``chunks`` traces,
    whole along the last axis for 3D data), whatever the size of the volume: the source
    is read lazily (SEG-Y traces, zarr chunks, memory-mapped ``.npy``). The axes, scale,
    translate and units go into the attributes, and the SEG-Y geometry (line numbers,
    present traces, survey transform) too. The store is written beside its final name
    and moved there at the end, so an interrupted conversion leaves nothing half-made.

    Returns the path of the store.
    """
    import zarr

    data = volume.data
    shape = tuple(int(s) for s in data.shape)
    dtype = np.dtype(data.dtype)
    grid = tuple(min(chunks, s) for s in shape)
    attributes: dict[str, Any] = {ATTRIBUTE_KEY: axis_attributes(len(shape), volume)}
    if volume.geometry is not None:
        attributes[GEOMETRY_KEY] = geometry_attributes(volume.geometry)
    path = Path(path)
    # Columns: chunk boxes over the first two axes, whole along the others.
    lateral = [range(0, s, c) for s, c in zip(shape[:2], grid[:2])]
    columns = list(itertools.product(*lateral))
    with atomic_output(path, overwrite=overwrite) as target:
        fill = np.nan if dtype.kind == "f" else 0
        array = zarr.open_array(store=str(target), mode="w", shape=shape, chunks=grid, dtype=dtype, fill_value=fill)
        array.attrs.update(attributes)
        for done, corner in enumerate(columns, start=1):
            box = tuple(slice(c, min(c + g, s)) for c, g, s in zip(corner, grid, shape))
            array[box] = np.asarray(data[box])
            if progress is not None:
                progress(done, len(columns))
    return path
