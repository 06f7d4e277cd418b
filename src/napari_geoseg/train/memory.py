"""Memory estimates, so that a request that cannot fit is refused before it starts."""

from __future__ import annotations

import math
import os
from typing import Optional

from ..errors import InputError

__all__ = ["available_memory", "check_memory", "training_bytes", "prediction_bytes", "STEP_FACTOR"]

#: Peak bytes of one memory-efficient training step per byte of one network state,
#: measured by benchmarks/memory_depth.py (RSS above baseline, 1 x 8 x 64^3 float32:
#: 114 MiB for an 8 MiB state, at every depth from 4 to 64), rounded up.
STEP_FACTOR = 16


def available_memory() -> Optional[int]:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), if known."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(required: int, what: str) -> None:
    """Refuse work that needs more than 80 % of the memory available, before it starts.

    Parameters
    ----------
    required : int
        Bytes the work needs (:func:`training_bytes`, :func:`prediction_bytes`).
    what : str
        The work, in words ("training").

    Raises
    ------
    InputError
        With ``option="block"``: the faces say how to choose smaller blocks.
    """
    available = available_memory()
    if available is not None and required > 0.8 * available:
        raise InputError(f"{what} needs about {required / 2**30:.1f} GiB but {available / 2**30:.1f} GiB is "
                         f"available; use smaller blocks", option="block")


def training_bytes(trainer) -> int:
    """The labelled voxels (held sparse) plus the peak of one training step on a block.

    The image is read a block at a time, so its size does not count. A trainer with
    rivals (a race of designs) holds their labels and steps too.
    """
    total = 0
    for t in (trainer, *trainer.rivals):
        labels = t._points.nbytes + t._values.nbytes + t._train.nbytes
        block = math.prod(t.block)
        features = block * t.model.in_channels * 4 * 2  # the block and its flipped copy
        total += labels + features + STEP_FACTOR * block * t.model.net.width * 4
    return total


def prediction_bytes(predictor, image_shape: tuple[int, ...], itemsize: int) -> int:
    """The outputs (accumulated and final probabilities, labels, entropy) and one block.

    The image itself is read one block at a time, so it does not count.
    """
    model = predictor.model
    outputs = math.prod(image_shape[:model.layout.labels_ndim()]) * (12 * model.n_classes + 16)
    block = math.prod(predictor.block_shape(tuple(image_shape[:model.layout.network_ndim])))
    # A cube's block is read with its whole spectrum: its bands are the input channels.
    values = model.in_channels * model.layout.band_bin if model.layout.bands_as_channels else model.in_channels
    return outputs + block * (values * (itemsize + 4) + STEP_FACTOR * model.net.width * 4)
