"""Freed arrays go back to the system, so that a long run's memory stays what it holds.

glibc's malloc maps each large allocation on its own and unmaps it when freed, but it
raises that threshold (up to 32 MiB) each time such a block is freed; from then on arrays
of that size come from the heap, and freed heap stays with the process. A run that
frees and allocates blocks and slabs for hours then grows with the sizes it has freed.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["hold_mmap_threshold", "MMAP_THRESHOLD"]

#: Allocations of at least this many bytes are mapped on their own.
MMAP_THRESHOLD = 1 << 20

_M_MMAP_THRESHOLD = -3  # mallopt parameter, from glibc's malloc.h


def hold_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes for this process.

    Returns whether it was set: False where the C library is not glibc (macOS,
    Windows, musl), which need nothing of the kind or offer no such setting.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)))
    except (OSError, AttributeError):
        return False
