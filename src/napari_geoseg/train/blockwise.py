"""Prediction chunk by chunk into zarr stores: out of core, resumable, on dask.distributed.

The output is cut into chunks, each written by one task into whole zarr chunks of the
stores (slabs of rows of it, :func:`store_chunks`, written as they are predicted), so
tasks never share a zarr chunk and memory holds a slab, not a chunk. Each chunk is
predicted from the blocks of the whole image's tiling that overlap it
(:meth:`Predictor.predict` with ``output=``), so the chunks together equal a
whole-image prediction exactly, whoever computed them. A chunk is marked done (an empty
file in the store's ``.geoseg-done`` folder) only after its values are written: a
resumed run skips the chunks marked, and an interrupted one loses at most the chunks in
flight. With several workers the chunks run as tasks on a dask.distributed cluster (a
``LocalCluster`` by default, or any scheduler's address); a worker that dies has its
tasks run again elsewhere by dask, which is safe because a chunk always writes the same
values.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import InputError

__all__ = ["ImageSource", "ChunkedOutputs", "chunk_boxes", "store_chunks", "predict_to_zarr", "DONE_FOLDER"]

#: Folder inside the labels store that marks the chunks written.
DONE_FOLDER = ".geoseg-done"

#: Rows (along the first axis) of the output stores' zarr chunks, where they divide the
#: prediction chunks (:func:`store_chunks`).
ROWS_PER_STORE_CHUNK = 64

#: Changes whenever the same model, image and settings would predict other values, so
#: that a store written before is not resumed (blocks of whole traces since 2; even
#: tiling and one search for a volume's block since 3).
TILING_VERSION = 3


@dataclass(frozen=True)
class ImageSource:
    """How a worker process opens the image itself: a file and the reader's options."""

    spec: str
    options: dict = field(default_factory=dict)

    def open(self):
        """The image's (lazy) data, opened once per process."""
        key = (self.spec, tuple(sorted(self.options.items())))
        if key not in _OPEN:
            from ..io import read_volume

            _OPEN[key] = read_volume(self.spec, **self.options).data
        return _OPEN[key]


_OPEN: dict = {}


@dataclass(frozen=True)
class ChunkedOutputs:
    """Paths of the zarr stores a chunk writes: labels, and optionally probabilities
    (class axis last) and uncertainty."""

    labels: str
    probabilities: Optional[str] = None
    uncertainty: Optional[str] = None


def chunk_boxes(shape: tuple[int, ...], chunks: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """The boxes of a regular grid of ``chunks`` over ``shape``, in C order.

    Examples
    --------
    >>> chunk_boxes((5, 4), (3, 4))
    [(slice(0, 3, None), slice(0, 4, None)), (slice(3, 5, None), slice(0, 4, None))]
    """
    starts = [range(0, s, c) for s, c in zip(shape, chunks)]
    return [tuple(slice(a, min(a + c, s)) for a, c, s in zip(corner, chunks, shape))
            for corner in itertools.product(*starts)]


def _fingerprint(model, source_shape: tuple[int, ...], settings: dict) -> str:
    """What must match for a resumed run to continue a store: weights, image shape, settings."""
    digest = hashlib.sha256()
    for net in model.nets:
        for tensor in net.state_dict().values():
            digest.update(tensor.detach().cpu().numpy().tobytes())
    digest.update(repr((source_shape, sorted(settings.items()))).encode())
    return digest.hexdigest()[:16]


def _create_or_check(path: str, shape, chunks, dtype, attributes: dict, resume: bool, fingerprint: str):
    import zarr

    if resume and Path(path).exists():
        try:
            array = zarr.open_array(store=path, mode="r+")
        except Exception:  # noqa: BLE001 - not an array store: said below
            array = None
        if (array is None or tuple(array.shape) != tuple(shape) or tuple(array.chunks) != tuple(chunks)
                or np.dtype(array.dtype) != np.dtype(dtype)
                or array.attrs.get("geoseg_prediction") != fingerprint):
            raise InputError(f"{path}: was not written by this model, image and settings, so it cannot be "
                             f"resumed; remove it, or predict into another store")
        return array
    fill = np.nan if np.dtype(dtype).kind == "f" else 0
    if Path(path).is_file():
        Path(path).unlink()  # an old file in the store's place (the caller allowed overwriting)
    array = zarr.open_array(store=path, mode="w", shape=shape, chunks=chunks, dtype=dtype, fill_value=fill)
    array.attrs.update({**attributes, "geoseg_prediction": fingerprint})
    return array


def _predict_chunk(index: int, box: tuple[slice, ...], model, source, outputs: ChunkedOutputs,
                   flattened_depth, options: dict, threads: Optional[int]) -> tuple[int, int]:
    """Predict one chunk and write it into the stores, a slab of zarr chunks at a time;
    returns (index, voxels masked)."""
    import torch
    import zarr

    from .heap import hold_mmap_threshold
    from .predictor import Predictor

    hold_mmap_threshold()  # a worker process predicts chunk after chunk
    if threads:
        torch.set_num_threads(threads)
    image = source.open() if isinstance(source, ImageSource) else source
    stores = [(zarr.open_array(store=outputs.labels, mode="r+"), lambda part: part.labels)]
    if outputs.probabilities:
        stores.append((zarr.open_array(store=outputs.probabilities, mode="r+"),
                       lambda part: np.moveaxis(part.probabilities, 0, -1).copy()))  # a view: copied
    if outputs.uncertainty:
        stores.append((zarr.open_array(store=outputs.uncertainty, mode="r+"), lambda part: part.uncertainty))
    # Rows wait until they fill whole zarr chunks, so no zarr chunk is read back and rewritten.
    rows_per_write = stores[0][0].chunks[0]
    length = box[0].stop - box[0].start
    pending: list[list[np.ndarray]] = [[] for _ in stores]
    written = masked = 0
    slabs = Predictor(model, **options).predict_slabs(image, output=box, flattened_depth=flattened_depth,
                                                      uncertainty=bool(outputs.uncertainty))
    for rows, part in slabs:
        masked += part.masked
        for waiting, (_, values) in zip(pending, stores):
            waiting.append(values(part))
        ready = length if rows.stop == length else rows.stop // rows_per_write * rows_per_write
        if ready <= written:
            continue
        for k, (array, _) in enumerate(stores):
            values = np.concatenate(pending[k]) if len(pending[k]) > 1 else pending[k][0]
            target = (slice(box[0].start + written, box[0].start + ready), *box[1:])
            array[target] = values[:ready - written]
            pending[k] = [values[ready - written:]] if ready < rows.stop else []
        written = ready
    done = Path(outputs.labels) / DONE_FOLDER
    done.mkdir(exist_ok=True)
    (done / str(index)).touch()  # last: a chunk is done only once all its values are written
    return index, masked


def store_chunks(grid: tuple[int, ...]) -> tuple[int, ...]:
    """Zarr chunks of the output stores for prediction chunks of ``grid``: slabs of
    :data:`ROWS_PER_STORE_CHUNK` rows where they divide a prediction chunk, so that a
    chunk is written a slab at a time (each slab whole zarr chunks) as it is predicted.

    Examples
    --------
    >>> store_chunks((256, 256, 256))
    (64, 256, 256)
    >>> store_chunks((100, 100, 100))
    (100, 100, 100)
    """
    rows = ROWS_PER_STORE_CHUNK if grid[0] % ROWS_PER_STORE_CHUNK == 0 else grid[0]
    return (rows, *grid[1:])


def predict_to_zarr(model, image, outputs: ChunkedOutputs, *, source: Optional[ImageSource] = None,
                    chunks: int = 256, resume: bool = False, workers: int = 1, scheduler: Optional[str] = None,
                    attributes: Optional[dict] = None, progress: Optional[Callable[[int, int], None]] = None,
                    axes: Optional[Sequence[str]] = None, **options: Any) -> dict:
    """Predict ``image`` chunk by chunk into zarr stores.

    Parameters
    ----------
    model : Model
    image : array-like
        The image, lazy or not (only the blocks around each chunk are read).
    outputs : ChunkedOutputs
        The stores to write (created, or continued with ``resume``).
    source : ImageSource, optional
        How workers open the image; needed with ``workers > 1`` or ``scheduler``.
    chunks : int
        Side of the output chunks, each predicted by one task (the stores' zarr chunks
        are slabs of them: :func:`store_chunks`).
    resume : bool
        Continue stores written earlier by the same model, image and settings, skipping
        the chunks marked done.
    workers : int
        Worker processes of a local dask.distributed cluster; 1 runs in this process.
    scheduler : str, optional
        Address of a running dask.distributed scheduler to use instead.
    attributes : dict, optional
        Attributes of the stores (axes, scale, units).
    progress : callable, optional
        ``progress(done, total)`` after every chunk.
    axes : sequence of str, optional
        The image's axis names, as read: the model is checked against them
        (:meth:`~napari_geoseg.train.Predictor.check_image`) before any store is touched.
    **options
        For :class:`~napari_geoseg.train.Predictor`: ``device``, ``block``, ``flips``,
        ``ordered_units``.

    Returns
    -------
    dict
        ``chunks`` (total), ``computed`` (this run), ``skipped`` (done before), ``masked``
        (output voxels without data, among those computed).
    """
    from .flattening import flattened_depth_of
    from .heap import hold_mmap_threshold
    from .predictor import Predictor

    if chunks < 1 or workers < 1:
        raise InputError(f"chunks and workers must be at least 1, got {chunks} and {workers}")
    if (workers > 1 or scheduler) and source is None:
        raise InputError("workers open the image from its file: predict a file, or use one worker")
    predictor = Predictor(model, **options)
    layout = predictor.check_image(tuple(image.shape), axes)  # before any store is touched
    shape = predictor.output_shape(tuple(image.shape))
    grid = tuple(min(chunks, s) for s in shape)
    # The block budget in effect, which the device sets unless given, shapes the tiling.
    settings = {"chunks": grid, "tiling": TILING_VERSION, **{k: str(v) for k, v in options.items()},
                "block_voxels": predictor.block_voxels}
    fingerprint = _fingerprint(model, tuple(image.shape), settings)
    attributes = dict(attributes or {})
    dtype = model.labels_dtype
    stored = store_chunks(grid)
    _create_or_check(outputs.labels, shape, stored, dtype, attributes, resume, fingerprint)
    if outputs.probabilities:
        k = model.n_classes
        _create_or_check(outputs.probabilities, (*shape, k), (*stored, k), np.float32, {}, resume, fingerprint)
    if outputs.uncertainty:
        _create_or_check(outputs.uncertainty, shape, stored, np.float32, attributes, resume, fingerprint)
    done_folder = Path(outputs.labels) / DONE_FOLDER
    done = {int(p.name) for p in done_folder.iterdir() if p.name.isdigit()} if resume and done_folder.is_dir() \
        else set()
    boxes = chunk_boxes(shape, grid)
    pending = [(i, box) for i, box in enumerate(boxes) if i not in done]
    hold_mmap_threshold()  # before the flattening's and the chunks' large arrays come and go
    flattened = (flattened_depth_of(image, model.center, model.scale)
                 if model.layout.flattened and layout.mode == "volume" and pending else None)
    summary = {"chunks": len(boxes), "computed": 0, "skipped": len(boxes) - len(pending), "masked": 0}
    report = (lambda: progress(summary["computed"] + summary["skipped"], len(boxes))) if progress else (lambda: None)
    if workers == 1 and scheduler is None:
        for index, box in pending:
            _, masked = _predict_chunk(index, box, model, image, outputs, flattened, options, None)
            summary["computed"] += 1
            summary["masked"] += masked
            report()
        return summary
    from distributed import Client, LocalCluster, as_completed

    cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                  dashboard_address=":0")
    threads = max(1, (os.cpu_count() or 1) // workers) if scheduler is None else None
    try:
        with Client(scheduler or cluster) as client:
            shared_model = client.scatter(model, broadcast=True)
            shared_flattened = client.scatter(flattened, broadcast=True) if flattened is not None else None
            futures = [client.submit(_predict_chunk, index, box, shared_model, source, outputs, shared_flattened,
                                     options, threads, key=f"geoseg-chunk-{fingerprint}-{index}", pure=False)
                       for index, box in pending]
            for future in as_completed(futures):
                _, masked = future.result()
                summary["computed"] += 1
                summary["masked"] += masked
                report()
    finally:
        if cluster is not None:
            cluster.close()
    return summary
