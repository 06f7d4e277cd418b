"""The sample files in the repository's ``sample_data/`` folder, made by code.

``python -m napari_geoseg.data.samples sample_data`` writes them; they are the
synthetic seismic volume (96^3) and hyperspectral scene (64 x 64 x 48) of this package,
with their sparse labels and full truth, so that the command line can be tried on
files::

    geoseg train --image sample_data/seismic.npy --labels sample_data/seismic_labels.npy --out model.pt
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .hyperspectral import synthetic_hyperspectral
from .synthetic import synthetic_seismic

__all__ = ["sample_arrays", "write_samples", "SEISMIC_SHAPE", "HYPERSPECTRAL_SHAPE"]

SEISMIC_SHAPE = (96, 96, 96)
HYPERSPECTRAL_SHAPE = (64, 64, 48)


def sample_arrays() -> dict[str, np.ndarray]:
    """File name -> array of every sample file. Images are float16 to keep the repository small."""
    seismic = synthetic_seismic(SEISMIC_SHAPE, seed=0)
    cube = synthetic_hyperspectral(HYPERSPECTRAL_SHAPE[:2], n_bands=HYPERSPECTRAL_SHAPE[2], seed=0)
    return {
        "seismic.npy": seismic.image.astype(np.float16),
        "seismic_labels.npy": seismic.labels,
        "seismic_truth.npy": seismic.truth,
        "hyperspectral.npy": cube.image.astype(np.float16),
        "hyperspectral_labels.npy": cube.labels,
        "hyperspectral_truth.npy": cube.truth,
    }


def write_samples(folder: str | Path, overwrite: bool = False) -> list[Path]:
    """Write the sample files into ``folder``; existing files are kept unless ``overwrite``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, array in sample_arrays().items():
        path = folder / name
        if path.exists() and not overwrite:
            continue
        np.save(path, array)
        written.append(path)
    return written


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "sample_data"
    for path in write_samples(target, overwrite="--overwrite" in sys.argv):
        print(f"wrote {path}")
