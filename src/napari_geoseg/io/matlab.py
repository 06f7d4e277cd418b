"""MATLAB ``.mat`` files: v4/v5/v7 through scipy, v7.3 (HDF5) through h5py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ._guard import unreadable
from .volume import Volume

__all__ = ["read_mat", "list_mat_variables", "is_hdf5"]

#: MATLAB classes that hold numbers. ``logical`` can be read when named but is not
#: picked automatically: a mask beside the image is rarely what the user means.
NUMERIC_CLASSES = frozenset({"double", "single", "int8", "uint8", "int16", "uint16",
                             "int32", "uint32", "int64", "uint64"})
_READABLE_CLASSES = NUMERIC_CLASSES | {"logical"}

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class MatVariable:
    """A variable of a .mat file, as listed without loading it."""

    name: str
    shape: tuple[int, ...]
    matlab_class: str

    def __str__(self) -> str:
        return f"{self.name} ({'x'.join(map(str, self.shape))} {self.matlab_class})"

    @property
    def is_image(self) -> bool:
        """Numeric with at least two axes longer than one (MATLAB scalars are 1x1)."""
        return self.matlab_class in NUMERIC_CLASSES and sum(n > 1 for n in self.shape) >= 2


def is_hdf5(path: Path) -> bool:
    """Whether ``path`` is an HDF5 file, as MATLAB v7.3 files are.

    HDF5 puts its signature at byte 0 or, after a user block (MATLAB writes a
    512-byte one), at 512, 1024, 2048, ...; reading it ourselves avoids importing
    h5py for the common v5 files.
    """
    with open(path, "rb") as file:
        for offset in (0, 512, 1024, 2048, 4096):
            file.seek(offset)
            if file.read(8) == _HDF5_SIGNATURE:
                return True
    return False


def list_mat_variables(path: Path, display: str | None = None) -> list[MatVariable]:
    """The variables of a .mat file, in MATLAB's shape, without loading their data."""
    display = str(path) if display is None else display
    with unreadable(display, "MATLAB file"):
        if is_hdf5(path):
            import h5py

            with h5py.File(path, "r") as file:
                return [MatVariable(name, tuple(reversed(item.shape)), _h5_class(item))
                        for name, item in file.items()
                        if isinstance(item, h5py.Dataset) and not name.startswith("#")]
        import scipy.io

        return [MatVariable(name, tuple(shape), matlab_class)
                for name, shape, matlab_class in scipy.io.whosmat(str(path))]


def read_mat(path: Path, variable: str | None = None, display: str | None = None) -> Volume:
    """Read one numeric variable of a .mat file.

    Parameters
    ----------
    path : Path
        The file.
    variable : str, optional
        The variable to read. If left out, the only numeric variable with at least two
        axes longer than one is taken.
    display : str, optional
        How to name the file in messages.

    Returns
    -------
    Volume
        The array in MATLAB's shape and order (v7.3 arrays are transposed back from
        HDF5's reversed order); axes ``("axis0", ...)``, ``metadata["variable"]``.

    Raises
    ------
    InputError
        No such variable, not a numeric array, several candidates and none chosen.
    """
    display = str(path) if display is None else display
    variables = list_mat_variables(path, display)
    listing = ", ".join(map(str, variables)) or "no variables"
    if variable is None:
        candidates = [v for v in variables if v.is_image]
        if len(candidates) != 1:
            what = "several arrays" if candidates else "no numeric array of two or more axes"
            raise InputError(f"{display}: holds {what} ({listing}); choose one as {display}:NAME")
        chosen = candidates[0]
    else:
        found = [v for v in variables if v.name == variable]
        if not found:
            raise InputError(f"{display}: no variable '{variable}' (the file holds {listing}); "
                             f"choose one as {display}:NAME")
        chosen = found[0]
        if chosen.matlab_class not in _READABLE_CLASSES:
            raise InputError(f"{display}: variable {chosen} is not a numeric array; choose another "
                             f"({listing})")
    with unreadable(display, "MATLAB file"):
        data = (_load_h5(path, chosen.name) if is_hdf5(path)
                else _load_v5(path, chosen.name, chosen.matlab_class))
    return Volume(data, source=display, metadata={"variable": chosen.name})


def _load_v5(path: Path, name: str, matlab_class: str) -> np.ndarray:
    import scipy.io

    data = np.asarray(scipy.io.loadmat(str(path), variable_names=[name])[name])
    return data.astype(bool) if matlab_class == "logical" else data  # scipy gives uint8


def _load_h5(path: Path, name: str) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as file:
        dataset = file[name]
        matlab_class = _h5_class(dataset)
        data = dataset[()]
    if data.dtype.names and {"real", "imag"} <= set(data.dtype.names):
        data = data["real"] + 1j * data["imag"]  # how MATLAB stores complex arrays
    if matlab_class == "logical":
        data = data.astype(bool)
    # MATLAB is column-major: HDF5 sees the axes reversed.
    return np.asarray(data).T


def _h5_class(dataset) -> str:
    value = dataset.attrs.get("MATLAB_class", b"")
    return value.decode() if isinstance(value, bytes) else str(value)
