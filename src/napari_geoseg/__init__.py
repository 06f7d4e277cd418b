"""napari-geoseg: live segmentation of seismic and hyperspectral volumes with fully
invertible hyperbolic networks.

The top-level package imports nothing heavy, so that napari can read the plugin
manifest without loading torch. The network lives in :mod:`napari_geoseg.nn`.
"""

import os
import sys

if sys.platform.startswith("linux"):
    # PyTorch backs its large CPU tensors with 2 MiB pages when this is set before its
    # first allocation: a fresh block's state costs 512 times fewer page faults. That is
    # a tenth to a sixth of prediction's time where freed arrays go back to the system
    # (:func:`~napari_geoseg.train.heap.hold_mmap_threshold`; benchmarks/predict_speed.py).
    # A value the user set is kept.
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
