"""Volumes, labels and samples (numpy only, no napari)."""

from .hyperspectral import synthetic_hyperspectral
from .synthetic import SyntheticVolume, synthetic_seismic

__all__ = ["SyntheticVolume", "synthetic_hyperspectral", "synthetic_seismic"]
