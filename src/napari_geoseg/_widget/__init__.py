"""The napari widget: :class:`SegmentationWidget` and its panels.

- :mod:`.widget`: the dock widget, wiring layers, the training session and model files;
- :mod:`.class_table`: class names and colours;
- :mod:`.design_panel`: preset, design, block, iterations and device;
- :mod:`.wells_panel`: wells, tops and logs turned into labels, horizons from a prediction;
- :mod:`.plot`: the training curve;
- :mod:`.layers`: napari layers to engine arrays and the output layers;
- :mod:`.notify`: errors and messages as napari notifications.

The training thread itself is :mod:`napari_geoseg.train.session` (no Qt).
"""

from .widget import SegmentationWidget

__all__ = ["SegmentationWidget"]
