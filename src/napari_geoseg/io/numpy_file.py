"""NumPy ``.npy`` files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ._guard import unreadable
from .volume import Volume

__all__ = ["read_npy", "write_npy"]

_MAGIC = b"\x93NUMPY"


def read_npy(path: Path, display: str | None = None) -> Volume:
    """Read a ``.npy`` file, memory-mapped so that a large volume is not loaded on open.

    Parameters
    ----------
    path : Path
        The file.
    display : str, optional
        How to name the file in messages.

    Returns
    -------
    Volume
        ``data`` a read-only ``np.memmap`` (a plain array for files that cannot be
        mapped, such as empty ones); axes ``("axis0", ...)``, unit scale.
    """
    display = str(path) if display is None else display
    # np.load takes anything without the NumPy magic for a pickle and says so, which
    # would send the user after pickles instead of a broken file.
    with open(path, "rb") as file:
        if file.read(6) != _MAGIC:
            raise InputError(f"{display}: not a NumPy .npy file (no NumPy header); check the file or its "
                             f"extension")
    with unreadable(display, ".npy file"):
        try:
            data = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError:
            # Mapping fails for empty arrays too; a plain load tells those apart from
            # truncated files, which fail again and are reported.
            data = np.load(path, allow_pickle=False)
    return Volume(data, source=display)


def write_npy(path: Path, data: np.ndarray) -> None:
    """Write ``data`` to ``path`` as ``.npy`` (no pickles)."""
    # Through a file object, because np.save appends ".npy" to names lacking it.
    with open(path, "wb") as file:
        np.save(file, np.asarray(data), allow_pickle=False)
