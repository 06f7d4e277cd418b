"""Errors meant for the user, not for a traceback.

The command line prints ``geoseg: error: <message>`` and exits non-zero on any
:class:`GeosegError`, and the napari widget shows the message in a notification, so
every message is one line that names the file, says what is wrong and what to do::

    f3.sgy: cannot infer the inline/crossline geometry from header bytes 189/193 or 9/21;
    give the header bytes of the inline and crossline numbers

(shown wrapped here; the real message has no line break). Engine messages name no
command-line flag or widget control: an error about a setting carries its ``option``
(an engine name such as ``"block"``), and each face adds how to change that setting
there (:func:`with_hint`), e.g. ``(--segy-inline-byte, --segy-crossline-byte)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

__all__ = ["GeosegError", "InputError", "OutputExistsError", "with_hint", "add_hint"]


class GeosegError(Exception):
    """Base of the errors whose message is shown to the user as it is.

    The message is collapsed onto one line (runs of white space, line breaks included,
    become one space), because faces print it after ``geoseg: error:`` and text from
    third-party exceptions embedded in it may hold line breaks.
    """

    def __init__(self, message: str, *, option: Optional[str] = None):
        super().__init__(" ".join(str(message).split()))
        #: The engine setting the message is about ("block", "device", "overwrite",
        #: "segy_bytes", ...), for the face to say where the user changes it; or None.
        self.option = option


class InputError(GeosegError, ValueError):
    """A file or an argument that cannot be used: missing, unsupported, corrupt, ambiguous."""


class OutputExistsError(GeosegError, FileExistsError):
    """The output path exists and overwriting was not asked for."""


def with_hint(error: GeosegError, hints: Mapping[str, str]) -> str:
    """The error's message, followed by the face's hint for its option, if it has one.

    Examples
    --------
    >>> with_hint(InputError("m.pt: already exists", option="overwrite"), {"overwrite": "--overwrite"})
    'm.pt: already exists (--overwrite)'
    """
    return add_hint(str(error), error.option, hints)


def add_hint(message: str, option: Optional[str], hints: Mapping[str, str]) -> str:
    """``message`` followed by ``hints[option]`` in brackets, when there is one."""
    hint = hints.get(option) if option else None
    return f"{message} ({hint})" if hint else message
