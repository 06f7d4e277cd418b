"""Write outputs so that a failure never leaves half a file or destroys the old one."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError, OutputExistsError

__all__ = ["atomic_output", "check_output_path", "check_outputs"]


def check_output_path(path: Path, *, overwrite: bool, display: str | None = None) -> None:
    """Refuse an output path that exists (unless ``overwrite``) or has no folder.

    Parameters
    ----------
    path : Path
        Where the output will go.
    overwrite : bool
        Whether an existing file or folder at ``path`` may be replaced.
    display : str, optional
        How to name the path in messages (default: ``path`` as given).

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is false.
    InputError
        The folder that should hold ``path`` does not exist.
    """
    display = str(path) if display is None else display
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{display}: already exists; choose another name or allow replacing it",
                                option="overwrite")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise InputError(f"{display}: the folder {parent} does not exist; "
                         f"create it or choose another output path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{display}: the folder {parent} is not writable; choose another output path")


def check_outputs(paths, *, overwrite: bool) -> None:
    """:func:`check_output_path` for each path given (None skipped), and no path twice.

    Run before any long work, so that a run never ends in a refused write.

    Raises
    ------
    InputError
        Two outputs are the same file, or a folder is missing or not writable.
    OutputExistsError
        An output exists and ``overwrite`` is false.
    """
    seen: dict[Path, str] = {}
    for path in paths:
        if not path:
            continue
        key = Path(path).expanduser().resolve()
        if key in seen:
            raise InputError(f"{path}: given for two outputs ({seen[key]} and {path}); give each output "
                             f"its own path")
        seen[key] = str(path)
        check_output_path(Path(path), overwrite=overwrite)


@contextmanager
def atomic_output(path: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Give a temporary path beside ``path`` to write to; move it into place on success.

    The temporary path lies in the same folder, so the final rename stays on one file
    system and is atomic for files. It keeps the suffix of ``path`` because some
    writers choose the format from it. If the block raises, the temporary file or
    folder is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : Path
        The final output (a file, or a folder for zarr stores).
    overwrite : bool
        Whether an existing ``path`` may be replaced (checked again before the move).

    Yields
    ------
    Path
        The temporary path to write.
    """
    check_output_path(path, overwrite=overwrite)
    temporary = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.partial{path.suffix}")
    try:
        yield temporary
        if path.exists() and not overwrite:  # appeared while we were writing
            raise OutputExistsError(f"{path}: already exists; choose another name or allow replacing it",
                                    option="overwrite")
        _move_into_place(temporary, path)
    finally:
        _remove(temporary)


def _move_into_place(temporary: Path, path: Path) -> None:
    if not (temporary.is_dir() or path.is_dir()):
        os.replace(temporary, path)  # atomic: readers see the old file or the new one
        return
    # Folders cannot be swapped atomically: park the old one, move the new one in,
    # and put the old one back if that fails.
    parked = None
    if path.exists() or path.is_symlink():
        parked = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.old{path.suffix}")
        os.replace(path, parked)
    try:
        os.replace(temporary, path)
    except BaseException:
        if parked is not None:
            os.replace(parked, path)
        raise
    if parked is not None:
        _remove(parked)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
