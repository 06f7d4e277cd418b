"""Volumes, labels and samples (numpy only, no napari)."""

from .synthetic import SyntheticVolume, synthetic_seismic

__all__ = ["SyntheticVolume", "synthetic_seismic"]
