"""``geoseg view``: open napari with an image (or the sample), its labels, and the widget docked.

SEG-Y, ENVI, MATLAB and zarr files are opened through this plugin's reader, exactly as
when they are dropped onto napari. Images in ``.npy`` and ``.tif`` files, and
``FILE.mat:NAME`` / ``STORE.zarr:NAME``, are read by the same engine reader and shown the
same way, because napari's own reader would show them in the engine's axis order (a
section with time running across the screen) and without the axis description the widget
and the writers use. Labels files go with the image: they are put into the image's
layer order, with its scale and metadata, so that they lie on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .errors import GeosegError, InputError
from .io import read_volume

__all__ = ["launch", "populate_viewer", "check_inputs", "WIDGET_NAME", "PLUGIN_NAME"]

PLUGIN_NAME = "napari-geoseg"
#: The widget's display name in napari.yaml.
WIDGET_NAME = "Interactive segmentation"
#: The sample opened when no image is given, and its layers.
SAMPLE_KEY = "seismic"
SAMPLE_IMAGE, SAMPLE_LABELS = "synthetic seismic", "borehole labels"


def check_inputs(image: Optional[str], labels: Optional[str]) -> None:
    """Refuse missing files before napari starts (which takes seconds).

    Raises
    ------
    InputError
        A file that does not exist, or labels without an image.
    """
    from .io import split_spec

    if labels is not None and image is None:
        raise InputError(f"{labels}: labels need the image they were painted on; give it as "
                         f"'geoseg view IMAGE --labels {labels}'")
    for spec in (image, labels):
        if spec is not None and not split_spec(spec)[0].exists():
            raise InputError(f"{split_spec(spec)[0]}: no such file; check the path")


def launch(image: Optional[str] = None, labels: Optional[str] = None) -> Any:
    """Open napari with ``image`` (default: the synthetic seismic sample) and run its event loop.

    Parameters
    ----------
    image : str, optional
        An image file (``FILE.mat:NAME`` and ``STORE.zarr:NAME`` choose an array).
    labels : str, optional
        Labels painted on ``image`` (0 = unlabelled).

    Returns
    -------
    napari.Viewer
        The viewer, once its window has been closed.

    Raises
    ------
    GeosegError
        napari is not installed; a file is missing or cannot be read.
    """
    check_inputs(image, labels)
    napari = _import_napari()
    viewer = napari.Viewer(title="napari-geoseg")
    populate_viewer(viewer, image, labels)
    napari.run()
    return viewer


def populate_viewer(viewer: Any, image: Optional[str] = None, labels: Optional[str] = None) -> Any:
    """Add the image, its labels and the docked widget to ``viewer`` (no event loop).

    Parameters
    ----------
    viewer : napari.Viewer
    image, labels : str, optional
        As for :func:`launch`; without an image, the synthetic seismic sample.

    Returns
    -------
    QWidget
        The "Interactive segmentation" widget, with the image and labels chosen in it
        when it offers ``image_layer`` / ``labels_layer``.
    """
    check_inputs(image, labels)
    if image is None:
        viewer.open_sample(PLUGIN_NAME, SAMPLE_KEY)
        image_layer, labels_layer = viewer.layers[SAMPLE_IMAGE], viewer.layers[SAMPLE_LABELS]
    else:
        labels_volume = read_volume(labels) if labels is not None else None
        image_layer = _add_image(viewer, image, labels_volume.ndim if labels_volume is not None else None)
        labels_layer = (_add_labels(viewer, labels_volume, image_layer, Path(labels).stem)
                        if labels_volume is not None else None)
    widget = _dock_widget(viewer)
    _choose(widget, "image_layer", image_layer)
    if labels_layer is not None:
        _choose(widget, "labels_layer", labels_layer)
    return widget


def _dock_widget(viewer: Any) -> Any:
    """Dock the plugin's widget (as napari's Plugins menu would) and return it."""
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN_NAME, WIDGET_NAME)
    return widget


def _import_napari():
    try:
        import napari
    except ImportError as exc:
        raise GeosegError(f'the viewer needs napari and Qt ({exc}); install them with '
                          f'pip install "napari-geoseg[all]"') from exc
    return napari


def _add_image(viewer: Any, spec: str, labels_ndim: Optional[int]) -> Any:
    """Add the image layer; through the plugin's reader when napari could open the file itself."""
    from ._reader import READER_SUFFIXES, image_layer_data, volume_mode
    from .io import split_spec

    path, name = split_spec(spec)
    if name is None and path.suffix.lower() in READER_SUFFIXES and labels_ndim != 2:
        try:
            return viewer.open(str(path), plugin=PLUGIN_NAME)[0]
        except GeosegError:
            raise
        except Exception as err:
            # napari may wrap the reader's error; ours is the one-line message for the user.
            if isinstance(err.__cause__, GeosegError):
                raise err.__cause__ from None
            raise
    volume = read_volume(spec)
    data, kwargs, layer_type = image_layer_data(volume, mode=volume_mode(volume, labels_ndim),
                                                name=path.name if name is None else f"{path.name}:{name}")
    return viewer.add_image(data, **kwargs)


def _add_labels(viewer: Any, volume, image_layer: Any, name: str) -> Any:
    """Add labels in the image's layer order, scale and metadata."""
    from ._reader import labels_layer_data

    image = (image_layer.data, {"name": image_layer.name, "metadata": image_layer.metadata,
                                "scale": tuple(image_layer.scale), "translate": tuple(image_layer.translate),
                                "axis_labels": tuple(image_layer.axis_labels),
                                "units": tuple(str(u) for u in image_layer.units)}, "image")
    if "geoseg" not in image_layer.metadata:
        raise InputError(f"{image_layer.name}: was not read by napari-geoseg; open it with 'geoseg view'")
    import numpy as np

    # A copy in memory: memory-mapped or lazy labels could not be painted on.
    data, kwargs, _ = labels_layer_data(np.array(volume.data), image, name)
    return viewer.add_labels(data, **kwargs)


def _choose(widget: Any, attribute: str, layer: Any) -> None:
    """Select ``layer`` in the widget's ``attribute`` (a magicgui-style value or a plain attribute)."""
    if widget is None or not hasattr(widget, attribute):
        return
    if isinstance(getattr(type(widget), attribute, None), property):
        setattr(widget, attribute, layer)
        return
    current = getattr(widget, attribute)
    if hasattr(current, "value"):  # a magicgui ComboBox
        current.value = layer
    else:
        setattr(widget, attribute, layer)
