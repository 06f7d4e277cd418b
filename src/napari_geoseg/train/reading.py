"""Reading images and labels larger than memory a slab or a block at a time.

The trainer holds no whole-image array: labels as the coordinates and classes of the
labelled voxels, statistics from a sample of blocks, and the network input built block
by block (:meth:`~napari_geoseg.train.Trainer.block_features`). Arrays already in memory
take the same paths; these functions only decide how much to read at once.
"""

from __future__ import annotations

import itertools

import numpy as np

from .layout import Layout, column_statistics

__all__ = ["array_like", "labelled_voxels", "count_nonfinite", "finite_at", "is_small", "sampled_statistics",
           "SLAB_BYTES", "SMALL_BYTES"]

#: Bytes read per slab when scanning an image or labels.
SLAB_BYTES = 16 * 2**20
#: Images up to this size (as float32) get their statistics from all their values, as
#: before the out-of-core path existed; larger ones from a sample of blocks, so that
#: training never holds a copy of a large image.
SMALL_BYTES = 32 * 2**20


def array_like(data):
    """``data`` itself if it can be sliced lazily (numpy, memory map, zarr, dask, SEG-Y), else an array."""
    if hasattr(data, "shape") and hasattr(data, "dtype") and hasattr(data, "__getitem__"):
        return data
    return np.asarray(data)


def _box_steps(data) -> tuple[int, ...]:
    """Box sides along the first axis (and the second, for chunked arrays) of :func:`_boxes`."""
    chunks = getattr(data, "chunks", None)
    if not chunks or data.ndim < 2:
        row = max(1, int(np.prod(data.shape[1:], dtype=np.int64)) * np.dtype(data.dtype).itemsize)
        return (max(1, SLAB_BYTES // row),)
    c0, c1 = (max(int(c[0]) if isinstance(c, tuple) and c else int(c), 1) for c in chunks[:2])
    rest = int(np.prod(data.shape[2:], dtype=np.int64)) * np.dtype(data.dtype).itemsize
    return c0, c1 * max(1, SLAB_BYTES // max(c0 * c1 * rest, 1))


def _boxes(data) -> list[tuple[slice, ...]]:
    """Boxes covering ``data`` of about :data:`SLAB_BYTES` at most.

    A chunked array (zarr, dask) is covered by boxes of whole chunks along its first two
    axes, so reading a box never decompresses a chunk it does not use and memory does
    not grow with the width of the survey; other arrays by slabs of the first axis.
    """
    steps = _box_steps(data)
    ranges = [range(0, n, step) for n, step in zip(data.shape, steps)]
    return [tuple(slice(s, min(s + step, n)) for s, step, n in zip(starts, steps, data.shape))
            for starts in itertools.product(*ranges)]


def labelled_voxels(labels) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates ``(N, ndim)`` (in C order) and values of the non-zero voxels of ``labels``."""
    points, values = [], []
    for box in _boxes(labels):
        block = np.asarray(labels[box])
        index = np.nonzero(block)
        values.append(block[index])
        coordinates = np.stack(index, axis=1).astype(np.int64)
        for axis, piece in enumerate(box):
            coordinates[:, axis] += piece.start
        points.append(coordinates)
    if not points:
        return np.zeros((0, labels.ndim), np.int64), np.zeros(0, np.asarray(labels[:0]).dtype)
    points, values = np.concatenate(points), np.concatenate(values)
    order = np.lexsort(points.T[::-1])  # C order whatever the boxes
    return points[order], values[order]


def count_nonfinite(image) -> int:
    """NaN and Inf samples of ``image`` (0 for integer images), read a box at a time."""
    if not np.issubdtype(np.dtype(image.dtype), np.floating):
        return 0
    return int(sum(np.count_nonzero(~np.isfinite(np.asarray(image[box]))) for box in _boxes(image)))


def finite_at(image, points: np.ndarray, layout: Layout) -> np.ndarray:
    """Whether the image has data (every channel and band finite) at each labelled point."""
    if len(points) == 0 or not np.issubdtype(np.dtype(image.dtype), np.floating):
        return np.ones(len(points), bool)
    if isinstance(image, np.ndarray):
        values = image[tuple(points.T)]
        return np.isfinite(values.reshape(len(points), -1)).all(1)
    finite = np.ones(len(points), bool)
    # Each box of :func:`_boxes` that holds labelled points is read once.
    steps = _box_steps(image)
    keys = points[:, :len(steps)] // np.asarray(steps)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    order = np.argsort(inverse.ravel(), kind="stable")
    for rows in np.split(order, np.flatnonzero(np.diff(inverse.ravel()[order])) + 1):
        key = keys[rows[0]]
        box = tuple(slice(int(i) * s, (int(i) + 1) * s) for i, s in zip(key, steps))
        block = np.asarray(image[box])
        local = points[rows].copy()
        local[:, :len(steps)] -= key * np.asarray(steps)
        values = block[tuple(local.T)]
        finite[rows] = np.isfinite(values.reshape(len(rows), -1)).all(1)
    return finite


def is_small(image) -> bool:
    """Whether ``image`` is small enough to compute statistics from all its values."""
    return int(np.prod(image.shape, dtype=np.int64)) * 4 <= SMALL_BYTES


def sampled_statistics(image, layout: Layout, seed: int = 0, blocks: int = 64, side: int = 32,
                       max_samples: int = 1_000_000) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~napari_geoseg.train.layout.robust_statistics` of ``blocks`` random blocks.

    Each block is ``side`` voxels along the lateral axes and whole along the others, and
    at most ``max_samples / blocks`` of its rows of values are kept, so memory holds one
    block and a sample of about a million values whatever the image's size.
    """
    rng = np.random.default_rng(seed)
    samples = []
    per_block = max(max_samples // blocks, 1)
    for _ in range(blocks):
        box = []
        for axis, size in enumerate(image.shape):
            if axis < 2:
                start = int(rng.integers(0, max(size - side, 0) + 1))
                box.append(slice(start, start + side))
            else:
                box.append(slice(None))
        values = np.asarray(image[tuple(box)], np.float32)
        values = values.reshape(-1, layout.statistic_columns(values.shape))
        if values.shape[0] > per_block:
            values = values[np.sort(rng.choice(values.shape[0], per_block, replace=False))]
        samples.append(values)
    return column_statistics(np.concatenate(samples))
