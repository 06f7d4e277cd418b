"""Errors meant for the user, not for a traceback.

The command line prints ``geoseg: error: <message>`` and exits non-zero on any
:class:`GeosegError`, and the napari widget shows the message in a notification, so
every message is one line that names the file, says what is wrong and what to do::

    f3.sgy: cannot infer the inline/crossline geometry from header bytes 189/193 or 9/21;
    give the byte positions with --segy-inline-byte and --segy-crossline-byte

(shown wrapped here; the real message has no line break).
"""

from __future__ import annotations

__all__ = ["GeosegError", "InputError", "OutputExistsError"]


class GeosegError(Exception):
    """Base of the errors whose message is shown to the user as it is.

    The message is collapsed onto one line (runs of white space, line breaks included,
    become one space), because faces print it after ``geoseg: error:`` and text from
    third-party exceptions embedded in it may hold line breaks.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class InputError(GeosegError, ValueError):
    """A file or an argument that cannot be used: missing, unsupported, corrupt, ambiguous."""


class OutputExistsError(GeosegError, FileExistsError):
    """The output path exists and overwriting was not asked for."""
