"""napari-geoseg: live segmentation of seismic and hyperspectral volumes with fully
invertible hyperbolic networks.

The top-level package imports nothing heavy, so that napari can read the plugin
manifest without loading torch. The network lives in :mod:`napari_geoseg.nn`.
"""

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
