"""zarr stores, read lazily: slicing the returned array reads only the chunks it needs."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from ..errors import InputError
from ._guard import reason, unreadable
from .attributes import ATTRIBUTE_KEY, axes_from_attributes, axis_attributes
from .volume import Volume

__all__ = ["read_zarr", "write_zarr", "CheckedZarrArray"]

#: Bytes converted from the source per step while writing, so that a lazy source is
#: never loaded whole.
_WRITE_STEP_BYTES = 64 * 2**20


class CheckedZarrArray:
    """A zarr array whose failed reads name the damaged chunk and the store.

    Slicing reads only the chunks needed, as zarr does; a chunk that cannot be decoded
    (truncated, overwritten, a codec error) becomes an :class:`InputError` saying which
    chunk of which store, instead of a codec's traceback. Everything else is the zarr
    array's (``shape``, ``dtype``, ``chunks``, ``attrs``, ...).
    """

    def __init__(self, array, display: str) -> None:
        self.array, self.display = array, display

    def __getattr__(self, name: str):
        return getattr(self.array, name)

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, key):
        try:
            return self.array[key]
        except (IndexError, TypeError):  # a bad key is the caller's bug, not the store's
            raise
        except Exception as exc:
            raise InputError(f"{self.display}: chunk {self._damaged_chunk(key)} cannot be read ({reason(exc)}); "
                             f"the store is damaged: write it again from its source") from exc

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        data = self[...]
        return data if dtype is None else data.astype(dtype, copy=False)

    def _damaged_chunk(self, key) -> str:
        """The grid index of the first chunk of ``key`` that fails to read (or of them all)."""
        key = key if isinstance(key, tuple) else (key,)
        key = tuple(k for k in key if k is not Ellipsis)
        key += (slice(None),) * (self.array.ndim - len(key))
        ranges = []
        for k, size, chunk in zip(key, self.array.shape, self.array.chunks):
            start, stop = (k, k + 1) if isinstance(k, (int, np.integer)) else k.indices(size)[:2]
            ranges.append(range(start // chunk, max(stop - 1, start) // chunk + 1))
        for index in itertools.product(*ranges):
            box = tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, self.array.chunks))
            try:
                self.array[box]
            except Exception:  # noqa: BLE001 - any failure marks the damaged chunk
                return str(index)
        return "in " + str(key)


def read_zarr(path: Path, array: str | None = None, display: str | None = None) -> Volume:
    """Open an array of a zarr store without loading it.

    Parameters
    ----------
    path : Path
        The store (a folder).
    array : str, optional
        Path of the array inside a group store (``store.zarr:ARRAY``). May be left out
        when the store is a single array or a group with exactly one array.
    display : str, optional
        How to name the store in messages.

    Returns
    -------
    Volume
        ``data`` the ``zarr.Array``; axes from the attributes written by
        :func:`write_zarr`, else zarr v3 dimension names or xarray's
        ``_ARRAY_DIMENSIONS``, else ``("axis0", ...)``.

    Raises
    ------
    InputError
        Not a zarr store; a group with several arrays and none chosen; no such array.
    """
    import zarr

    display = str(path) if display is None else display
    with unreadable(display, "zarr store"):
        node = zarr.open(str(path), mode="r")
    if isinstance(node, zarr.Group):
        names = _array_paths(node)
        if array is None and "amplitude" in names and len(names) > 1:
            array = "amplitude"  # a seismic store of TGS's MDIO: its samples, beside coordinate arrays
        if array is None:
            if len(names) != 1:
                listing = ", ".join(names) if names else "no arrays"
                raise InputError(f"{display}: a zarr group holding {listing}; "
                                 f"choose one array as {display}:NAME")
            array = names[0]
        elif array.strip("/") not in names:
            listing = ", ".join(names) if names else "no arrays"
            raise InputError(f"{display}: no array '{array}' in this zarr group (it holds {listing}); "
                             f"choose one as {display}:NAME")
        data = node[array.strip("/")]
    elif array is not None:
        raise InputError(f"{display}: is a single zarr array, not a group; leave out ':{array}'")
    else:
        data = node
    attributes = dict(data.attrs)
    names = _dimension_names(data, attributes)
    kwargs = {"axes": names} if names else {}
    kwargs.update(axes_from_attributes(attributes.get(ATTRIBUTE_KEY), data.ndim))
    metadata = {"variable": array} if array is not None else {}
    from .convert import GEOMETRY_KEY, geometry_from_attributes  # here: convert imports this module's peers

    geometry = geometry_from_attributes(attributes.get(GEOMETRY_KEY))
    if geometry is not None:
        metadata["domain"] = geometry.domain
    elif isinstance(node, zarr.Group) and names_of_axes_are_coordinates(node, kwargs.get("axes"), data.ndim):
        kwargs.update(_coordinates(node, kwargs["axes"]))
    return Volume(CheckedZarrArray(data, display), source=display, metadata=metadata, geometry=geometry, **kwargs)


def names_of_axes_are_coordinates(group, axes, ndim: int) -> bool:
    """Whether a group holds a 1D array named after each axis (MDIO, xarray): coordinates."""
    if not axes or len(axes) != ndim:
        return False
    return any(name in group and getattr(group[name], "ndim", 0) == 1 for name in axes)


def _coordinates(group, axes) -> dict[str, tuple]:
    """Scale and translate from evenly spaced 1D coordinate arrays named after the axes."""
    scale, translate = [], []
    for name in axes:
        values = np.asarray(group[name][:], float) if name in group and group[name].ndim == 1 else None
        steps = np.unique(np.diff(values)) if values is not None and values.size > 1 else None
        if steps is not None and steps.size == 1 and steps[0] != 0:
            scale.append(float(steps[0]))
            translate.append(float(values[0]))
        else:
            scale.append(1.0)
            translate.append(0.0)
    return {"scale": tuple(scale), "translate": tuple(translate)}


def write_zarr(path: Path, data, like: Volume | None = None) -> None:
    """Write ``data`` (numpy, zarr or dask array) as a zarr array, a slab at a time.

    The axis description of ``like`` is stored in the attributes under
    ``"napari_geoseg"``.
    """
    import zarr

    shape = tuple(data.shape)
    dtype = np.dtype(data.dtype)
    target = zarr.open_array(store=str(path), mode="w", shape=shape, dtype=dtype)
    target.attrs.update({ATTRIBUTE_KEY: axis_attributes(len(shape), like)})
    if len(shape) == 0:
        target[...] = np.asarray(data)
        return
    row_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)
    step = max(1, _WRITE_STEP_BYTES // row_bytes)
    for start in range(0, shape[0], step):
        target[start:start + step] = np.asarray(data[start:start + step])


def _array_paths(group, prefix: str = "") -> list[str]:
    """Paths of all arrays in ``group`` and its subgroups, sorted."""
    names = [prefix + name for name, _ in group.arrays()]
    for name, subgroup in group.groups():
        names += _array_paths(subgroup, prefix + name + "/")
    return sorted(names)


def _dimension_names(data, attributes: dict) -> tuple[str, ...] | None:
    """Axis names stored by zarr v3 or by xarray, if complete."""
    names = getattr(getattr(data, "metadata", None), "dimension_names", None)
    if not names:
        names = attributes.get("_ARRAY_DIMENSIONS")
    if names and len(names) == data.ndim and all(isinstance(n, str) and n for n in names):
        return tuple(names)
    return None
