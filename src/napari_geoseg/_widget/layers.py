"""Between napari layers and the engine: shapes, modes, copies, the slice on screen, outputs.

Used by the widget on the GUI thread. Layers made by this plugin store the engine's
arrays permuted (see :mod:`napari_geoseg._axes`); everything handed to the engine here is
in the engine's order, and everything written back is permuted again.
"""

from __future__ import annotations

import atexit
import copy as copying
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .._axes import GEOSEG_KEY, engine_order, to_engine, to_layer
from ..errors import InputError
from ..train.layout import infer_mode

__all__ = ["layer_mode", "engine_image", "engine_labels", "labels_shape", "focus_point", "OutputLayers",
           "new_labels_layer_kwargs", "disk_backed", "DISK_BACKED_VOXELS", "PREDICTION_CHUNK"]

#: Images with more label voxels than this get output layers backed by zarr stores on
#: disk (a 512^3 survey's probabilities alone would take 2 GiB of memory per class), and
#: their whole-image predictions are made and shown chunk by chunk.
DISK_BACKED_VOXELS = 512 ** 3

#: Side of those chunks: a chunk's prediction holds a few hundred MiB, and writing it into
#: the layers' stores takes the GUI thread a few tens of milliseconds.
PREDICTION_CHUNK = 128

#: zarr chunk side of the on-disk layers (PREDICTION_CHUNK is a multiple, so every
#: prediction chunk writes whole zarr chunks, in any axis order).
_STORE_CHUNK = 64


def _info(layer) -> dict:
    return (layer.metadata or {}).get(GEOSEG_KEY) or {}


def _image_data(layer):
    if getattr(layer, "multiscale", False):
        raise InputError(f"{layer.name}: multiscale image layers are not supported; open the full-resolution "
                         f"image as a single-scale layer")
    return layer.data


def layer_mode(image_layer) -> str:
    """"volume", "spectral" or "image": from the plugin's metadata, else from the shape
    (:func:`~napari_geoseg.train.layout.infer_mode`; an RGB layer is a 2D image)."""
    mode = _info(image_layer).get("mode")
    if mode:
        return str(mode)
    shape = tuple(_image_data(image_layer).shape)
    rgb = len(shape) == 3 and getattr(image_layer, "rgb", False)
    return infer_mode(shape, shape[:2] if rgb else None, name=image_layer.name)


def engine_image(image_layer):
    """The image layer's data in the engine's axis order (a view; lazy arrays stay lazy)."""
    return to_engine(_image_data(image_layer), image_layer.metadata)


def labels_shape(image_layer) -> tuple[int, ...]:
    """The layer shape of labels for this image: the image's, or the map of a cube."""
    shape = tuple(_image_data(image_layer).shape)
    mode = layer_mode(image_layer)
    if mode == "spectral":
        engine = tuple(shape[a] for a in engine_order(image_layer.metadata, len(shape)))
        return engine[:2]
    if mode == "image" and len(shape) == 3:
        return shape[:2]
    return shape


def engine_labels(labels_layer, image_layer, copy: bool = True) -> np.ndarray:
    """A copy of the labels in the engine's order, checked against the image.

    A copy, taken on the GUI thread: the user keeps painting while the engine trains on
    it, and the engine never writes to the user's labels. ``copy=False`` gives a view
    (to compare with the last copy without copying).
    """
    expected = labels_shape(image_layer)
    data = labels_layer.data
    if tuple(data.shape) != expected:
        raise InputError(f"{labels_layer.name}: labels of shape {tuple(data.shape)} do not fit the image "
                         f"{image_layer.name} (shape {expected} expected); pick the labels painted on this image "
                         f"or make a new labels layer")
    view = to_engine(data, _metadata_for_labels(labels_layer, image_layer))
    return np.array(view, order="C", copy=True) if copy else view


def _metadata_for_labels(labels_layer, image_layer) -> dict:
    # Labels made by this plugin carry the image's permutation; bare labels painted on a
    # plugin image share its layer order, so they follow the image's.
    return labels_layer.metadata if _info(labels_layer) else image_layer.metadata


def focus_point(viewer, image_layer) -> tuple[Optional[int], ...]:
    """The engine index of the slice on screen along each spatial axis (None: shown whole).

    In a 2D view of a section the slider axes get their index and the two axes on
    screen get None; in 3D every axis is None.
    """
    data = _image_data(image_layer)
    mode = layer_mode(image_layer)
    spatial = data.ndim - (1 if mode == "image" and data.ndim == 3 else 0)
    offset = viewer.dims.ndim - data.ndim
    shown = {axis - offset for axis in viewer.dims.displayed}
    index = np.round(np.asarray(image_layer.world_to_data(viewer.dims.point), float)).astype(int)
    layer_point = [None if a in shown else int(np.clip(index[a], 0, data.shape[a] - 1)) for a in range(spatial)]
    order = engine_order(image_layer.metadata, data.ndim)
    return tuple(layer_point[order[j]] if order[j] < spatial else None for j in range(spatial))


def disk_backed(image_layer) -> bool:
    """Whether this image's outputs live on disk and are predicted in chunks (see DISK_BACKED_VOXELS)."""
    return math.prod(labels_shape(image_layer)) > DISK_BACKED_VOXELS


_OUTPUT_FOLDERS: list[str] = []


@atexit.register
def _remove_output_folders() -> None:
    # Not earlier: napari layers read their stores for as long as the process runs.
    for folder in _OUTPUT_FOLDERS:
        shutil.rmtree(folder, ignore_errors=True)


def new_labels_layer_kwargs(image_layer) -> dict:
    """Name, scale, translate and metadata of an empty labels layer for this image."""
    ndim = len(labels_shape(image_layer))
    return {"name": f"{image_layer.name} labels", "scale": tuple(image_layer.scale)[-ndim:],
            "translate": tuple(image_layer.translate)[-ndim:], "units": tuple(image_layer.units)[-ndim:],
            "metadata": copying.deepcopy(dict(image_layer.metadata))}


class OutputLayers:
    """The prediction, probability and uncertainty layers of one image, updated in place.

    Each layer is created once, with the image's scale, translate and ``geoseg`` metadata
    (so the writers can put geometry back), and later results are written into it.
    """

    def __init__(self, viewer, image_layer) -> None:
        self.viewer, self.image_layer = viewer, image_layer
        self.prediction = self.probabilities = self.uncertainty = None
        #: Whether a prediction was written into the layers (they are made empty ahead of it).
        self.predicted = False
        #: Folder of the zarr stores behind the layers of a large image (removed at exit).
        self.folder: Optional[Path] = None

    def _empty(self, shape: tuple[int, ...], dtype, name: str):
        """Zeros of ``shape``: in memory, or an uncompressed zarr store on disk for large images."""
        if not disk_backed(self.image_layer):
            return np.zeros(shape, dtype)
        import zarr

        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="geoseg-outputs-"))
            _OUTPUT_FOLDERS.append(str(self.folder))
        spatial = len(labels_shape(self.image_layer))
        chunks = (1,) * (len(shape) - spatial) + tuple(min(_STORE_CHUNK, n) for n in shape[len(shape) - spatial:])
        # Uncompressed: a chunk written on the GUI thread is a copy, not a compression.
        return zarr.create_array(store=str(self.folder / f"{name}.zarr"), shape=shape, chunks=chunks,
                                 dtype=dtype, fill_value=0, compressors=None, overwrite=True)

    def _alive(self, layer) -> bool:
        return layer is not None and layer in self.viewer.layers

    def _geometry(self, ndim: int, leading: int = 0) -> dict[str, Any]:
        image = self.image_layer
        return {"scale": (1,) * leading + tuple(image.scale)[-ndim:],
                "translate": (0,) * leading + tuple(image.translate)[-ndim:],
                "metadata": copying.deepcopy(dict(image.metadata))}

    def _target(self, layer, shape, dtype, make, name: str):
        """``layer`` if it still fits, else it with new zeros, else a new layer from ``make(zeros)``."""
        if self._alive(layer) and tuple(layer.data.shape) == tuple(shape) and layer.data.dtype == dtype:
            return layer
        if self._alive(layer):
            layer.data = self._empty(shape, dtype, name)
            return layer
        return make(self._empty(shape, dtype, name))

    def prepare(self, *, colormap=None, uncertainty: bool = True, dtype=np.uint8) -> None:
        """Create the prediction (and uncertainty) layers, empty, if they do not exist yet.

        Adding a layer costs napari a few hundred milliseconds on the GUI thread (its
        vispy visuals), so the widget does it when the image and labels are chosen, not
        when Train is pressed, nor while training runs and the user paints.
        """
        ndim = len(labels_shape(self.image_layer))
        full_shape = self._full_shape(ndim)
        name = self.image_layer.name

        def make_prediction(data):
            kwargs = {"colormap": colormap} if colormap is not None else {}
            return self.viewer.add_labels(data, name=f"{name} prediction", opacity=0.5, **kwargs,
                                          **self._geometry(ndim))

        def make_uncertainty(data):
            return self.viewer.add_image(data, name=f"{name} uncertainty", colormap="magma",
                                         contrast_limits=(0, 1), blending="additive", opacity=0.7,
                                         **self._geometry(ndim))

        if not self._alive(self.prediction):
            self.prediction = self._target(self.prediction, full_shape, np.dtype(dtype), make_prediction,
                                           "prediction")
        if uncertainty and not self._alive(self.uncertainty):
            self.uncertainty = self._target(self.uncertainty, full_shape, np.float32, make_uncertainty,
                                            "uncertainty")

    def show(self, prediction, box: Optional[tuple[slice, ...]], *, colormap=None, probabilities: bool = True,
             uncertainty: bool = True) -> list:
        """Write ``prediction`` (of the engine box ``box``, or of everything) into the layers.

        Returns the layers written to; the caller refreshes them (one per event-loop turn
        keeps each pause of the GUI short).
        """
        metadata = self.image_layer.metadata
        labels = to_layer(prediction.labels, metadata)
        ndim = labels.ndim
        out_box = self._layer_box(box, ndim)
        full_shape = self._full_shape(ndim)
        name = self.image_layer.name
        self.prepare(colormap=colormap, uncertainty=uncertainty, dtype=labels.dtype)
        if self.prediction.data.dtype != labels.dtype:
            self.prediction.data = self._empty(full_shape, labels.dtype, "prediction")
        self.prediction.data[out_box] = labels
        self.predicted = True
        written = [self.prediction]
        if probabilities:
            values = to_layer(prediction.probabilities, metadata, leading=1)

            def make_probabilities(data):
                return self.viewer.add_image(data, name=f"{name} probabilities", colormap="viridis",
                                             contrast_limits=(0, 1), blending="additive", visible=False,
                                             **self._geometry(ndim, leading=1))

            self.probabilities = self._target(self.probabilities, (values.shape[0], *full_shape), np.float32,
                                                 make_probabilities, "probabilities")
            self.probabilities.data[(slice(None), *out_box)] = values
            written.append(self.probabilities)
        if uncertainty:
            self.uncertainty.data[out_box] = to_layer(prediction.uncertainty, metadata)
            written.append(self.uncertainty)
        return written

    def _full_shape(self, ndim: int) -> tuple[int, ...]:
        return labels_shape(self.image_layer)[-ndim:] if ndim < 3 else labels_shape(self.image_layer)

    def _layer_box(self, box: Optional[tuple[slice, ...]], ndim: int) -> tuple[slice, ...]:
        if box is None:
            return (slice(None),) * ndim
        box = tuple(box)[:ndim]
        order = engine_order(self.image_layer.metadata, ndim)
        layer_box: list[slice] = [slice(None)] * ndim
        for engine_axis, layer_axis in enumerate(order):
            layer_box[layer_axis] = box[engine_axis]
        return tuple(layer_box)
