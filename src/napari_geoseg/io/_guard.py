"""Turn the many exceptions third-party readers raise into one-line user errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import GeosegError, InputError

__all__ = ["reason", "unreadable"]


def reason(exc: BaseException, limit: int = 160) -> str:
    """A short one-line account of ``exc`` to embed in a user message."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextmanager
def unreadable(display: str, kind: str) -> Iterator[None]:
    """Report any failure inside the block as a corrupt or unreadable ``kind`` ("SEG-Y file").

    Readers from other libraries raise anything from ``ValueError`` to ``struct.error``
    or ``KeyError`` on a damaged file, so the block catches broadly; our own errors and
    ``MemoryError`` (a file too big, not a broken one) pass through untouched.
    """
    try:
        yield
    except (GeosegError, MemoryError):
        raise
    except Exception as exc:
        raise InputError(f"{display}: cannot read this {kind} ({reason(exc)}); "
                         f"check that it is complete and not corrupt") from exc
